//! The cost of the audit trail: fresh executions with and without the two
//! records that `moat run` appends around each run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use moat_audit::{
    Actor, AuditStore, DirState, Ended, Finished, Recorder, RunInfo, Transport, new_execution_id,
    now_rfc3339,
};
use moat_policy::LoadedPolicy;
use moat_runtime::{FileAccess, Language, Limits, Runtime, Sandbox};
use serde::Serialize;

use crate::inprocess::{Program, check_report, summarise};
use crate::stats::Summary;

/// File name of the benchmark's audit store inside its temporary directory.
const STORE_FILE: &str = "audit.db";

/// File name of the audit store that the timed `moat run` processes write
/// to, beside [`STORE_FILE`].
const END_TO_END_STORE_FILE: &str = "moat-run.db";

/// File name of the file that [`BenchStore::measure_disk_sync`] appends to,
/// beside [`STORE_FILE`].
const DISK_SYNC_FILE: &str = "disk-sync.bin";

/// Bytes appended before each sync in [`BenchStore::measure_disk_sync`]: one
/// page of SQLite's default size.
const DISK_SYNC_BYTES: usize = 4096;

/// Principal written into the benchmark's records.
const PRINCIPAL: &str = "moat-bench";

/// The audit store the recorded runs append to, and where it lives.
#[derive(Debug, Clone, Serialize)]
pub struct StoreLocation {
    pub path: PathBuf,
    /// Type of the filesystem that contains the store, such as `ext4` or
    /// `tmpfs`, from `/proc/self/mounts`. `None` where that file does not
    /// exist, as on systems other than Linux.
    pub filesystem: Option<String>,
}

/// An audit store in a fresh temporary directory, deleted on drop, and the
/// recorder that writes to it.
pub struct BenchStore {
    pub location: StoreLocation,
    pub recorder: Recorder,
    /// Kept alive until the end: dropping it deletes the directory and both
    /// stores in it.
    directory: tempfile::TempDir,
}

impl BenchStore {
    /// Creates an empty store in a new directory under `parent`, with the
    /// built-in policy that `moat run` uses without `--policy`.
    ///
    /// The store is opened as `moat run` opens it: SQLite in WAL mode with
    /// `synchronous=FULL`, so every append waits for an fsync.
    pub fn create(parent: &Path) -> anyhow::Result<BenchStore> {
        let directory = tempfile::Builder::new()
            .prefix("moat-bench-audit-")
            .tempdir_in(parent)
            .with_context(|| {
                format!(
                    "failed to create a directory for the audit store in {}",
                    parent.display()
                )
            })?;
        let path = directory.path().join(STORE_FILE);
        let store = AuditStore::open(&path)
            .with_context(|| format!("failed to open the audit store {}", path.display()))?;
        let recorder = Recorder::new(Arc::new(store), &LoadedPolicy::builtin(), None)
            .with_context(|| format!("failed to record the policy in {}", path.display()))?;
        let filesystem = filesystem_type(&path);
        Ok(BenchStore {
            location: StoreLocation { path, filesystem },
            recorder,
            directory,
        })
    }

    /// Returns a path for the audit store of the timed `moat run` processes:
    /// a file beside the store, on the same filesystem, created by `moat`.
    pub fn end_to_end_store(&self) -> PathBuf {
        self.directory.path().join(END_TO_END_STORE_FILE)
    }

    /// Measures the filesystem's floor under each append: appending one
    /// page to a file beside the store and waiting for `sync_data`
    /// (`fdatasync` on Linux). A SQLite commit in WAL mode with
    /// `synchronous=FULL` also ends with a sync of the file it appended to.
    /// The first `warmup` syncs are not timed.
    pub fn measure_disk_sync(&self, warmup: u32, runs: u32) -> anyhow::Result<Summary> {
        let path = self.directory.path().join(DISK_SYNC_FILE);
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("failed to create {}", path.display()))?;
        let page = [0x5a_u8; DISK_SYNC_BYTES];

        let mut timings = Vec::new();
        for iteration in 0..warmup + runs {
            let start = Instant::now();
            file.write_all(&page)
                .with_context(|| format!("failed to write to {}", path.display()))?;
            file.sync_data()
                .with_context(|| format!("failed to sync {}", path.display()))?;
            let elapsed = start.elapsed();
            if iteration >= warmup {
                timings.push(elapsed);
            }
        }
        summarise(&timings)
    }
}

/// Fresh executions of a trivial program with and without recording.
#[derive(Debug, Clone, Serialize)]
pub struct AuditCost {
    pub language: Language,
    pub code: &'static str,
    /// `Sandbox::new` plus the run, nothing recorded.
    pub without_recording: Summary,
    /// The same with what `moat run` adds for the audit trail: a workspace
    /// scan before and after, the start record appended before the run and
    /// the finish record after it.
    pub with_recording: Summary,
    /// The start and finish appends alone, timed inside the recorded runs.
    pub appends: Summary,
    /// The start record's append alone.
    pub start_append: Summary,
    /// The finish record's append alone, including building the record.
    pub finish_append: Summary,
    /// Median with recording minus median without, in milliseconds.
    pub added_ms: f64,
    /// Median with recording divided by median without.
    pub ratio: f64,
}

/// Timings of one recorded execution.
struct RecordedRun {
    total: Duration,
    start_append: Duration,
    finish_append: Duration,
}

/// Measures what recording adds to a fresh execution of `print(1)` or
/// `console.log(1)`: `runs` executions without recording and `runs` with
/// `recorder`, one of each per iteration, alternating which goes first so
/// that drift in machine load affects both kinds of run. The first `warmup`
/// iterations are not timed.
///
/// Both kinds of run use one empty workspace, like the fresh one that
/// `moat run` creates without `--workspace`. Creating the recorder (opening the store and
/// recording the policy) happens once per `moat run` process and is not
/// timed here.
pub async fn measure_audit_cost(
    runtime: &Runtime,
    recorder: &Recorder,
    language: Language,
    warmup: u32,
    runs: u32,
) -> anyhow::Result<AuditCost> {
    let program = Program::trivial(language);
    let limits = Limits::default();
    let workspace = tempfile::tempdir().context("failed to create the sandbox workspace")?;
    let files = FileAccess {
        workspace: workspace.path().to_path_buf(),
        grants: Vec::new(),
    };

    let mut without_recording = Vec::new();
    let mut with_recording = Vec::new();
    let mut appends = Vec::new();
    let mut start_append = Vec::new();
    let mut finish_append = Vec::new();

    for iteration in 0..warmup + runs {
        let (plain, recorded) = match iteration % 2 {
            0 => {
                let plain = time_plain_run(runtime, &files, &program, &limits).await?;
                let recorded =
                    time_recorded_run(runtime, recorder, &files, &program, &limits).await?;
                (plain, recorded)
            }
            _ => {
                let recorded =
                    time_recorded_run(runtime, recorder, &files, &program, &limits).await?;
                let plain = time_plain_run(runtime, &files, &program, &limits).await?;
                (plain, recorded)
            }
        };
        if iteration >= warmup {
            without_recording.push(plain);
            with_recording.push(recorded.total);
            appends.push(recorded.start_append + recorded.finish_append);
            start_append.push(recorded.start_append);
            finish_append.push(recorded.finish_append);
        }
    }

    let without_recording = summarise(&without_recording)?;
    let with_recording = summarise(&with_recording)?;
    Ok(AuditCost {
        language,
        code: program.code,
        without_recording,
        with_recording,
        appends: summarise(&appends)?,
        start_append: summarise(&start_append)?,
        finish_append: summarise(&finish_append)?,
        added_ms: with_recording.median_ms - without_recording.median_ms,
        ratio: with_recording.median_ms / without_recording.median_ms,
    })
}

/// Times `Sandbox::new` and one run, with nothing recorded.
async fn time_plain_run(
    runtime: &Runtime,
    files: &FileAccess,
    program: &Program,
    limits: &Limits,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut sandbox = Sandbox::new(runtime, program.language, files, Vec::new())
        .with_context(|| format!("failed to create a {} sandbox", program.language))?;
    let report = sandbox.run(program.code, program.filename, limits).await;
    let elapsed = start.elapsed();
    check_report(program, report)?;
    Ok(elapsed)
}

/// Times one execution recorded the way `moat run` records it: scan the
/// workspace, create the sandbox, append the start record, run, scan again,
/// append the finish record.
async fn time_recorded_run(
    runtime: &Runtime,
    recorder: &Recorder,
    files: &FileAccess,
    program: &Program,
    limits: &Limits,
) -> anyhow::Result<RecordedRun> {
    let workspace = &files.workspace;

    let start = Instant::now();
    let before = DirState::scan(workspace);
    let files_in = before.inputs(workspace);
    let mut sandbox = Sandbox::new(runtime, program.language, files, Vec::new())
        .with_context(|| format!("failed to create a {} sandbox", program.language))?;
    let info = RunInfo {
        execution_id: new_execution_id(),
        session_id: None,
        actor: Actor {
            principal: Some(PRINCIPAL.to_owned()),
            transport: Some(Transport::Cli),
            ..Actor::default()
        },
        language: program.language,
        guest_hash: sandbox.guest_hash(),
        started_at: now_rfc3339(),
    };

    let start_append_began = Instant::now();
    recorder
        .start(&info, program.code)
        .context("failed to append the start record")?;
    let start_append = start_append_began.elapsed();

    let result = sandbox.run(program.code, program.filename, limits).await;
    let files_out = before.changes(&DirState::scan(workspace), workspace);
    let failure = result.as_ref().err().map(|error| format!("{error:#}"));
    let ended = match (&result, &failure) {
        (Ok(report), _) => Ended::Report(report),
        (Err(_), message) => Ended::Failed {
            message: message.as_deref().unwrap_or_default(),
        },
    };

    let finish_append_began = Instant::now();
    recorder
        .finish(
            &info,
            Finished {
                code: program.code,
                stdin: None,
                files_in: &files_in,
                files_out: &files_out,
                ended,
                limits,
                egress: &[],
            },
        )
        .context("failed to append the finish record")?;
    let finished = Instant::now();

    check_report(program, result)?;
    Ok(RecordedRun {
        total: finished - start,
        start_append,
        finish_append: finished - finish_append_began,
    })
}

/// Finds the type of the filesystem holding `path` (which must exist), from
/// the mount table of this process.
fn filesystem_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mount_type_of(&mounts, &path)
}

/// Returns the type of the mount in `mounts` (the format of
/// `/proc/self/mounts`) with the longest mount point that contains `path`.
/// A later mount on the same point hides an earlier one, so it wins a tie.
fn mount_type_of(mounts: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_device), Some(mount_point), Some(kind)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mount_point = unescape_mount_field(mount_point);
        if !path.starts_with(&mount_point) {
            continue;
        }
        let depth = Path::new(&mount_point).components().count();
        if best.is_none_or(|(best_depth, _)| depth >= best_depth) {
            best = Some((depth, kind));
        }
    }
    best.map(|(_, kind)| kind.to_owned())
}

/// Decodes the octal escapes (`\040` for a space) that the kernel writes for
/// white space and backslashes in mount table fields.
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = bytes.get(index + 1..index + 4).filter(|digits| {
            bytes[index] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match escape {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                // Three octal digits reach 511; the kernel only writes bytes.
                decoded.push(u8::try_from(value).unwrap_or(b'?'));
                index += 4;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
tmpfs /tmp tmpfs rw,nosuid 0 0
/dev/vdb /work/my\\040disk xfs rw 0 0
/dev/vdc /mnt/data ext4 rw 0 0
tmpfs /mnt/data tmpfs rw 0 0
";

    #[test]
    fn mount_type_takes_longest_mount_point() {
        let kind = mount_type_of(MOUNTS, Path::new("/tmp/cache/audit.db"));
        assert_eq!(kind.as_deref(), Some("tmpfs"));

        let kind = mount_type_of(MOUNTS, Path::new("/home/user/target/audit.db"));
        assert_eq!(kind.as_deref(), Some("ext4"));
    }

    #[test]
    fn mount_type_matches_whole_components() {
        let kind = mount_type_of(MOUNTS, Path::new("/tmpfiles/audit.db"));
        assert_eq!(kind.as_deref(), Some("ext4"));
    }

    #[test]
    fn mount_type_decodes_escaped_space() {
        let kind = mount_type_of(MOUNTS, Path::new("/work/my disk/audit.db"));
        assert_eq!(kind.as_deref(), Some("xfs"));
    }

    #[test]
    fn mount_type_prefers_later_mount_on_same_point() {
        let kind = mount_type_of(MOUNTS, Path::new("/mnt/data/audit.db"));
        assert_eq!(kind.as_deref(), Some("tmpfs"));
    }

    #[test]
    fn mount_type_without_match_is_none() {
        assert_eq!(mount_type_of("", Path::new("/tmp")), None);
    }

    #[test]
    fn unescape_keeps_plain_backslash() {
        assert_eq!(unescape_mount_field("a\\b\\134c"), "a\\b\\c");
    }
}
