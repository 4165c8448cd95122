//! Checks of a loaded policy against this host: missing grants and secret files.

use std::path::Path;

use crate::{LoadedPolicy, Problem};

impl LoadedPolicy {
    /// Lists the host paths the policy names that do not exist on this host,
    /// or are not the kind it needs. A policy reviewed on one machine may be
    /// used on another, so `moat policy check` prints these as warnings. A
    /// run that needs a missing path still fails. Secret files are only
    /// looked up, never read.
    pub fn missing_host_paths(&self) -> Vec<Problem> {
        let mut warnings = Vec::new();
        for (index, rule) in self.policy.filesystem.iter().enumerate() {
            let host = Path::new(&rule.host);
            let message = match std::fs::metadata(host) {
                Ok(metadata) if metadata.is_dir() => continue,
                Ok(_) => format!("{} is not a directory; grant a directory", rule.host),
                Err(error) => format!(
                    "directory {} is not accessible ({error}); create it or fix the path",
                    rule.host
                ),
            };
            warnings.push(Problem {
                path: format!("filesystem[{index}].host"),
                message,
            });
        }
        for (index, secret) in self.policy.secrets.iter().enumerate() {
            let Some(file) = &secret.file else {
                continue;
            };
            let message = match std::fs::metadata(file) {
                Ok(metadata) if metadata.is_file() => continue,
                Ok(_) => format!("{file} is not a file; name the file that holds the secret"),
                Err(error) => format!(
                    "secret file {file} is not accessible ({error}); create it or fix the path"
                ),
            };
            warnings.push(Problem {
                path: format!("secrets[{index}].file"),
                message,
            });
        }
        warnings
    }
}
