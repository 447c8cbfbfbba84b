//! Binding a Unix socket the safe way (steps 1–3 of the [`server`](super) recipe): the private
//! socket directory, the stale-socket check, the bind under a temporary name with mode 0600, and
//! the default subscriber and control socket paths.

use super::ServerError;
use crate::publish::trust::{self, TrustError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::UnixListener;
use tracing::debug;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ServerError + '_ {
    move |source| ServerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The control socket of a daemon whose subscriber socket is `socket`: `control.sock` beside it.
pub fn control_socket_path(socket: &Path) -> PathBuf {
    socket.with_file_name("control.sock")
}

/// The default socket path: `$XDG_RUNTIME_DIR/attune/attune.sock`, else
/// `/tmp/attune-<uid>/attune.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("attune").join("attune.sock"),
        _ => PathBuf::from(format!("/tmp/attune-{}", nix::unistd::geteuid())).join("attune.sock"),
    }
}

/// Creates `dir` with mode 0700 if it is missing, else checks that it is private and ours: a
/// real directory (a symlink is refused, never followed), owned by our uid, no group or other
/// bits ([`trust::check_private_dir`], the rule clients apply too).
pub fn ensure_private_dir(dir: &Path) -> Result<(), ServerError> {
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
        }
        Err(e) => return Err(io_err(dir)(e)),
    }
    trust::check_private_dir(dir).map_err(|e| match e {
        TrustError::Symlink { dir, owner, uid } => ServerError::SymlinkDir { dir, owner, uid },
        TrustError::NotPrivate {
            dir,
            owner,
            mode,
            uid,
            ..
        } => ServerError::InsecureDir {
            dir,
            mode,
            owner,
            uid,
        },
        TrustError::Io { path, source } => ServerError::Io { path, source },
        other => io_err(dir)(io::Error::other(other.to_string())),
    })
}

/// Binds a Unix socket at `path` the safe way ([`server`](super) module doc, steps 1–3):
/// private directory, a live socket is never replaced, a stale one of ours is removed, and the
/// socket appears at its path only with mode 0600.
pub fn bind_private(path: &Path) -> Result<UnixListener, ServerError> {
    let path = path.to_owned();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| ServerError::NoDir(path.clone()))?;
    ensure_private_dir(dir)?;
    match std::fs::symlink_metadata(&path) {
        Ok(meta) => {
            if !meta.file_type().is_socket() {
                return Err(ServerError::NotASocket(path));
            }
            match std::os::unix::net::UnixStream::connect(&path) {
                Ok(_) => return Err(ServerError::InUse(path)),
                // Only a refused connection means nobody listens; anything else (a full
                // backlog answers EAGAIN) may be a live daemon, whose socket is never removed.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    debug!(path = %path.display(), "Removing stale socket.");
                    std::fs::remove_file(&path).map_err(io_err(&path))?;
                }
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    // Bind under a temporary name, set 0600, then link it into place: the socket appears at
    // its path only with its final mode (the umask alone would give 0700), and the link
    // fails rather than replace a socket another daemon created meanwhile.
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("attune.sock"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(io_err(&tmp))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = placed {
        return Err(match e.kind() {
            io::ErrorKind::AlreadyExists => ServerError::InUse(path),
            _ => io_err(&path)(e),
        });
    }
    Ok(listener)
}
