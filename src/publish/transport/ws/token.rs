//! The WebSocket token (edge): 32 random bytes (from the kernel, `/dev/urandom`) as 64 hex
//! characters in `<data-dir>/ws-token`, mode 0600, created once and kept, so an app configured
//! with it keeps working across restarts. Delete the file to issue a new one.
//!
//! Created crash-safely: written and synced under a temporary name, then hard-linked to its
//! name (which fails if another process created it first: then that one is used), so the file
//! is either absent or whole.

use crate::store::trust;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The token file's name in the data directory.
pub const FILE: &str = "ws-token";

/// The token file of `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

fn valid(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads the token, creating the file (and the data directory) first if there is none. Errors
/// are one line naming the file.
pub fn ensure(data_dir: &Path) -> Result<(PathBuf, String), String> {
    trust::create_data_dir(data_dir).map_err(|e| e.to_string())?;
    let file = path(data_dir);
    for _ in 0..2 {
        match trust::read_nofollow(&file) {
            Ok(bytes) => return check(&file, &bytes).map(|t| (file.clone(), t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&file)?,
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        }
    }
    Err(format!(
        "{} vanished while it was being created",
        file.display()
    ))
}

fn check(file: &Path, bytes: &[u8]) -> Result<String, String> {
    let meta = std::fs::symlink_metadata(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let uid = nix::unistd::geteuid().as_raw();
    if meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{} must be owned by uid {uid} with mode 0600 (it is uid {}, mode {:o}); fix it or delete it for a new token",
            file.display(),
            meta.uid(),
            meta.mode() & 0o777
        ));
    }
    let t = String::from_utf8_lossy(bytes).trim().to_owned();
    if !valid(&t) {
        return Err(format!(
            "{} does not hold a token (64 hex characters); delete it for a new one",
            file.display()
        ));
    }
    Ok(t)
}

fn create(file: &Path) -> Result<(), String> {
    let err = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", file.display());
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| format!("cannot read random bytes from /dev/urandom: {e}"))?;
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = file.with_extension("tmp");
    let mut f = trust::create_temp(&tmp).map_err(|e| err("create", e))?;
    f.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| err("write", e))?;
    drop(f);
    let linked = std::fs::hard_link(&tmp, file);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err("create", e)),
    }
    if let Some(dir) = file.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_token_is_made_once_private_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        let (p, t) = ensure(&data).unwrap();
        assert!(valid(&t), "{t}");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(ensure(&data).unwrap().1, t, "kept across calls");
        assert!(!p.with_extension("tmp").exists());
        let (_, t2) = {
            std::fs::remove_file(&p).unwrap();
            ensure(&data).unwrap()
        };
        assert_ne!(t, t2, "a deleted token is replaced by a new one");
    }

    #[test]
    fn a_readable_or_broken_token_file_is_refused_in_one_line() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        let (p, _) = ensure(&data).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ensure(&data).unwrap_err();
        assert!(e.contains("mode 0600") && !e.contains('\n'), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&p, "short\n").unwrap();
        let e = ensure(&data).unwrap_err();
        assert!(e.contains("does not hold a token"), "{e}");
    }
}
