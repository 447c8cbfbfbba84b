//! The data-directory lock, `<data_dir>/attune.lock`: one process at a time owns a data
//! directory (sled is single-process; so is attune). The owner writes who it is into the file
//! (one JSON line: pid, role, command line, and for a daemon its control socket once bound), so
//! that a process that finds the lock taken can say exactly what holds it.
//!
//! The lock is `flock` on the file (released by the kernel when the owner dies, so a kill -9
//! leaves no stale lock); the file's content is advisory and may be stale or empty while
//! another process is between taking the lock and writing it. It is opened with `O_NOFOLLOW`
//! (mode 0600), so a symbolic link planted as the lock file is refused, not written through.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file's name under the data directory.
pub const LOCK_FILE: &str = "attune.lock";

/// What kind of process owns the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `attune run` or `attune replay`: holds the directory while it runs and answers on its
    /// control socket.
    Daemon,
    /// A command without a daemon (`consent`, `forget`, `export`, `import`): holds it briefly.
    Command,
}

/// Who holds the lock, as its owner wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Daemon or command.
    pub role: Role,
    /// The command line, shortened to 200 characters.
    pub command: String,
    /// A daemon's control socket, once it accepts requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<PathBuf>,
    /// A daemon's subscriber socket (what `--socket` names), once it accepts requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
}

impl Holder {
    /// This process, in `role`.
    pub fn this_process(role: Role) -> Self {
        let command: String = std::env::args()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        Self {
            pid: std::process::id(),
            role,
            command,
            control: None,
            socket: None,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.role {
            Role::Daemon => "another attune daemon",
            Role::Command => "another attune command",
        };
        write!(f, "{what} (pid {}, `{}`)", self.pid, self.command)
    }
}

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct DirLock {
    file: File,
    holder: Holder,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// Another process holds it; what it wrote, if readable.
    Busy(Option<Holder>),
    /// The file could not be opened or locked.
    Io(std::io::Error),
}

impl DirLock {
    /// Takes the lock without waiting and writes `holder` into the file.
    pub(crate) fn try_take(dir: &Path, holder: Holder) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(crate::store::trust::nofollow())
            .open(&path)
            .map_err(LockError::Io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LockError::Busy(read_holder(&path)));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        let mut lock = Self { file, holder };
        lock.write().map_err(LockError::Io)?;
        Ok(lock)
    }

    /// Records the daemon's sockets in the lock file.
    pub(crate) fn set_serving(&mut self, socket: &Path, control: &Path) -> std::io::Result<()> {
        self.holder.socket = Some(socket.to_owned());
        self.holder.control = Some(control.to_owned());
        self.write()
    }

    fn write(&mut self) -> std::io::Result<()> {
        let line = serde_json::to_string(&self.holder).unwrap_or_default();
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(format!("{line}\n").as_bytes())
    }
}

/// What the current owner wrote into `<dir>/attune.lock`, if anything readable.
pub fn read_holder(path: &Path) -> Option<Holder> {
    let bytes = crate::store::trust::read_nofollow(path).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    serde_json::from_str(text.trim()).ok()
}
