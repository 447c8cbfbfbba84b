//! Whether the data directory's tree can be trusted (edge), and how files are created in it.
//!
//! The data directory holds consent and health data, so nobody else may be able to change what
//! is in it: a planted symlink would redirect a write (`ledger.head.tmp` → a victim file) or a
//! delete (`participants` → another directory, which `forget` would then empty). The rules:
//!
//! - **The data directory** must be a directory owned by our effective uid that no group or
//!   other user can write ([`check_data_dir`]). If the path the user gave is itself a symbolic
//!   link, the link must be ours too; it is followed once, when the path is resolved, and its
//!   target is checked like any data directory. (A user may keep their data directory
//!   elsewhere and link to it; the threat is someone else's links, not the user's own.)
//! - **Directories inside it** (`participants/`, `ledger/`, each participant's directory and
//!   its temporary `.forget-`/`.rewrite-`/`.import-` directories) must not be symbolic links,
//!   and must be owned by us without group or other write bits ([`check_dir`]). They are never
//!   followed: a link is refused, never resolved.
//! - **New directories** are created mode 0700 ([`create_private_dir`]).
//! - **Files attune creates** in the tree are opened with `O_NOFOLLOW`; temporary files are
//!   created with `O_CREAT | O_EXCL` after a stale one (or a planted link, which `unlink`
//!   removes without following) is deleted ([`create_temp`]).
//!
//! Since no one else can write into a directory that passes these checks, nobody else can
//! plant an entry after the check either. The ancestors of the data directory are not
//! checked (as for the socket directory): whoever can rename the data directory's parent
//! entries can swap the whole tree, and keeping them safe is the system's job.
//!
//! Every refusal is one line naming the path, its owner and its mode.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a path in the data directory is not trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UntrustedPath {
    /// A directory inside the data directory (or a data directory link of another user) is a
    /// symbolic link.
    #[error(
        "refusing {path}: it is a symbolic link (owner uid {owner}, mode {mode:04o}); attune does not follow links inside its data directory"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory is not ours alone to change (owner, write bits, or not a directory).
    #[error(
        "refusing {path}: owner uid {owner}, mode {mode:04o}{kind}; it must be a directory owned by uid {uid} that no group or other user can write"
    )]
    NotPrivate {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
        /// `""`, or `", not a directory"`.
        kind: &'static str,
        /// Our effective uid.
        uid: u32,
    },
    /// The path could not be inspected or created.
    #[error("data directory: cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> UntrustedPath + use<> {
    let path = path.to_owned();
    move |source| UntrustedPath::Io { op, path, source }
}

/// Checks the metadata of `path` (not followed): a directory, owned by us, no group or other
/// write bit.
fn check_meta(path: &Path, meta: &std::fs::Metadata) -> Result<(), UntrustedPath> {
    let mode = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() {
        return Err(UntrustedPath::Symlink {
            path: path.to_owned(),
            owner: meta.uid(),
            mode,
        });
    }
    let uid = euid();
    if !meta.is_dir() || meta.uid() != uid || mode & 0o022 != 0 {
        return Err(UntrustedPath::NotPrivate {
            path: path.to_owned(),
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

/// Checks a directory inside the data directory if it exists (module doc): not a symbolic link,
/// a directory, ours, no group or other write bit. Returns whether it exists.
pub fn check_dir(path: &Path) -> Result<bool, UntrustedPath> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => check_meta(path, &meta).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// Checks the data directory itself if it exists (module doc): a symbolic link given as the
/// data directory must be ours, and what it leads to must pass [`check_dir`]'s rules. Returns
/// whether it exists.
pub fn check_data_dir(path: &Path) -> Result<bool, UntrustedPath> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("inspect", path)(e)),
    };
    if !meta.file_type().is_symlink() {
        return check_meta(path, &meta).map(|()| true);
    }
    if meta.uid() != euid() {
        return Err(UntrustedPath::Symlink {
            path: path.to_owned(),
            owner: meta.uid(),
            mode: meta.permissions().mode() & 0o7777,
        });
    }
    let real = std::fs::canonicalize(path).map_err(io_err("resolve", path))?;
    let target = std::fs::symlink_metadata(&real).map_err(io_err("inspect", &real))?;
    check_meta(&real, &target).map(|()| true)
}

/// Creates the directory `path` with mode 0700 if it does not exist (its parent must), then
/// checks it with [`check_dir`].
pub fn create_private_dir(path: &Path) -> Result<(), UntrustedPath> {
    if !check_dir(path)? {
        match DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create", path)(e)),
        }
        check_dir(path)?;
    }
    Ok(())
}

/// Creates the data directory (mode 0700; missing parents get the default mode) if it does not
/// exist, then checks it with [`check_data_dir`].
pub fn create_data_dir(path: &Path) -> Result<(), UntrustedPath> {
    if !check_data_dir(path)? {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        match DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create", path)(e)),
        }
        check_data_dir(path)?;
    }
    Ok(())
}

/// `O_NOFOLLOW`: opening a symbolic link fails (`ELOOP`) instead of following it.
pub(crate) fn nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

/// Creates a new temporary file at `path` for writing, mode 0600, never through a symbolic
/// link: whatever is at `path` (a stale temp file, or a planted link, which `unlink` removes
/// without following) is removed first, and the file is created with `O_CREAT | O_EXCL |
/// O_NOFOLLOW`, so a link planted in between makes this fail rather than write through it.
pub fn create_temp(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nofollow())
        .open(path)
}

/// Reads the file at `path` without following a symbolic link (and without blocking on a FIFO).
pub fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(nofollow() | nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_planted_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let tmp = dir.path().join("x.tmp");
        symlink(&victim, &tmp).unwrap();
        use std::io::Write;
        create_temp(&tmp).unwrap().write_all(b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&tmp).unwrap(), b"new");
        let meta = std::fs::symlink_metadata(&tmp).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn links_and_writable_dirs_are_refused_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        create_private_dir(&real).unwrap();
        assert_eq!(
            std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let link = dir.path().join("link");
        symlink(&real, &link).unwrap();
        let e = check_dir(&link).unwrap_err();
        assert!(matches!(e, UntrustedPath::Symlink { .. }), "{e}");
        assert!(!e.to_string().contains('\n'));
        // The user's own link given as the data directory is followed once.
        assert!(check_data_dir(&link).unwrap());
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(&real).unwrap_err().to_string();
        assert!(e.contains("mode 0777") && e.contains("owner uid"), "{e}");
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_dir(&real).unwrap());
        assert!(!check_dir(&dir.path().join("absent")).unwrap());
    }
}
