//! Secrets the gate injects into allowed requests, loaded once from the
//! moat process's environment or from files, and redacted from responses.

use std::fmt;

use moat_policy::SecretRule;

/// Shortest secret value that is redacted from responses. Shorter values
/// would match ordinary text by chance and garble responses.
const MIN_REDACTED_LEN: usize = 4;

/// A loaded secret. Its value never leaves this crate except in the header
/// the gate sends; `Debug` hides it.
#[derive(Clone)]
pub struct Secret {
    /// Name from the policy.
    pub name: String,
    /// Egress rule whose requests carry it.
    pub rule: String,
    /// Header that carries it.
    pub header: String,
    format: String,
    value: String,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("rule", &self.rule)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set or not UTF-8.
    #[error(
        "secret {name:?}: environment variable {variable} is not set; set it before starting moat"
    )]
    MissingVariable {
        /// The secret.
        name: String,
        /// The variable.
        variable: String,
    },
    /// The file could not be read.
    #[error("secret {name:?}: failed to read {path}")]
    File {
        /// The secret.
        name: String,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The value is empty or cannot be sent in a header.
    #[error("secret {name:?}: {reason}")]
    InvalidValue {
        /// The secret.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl Secret {
    /// Loads the value of `rule` from its environment variable or file.
    pub fn load(rule: &SecretRule) -> Result<Secret, SecretError> {
        let value = match (&rule.env, &rule.file) {
            (Some(variable), _) => {
                std::env::var(variable).map_err(|_| SecretError::MissingVariable {
                    name: rule.name.clone(),
                    variable: variable.clone(),
                })?
            }
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| SecretError::File {
                    name: rule.name.clone(),
                    path: path.clone(),
                    source,
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            (None, None) => {
                return Err(SecretError::InvalidValue {
                    name: rule.name.clone(),
                    reason: "no source: set env or file in the policy".into(),
                });
            }
        };
        Secret::new(rule, value)
    }

    /// Builds a secret with a known value (tests and embedders).
    pub fn new(rule: &SecretRule, value: String) -> Result<Secret, SecretError> {
        let invalid = |reason: &str| SecretError::InvalidValue {
            name: rule.name.clone(),
            reason: reason.into(),
        };
        if value.is_empty() {
            return Err(invalid("the value is empty"));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(invalid(
                "the value contains a line break or NUL, which a header cannot carry",
            ));
        }
        Ok(Secret {
            name: rule.name.clone(),
            rule: rule.rule.clone(),
            header: rule.header.clone(),
            format: rule.format.clone().unwrap_or_else(|| "{value}".into()),
            value,
        })
    }

    /// The header value to send.
    pub(crate) fn header_value(&self) -> String {
        self.format.replace("{value}", &self.value)
    }

    fn marker(&self) -> String {
        format!("[REDACTED:{}]", self.name)
    }
}

/// Replaces every occurrence of any secret's value in `text`.
pub(crate) fn redact_text(secrets: &[Secret], text: &str) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.value.len() >= MIN_REDACTED_LEN) {
        if text.contains(&secret.value) {
            text = text.replace(&secret.value, &secret.marker());
        }
    }
    text
}

/// Replaces every occurrence of any secret's value in `bytes`, returning
/// whether anything was replaced.
pub(crate) fn redact_bytes(secrets: &[Secret], bytes: &mut Vec<u8>) -> bool {
    let mut replaced = false;
    for secret in secrets.iter().filter(|s| s.value.len() >= MIN_REDACTED_LEN) {
        let needle = secret.value.as_bytes();
        if !bytes.windows(needle.len()).any(|window| window == needle) {
            continue;
        }
        let marker = secret.marker().into_bytes();
        let mut output = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index..].starts_with(needle) {
                output.extend_from_slice(&marker);
                index += needle.len();
            } else {
                output.push(bytes[index]);
                index += 1;
            }
        }
        *bytes = output;
        replaced = true;
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> Secret {
        let rule = SecretRule {
            name: "key".into(),
            env: None,
            file: None,
            rule: "api".into(),
            header: "Authorization".into(),
            format: Some("Bearer {value}".into()),
        };
        Secret::new(&rule, value.into()).expect("valid secret")
    }

    #[test]
    fn header_value_uses_format() {
        assert_eq!(secret("s3cret").header_value(), "Bearer s3cret");
    }

    #[test]
    fn debug_hides_value() {
        assert!(!format!("{:?}", secret("s3cret")).contains("s3cret"));
    }

    #[test]
    fn redacts_bytes_and_text() {
        let secrets = [secret("s3cret")];
        let mut body = b"token=s3cret&again=s3cret".to_vec();
        assert!(redact_bytes(&secrets, &mut body));
        assert_eq!(body, b"token=[REDACTED:key]&again=[REDACTED:key]");
        assert_eq!(
            redact_text(&secrets, "Bearer s3cret"),
            "Bearer [REDACTED:key]"
        );
    }

    #[test]
    fn rejects_line_breaks() {
        let rule = SecretRule {
            name: "key".into(),
            env: None,
            file: None,
            rule: "api".into(),
            header: "X-Key".into(),
            format: None,
        };
        assert!(Secret::new(&rule, "a\r\nInjected: 1".into()).is_err());
    }
}
