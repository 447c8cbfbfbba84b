//! Whether a socket path can be trusted, checked by clients before they send a byte (edge).
//!
//! Anyone can listen at a path a client is given. A client of attune (the consent CLI, `listen`,
//! `demo`) therefore checks, in this order and before writing anything:
//!
//! 1. the socket's directory is private: not a symlink, a directory, owned by our effective uid,
//!    no group or other permission bits ([`check_private_dir`]; the daemon applies the same rule
//!    when it binds, `server::ensure_private_dir`);
//! 2. after connecting, the peer's uid (`SO_PEERCRED`, read by the kernel at `connect`) is our
//!    effective uid ([`check_peer`]).
//!
//! The directory check keeps a client from talking into a directory someone else controls; the
//! peer check is the real gate (unix(7): socket-file permissions are not a portable security
//! measure), so a daemon of another user is refused even in a directory that looks right.
//! Errors are one line naming the path, its owner and its mode.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a socket path or peer is not trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The socket directory is a symbolic link.
    #[error(
        "refusing socket directory {dir}: it is a symbolic link (owner uid {owner}); the daemon's socket directory must be a real directory owned by uid {uid} with mode 0700"
    )]
    Symlink {
        /// Directory.
        dir: PathBuf,
        /// The link's owner.
        owner: u32,
        /// Our effective uid.
        uid: u32,
    },
    /// The socket directory is not private to us (owner, mode, or not a directory).
    #[error(
        "refusing socket directory {dir}: owner uid {owner}, mode {mode:04o}{kind}; it must be a directory owned by uid {uid} with mode 0700 (another user may be listening there)"
    )]
    NotPrivate {
        /// Directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// `""`, or `", not a directory"`.
        kind: &'static str,
        /// Our effective uid.
        uid: u32,
    },
    /// The process at the other end runs as another user.
    #[error(
        "refusing the daemon at {path}: it runs as uid {peer}, not as uid {uid}; nothing was sent to it"
    )]
    ForeignPeer {
        /// Socket path.
        path: PathBuf,
        /// The peer's uid.
        peer: u32,
        /// Our effective uid.
        uid: u32,
    },
    /// The socket path has no directory part.
    #[error("socket path {0} has no directory")]
    NoDir(PathBuf),
    /// The directory does not exist (no daemon has ever run there).
    #[error("socket directory {0} does not exist")]
    Missing(PathBuf),
    /// An OS error with the path it concerns.
    #[error("socket {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: io::Error,
    },
}

impl TrustError {
    /// True when nothing is there to distrust: the directory is missing, or nothing answers at
    /// the socket (so a client may fall back to working without a daemon). False for every
    /// refusal, which must never be a silent fallback.
    pub fn is_absent(&self) -> bool {
        match self {
            Self::Missing(_) => true,
            Self::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ),
            _ => false,
        }
    }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The directory a socket path lives in.
pub fn socket_dir(socket: &Path) -> Result<&Path, TrustError> {
    socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| TrustError::NoDir(socket.to_owned()))
}

/// Checks that `dir` is a private directory of ours: not a symlink (it is not followed), a
/// directory, owned by our effective uid, and without group or other permission bits.
pub fn check_private_dir(dir: &Path) -> Result<(), TrustError> {
    let uid = euid();
    let meta = std::fs::symlink_metadata(dir).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            TrustError::Missing(dir.to_owned())
        } else {
            TrustError::Io {
                path: dir.to_owned(),
                source,
            }
        }
    })?;
    if meta.file_type().is_symlink() {
        return Err(TrustError::Symlink {
            dir: dir.to_owned(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() || meta.uid() != uid || mode & 0o077 != 0 {
        return Err(TrustError::NotPrivate {
            dir: dir.to_owned(),
            owner: meta.uid(),
            mode,
            kind: if meta.is_dir() {
                ""
            } else {
                ", not a directory"
            },
            uid,
        });
    }
    Ok(())
}

/// The directory check for a client about to connect to `socket`: [`check_private_dir`] on its
/// directory, except that when nothing exists at `socket` the answer is "absent" (an `Io`
/// error of kind `NotFound`, [`TrustError::is_absent`]) whatever the directory is: with no
/// socket there is nothing to talk to, and the caller does not connect.
pub fn check_socket_dir(socket: &Path) -> Result<(), TrustError> {
    let checked = check_private_dir(socket_dir(socket)?);
    match checked {
        Err(e) if !e.is_absent() => match std::fs::symlink_metadata(socket) {
            Err(source) if source.kind() == io::ErrorKind::NotFound => Err(TrustError::Io {
                path: socket.to_owned(),
                source,
            }),
            _ => Err(e),
        },
        other => other,
    }
}

/// Checks that the process at the other end of `stream` (connected to `path`) runs as our
/// effective uid. Reads `SO_PEERCRED`; sends and receives nothing.
pub fn check_peer(stream: &impl AsFd, path: &Path) -> Result<(), TrustError> {
    let uid = euid();
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| TrustError::Io {
            path: path.to_owned(),
            source: io::Error::from(e),
        })?;
    if cred.uid() != uid {
        return Err(TrustError::ForeignPeer {
            path: path.to_owned(),
            peer: cred.uid(),
            uid,
        });
    }
    Ok(())
}

/// Connects to `socket` (blocking) after checking its directory, and checks the peer's uid;
/// nothing has been written when this returns.
pub fn connect(socket: &Path) -> Result<std::os::unix::net::UnixStream, TrustError> {
    check_socket_dir(socket)?;
    let s = std::os::unix::net::UnixStream::connect(socket).map_err(|source| TrustError::Io {
        path: socket.to_owned(),
        source,
    })?;
    check_peer(&s, socket)?;
    Ok(s)
}

/// [`connect`] for tokio.
pub async fn connect_async(socket: &Path) -> Result<tokio::net::UnixStream, TrustError> {
    check_socket_dir(socket)?;
    let s = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| TrustError::Io {
            path: socket.to_owned(),
            source,
        })?;
    check_peer(&s, socket)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::DirBuilderExt;

    fn private(dir: &Path) {
        std::fs::DirBuilder::new().mode(0o700).create(dir).unwrap();
    }

    #[test]
    fn a_private_dir_of_ours_passes() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("run");
        private(&d);
        check_private_dir(&d).unwrap();
    }

    #[test]
    fn a_loose_dir_is_refused_with_its_mode() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("run");
        private(&d);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o750)).unwrap();
        let e = check_private_dir(&d).unwrap_err();
        assert!(
            matches!(e, TrustError::NotPrivate { mode: 0o750, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("0750"), "{e}");
        assert!(!e.is_absent());
    }

    #[test]
    fn a_symlink_to_a_private_dir_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("run");
        private(&d);
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        let e = check_private_dir(&link).unwrap_err();
        assert!(matches!(e, TrustError::Symlink { .. }), "{e}");
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, b"").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = check_private_dir(&f).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn a_missing_dir_or_socket_is_absent_not_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = connect(&t.path().join("nope").join("s.sock")).unwrap_err();
        assert!(e.is_absent(), "{e}");
        // A loose directory with no socket in it: nothing to refuse, nothing to talk to.
        let e = connect(&t.path().join("s.sock")).unwrap_err();
        assert!(e.is_absent(), "{e}");
        // With a socket in it, the loose directory is refused before connecting.
        let path = t.path().join("l.sock");
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let e = connect(&path).unwrap_err();
        assert!(matches!(e, TrustError::NotPrivate { .. }), "{e}");
    }

    #[test]
    fn our_own_peer_passes() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("run");
        private(&d);
        let path = d.join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        connect(&path).unwrap();
    }
}
