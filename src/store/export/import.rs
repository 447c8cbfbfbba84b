//! Reading an export back: the manifest and every listed file read once, bounded, from regular
//! files only, verified against their sizes and SHA-256, and the consent each part needs
//! (module doc of `store::export`).

use super::*;

/// Everything an export holds, verified and parsed.
#[derive(Debug)]
pub(super) struct Contents {
    pub(super) consent_history: Vec<serde_json::Value>,
    pub(super) profile: serde_json::Map<String, serde_json::Value>,
    pub(super) features: Vec<FeatureRow>,
    pub(super) feedback: Vec<(u64, serde_json::Value)>,
    pub(super) recordings: Vec<NamedBytes>,
    /// The stream kinds the recordings' headers declare.
    pub(super) recording_kinds: BTreeSet<StreamKind>,
}

/// What storing an export needs from the consent ledger (module doc, "Consent an import needs").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportNeed {
    /// The purpose that must be granted.
    pub purpose: Purpose,
    /// The stream kinds it must be granted for (every one of them).
    pub kinds: Vec<StreamKind>,
    /// Whether one granted kind is enough (feedback) rather than every kind listed.
    pub any: bool,
    /// What of the export needs it, for messages (`"1 recordings, 0 feature rows"`).
    pub what: String,
}

/// An export read once and verified (manifest, sizes, checksums, content, counts), held in
/// memory: the participant and parts a caller checks consent for are exactly what
/// [`VerifiedExport::store`] stores.
#[derive(Debug)]
pub struct VerifiedExport {
    pub(super) dir: PathBuf,
    pub(super) manifest: Manifest,
    pub(super) contents: Contents,
}

impl VerifiedExport {
    /// Reads and verifies the export in `export_dir` (module doc, "Import"); writes nothing.
    pub fn read(export_dir: &Path) -> Result<Self, StoreError> {
        let manifest = read_manifest(export_dir)?;
        let contents = read_contents(export_dir, &manifest)?;
        Ok(Self {
            dir: export_dir.to_owned(),
            manifest,
            contents,
        })
    }

    /// Whose data it is.
    pub fn participant(&self) -> &ParticipantId {
        &self.manifest.participant
    }

    /// Entries per kind.
    pub fn counts(&self) -> ExportCounts {
        self.manifest.counts
    }

    /// The consent storing it needs (module doc, "Consent an import needs"); empty parts need
    /// nothing.
    pub fn needs(&self) -> Vec<ImportNeed> {
        let c = &self.contents;
        let mut needs = Vec::new();
        let mut record: BTreeSet<StreamKind> = c.recording_kinds.clone();
        for row in &c.features {
            if row.hr_bpm.is_some() {
                record.insert(row.hr_source);
            }
            if row.rmssd_ms.is_some() {
                record.insert(StreamKind::Rr);
            }
            if row.scl_us.is_some() || row.scr_per_min.is_some() {
                record.insert(StreamKind::Eda);
            }
        }
        if !c.recordings.is_empty() || !c.features.is_empty() {
            needs.push(ImportNeed {
                purpose: Purpose::Record,
                kinds: record.into_iter().collect(),
                any: false,
                what: format!(
                    "{} recordings, {} feature rows",
                    c.recordings.len(),
                    c.features.len()
                ),
            });
        }
        if !c.profile.is_empty() {
            needs.push(ImportNeed {
                purpose: Purpose::Profile,
                kinds: ALL_KINDS.to_vec(),
                any: false,
                what: format!("{} profile entries", c.profile.len()),
            });
        }
        if !c.feedback.is_empty() {
            needs.push(ImportNeed {
                purpose: Purpose::Process,
                kinds: ALL_KINDS.to_vec(),
                any: true,
                what: format!("{} feedback entries", c.feedback.len()),
            });
        }
        needs
    }

    /// Stores it as the participant's new store in `data_dir`, which must not have one yet.
    /// The caller checks [`needs`](Self::needs) against the ledger, holding the data directory
    /// (`store::datadir::DataDir`) from that check until this returns.
    pub fn store(self, data_dir: &Path) -> Result<ImportSummary, StoreError> {
        let participant = self.manifest.participant.clone();
        let dir = participant_dir(data_dir, &participant);
        let exists = || fs::symlink_metadata(&dir).is_ok();
        if exists() {
            return Err(StoreError::AlreadyExists {
                participant,
                path: dir,
            });
        }
        let contents = self.contents;

        let busy = BusyGuard::acquire(data_dir, &participant)?;
        participant::recover_one(data_dir, &participant)?;
        if exists() {
            return Err(StoreError::AlreadyExists {
                participant,
                path: dir,
            });
        }
        let parent = participants_dir(data_dir);
        let staging = parent.join(format!("{IMPORT_PREFIX}{participant}"));
        let io = |op, path: &Path| io_error(&participant, op, path);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&parent)
            .map_err(io("create", &parent))?;
        DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(io("create", &staging))?;
        let filled = fill(data_dir, &participant, &staging, &contents).and_then(|()| {
            if exists() {
                return Err(StoreError::AlreadyExists {
                    participant: participant.clone(),
                    path: dir.clone(),
                });
            }
            fs::rename(&staging, &dir).map_err(io("rename", &staging))?;
            sync_dir(&parent).map_err(io("fsync", &parent))
        });
        if let Err(e) = filled {
            let _ = fs::remove_dir_all(&staging);
            let _ = sync_dir(&parent);
            return Err(e);
        }
        drop(busy);
        Ok(ImportSummary {
            participant,
            counts: self.manifest.counts,
            consent_history: contents.consent_history,
        })
    }

    /// The export directory it was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Restores a participant's store from an export (module doc, "Import") without checking
/// consent: [`VerifiedExport::read`] then [`VerifiedExport::store`]. The participant is the one
/// the manifest names; it must not have a store in `data_dir` yet.
pub fn import(data_dir: &Path, export_dir: &Path) -> Result<ImportSummary, StoreError> {
    VerifiedExport::read(export_dir)?.store(data_dir)
}

fn fill(
    data_dir: &Path,
    participant: &ParticipantId,
    staging: &Path,
    c: &Contents,
) -> Result<(), StoreError> {
    let store = ParticipantStore::open_dir(data_dir, participant, staging.to_owned(), None)?;
    for (name, value) in &c.profile {
        store.put_profile(name, value)?;
    }
    for row in &c.features {
        store.put_feature_row(row)?;
    }
    for (seq, value) in &c.feedback {
        store.put_feedback(*seq, value)?;
    }
    for (name, bytes) in &c.recordings {
        store.put_recording(name, bytes)?;
    }
    store.close()
}

fn read_manifest(export_dir: &Path) -> Result<Manifest, StoreError> {
    let not_export = |message: String| StoreError::NotAnExport {
        path: export_dir.to_owned(),
        message,
    };
    let path = export_dir.join(MANIFEST);
    let file =
        open_regular(&path).map_err(|e| not_export(format!("cannot read {MANIFEST}: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| not_export(format!("cannot read {MANIFEST}: {e}")))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(not_export(format!(
            "{MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| not_export(format!("{MANIFEST} is not JSON: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(EXPORT_FORMAT) {
        return Err(not_export(format!(
            "{MANIFEST} has no \"format\": \"{EXPORT_FORMAT}\""
        )));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(EXPORT_VERSION) => {}
        Some(found) => {
            return Err(StoreError::UnsupportedExportVersion {
                path: export_dir.to_owned(),
                found,
                supported: EXPORT_VERSION,
            });
        }
        None => return Err(not_export(format!("{MANIFEST} has no numeric \"version\""))),
    }
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| StoreError::BadExport {
        path: export_dir.to_owned(),
        file: MANIFEST.to_owned(),
        message: e.to_string(),
    })?;
    if manifest.participant.as_str().starts_with('.') {
        return Err(StoreError::ReservedId {
            participant: manifest.participant,
        });
    }
    Ok(manifest)
}

fn read_contents(export_dir: &Path, m: &Manifest) -> Result<Contents, StoreError> {
    let bad = |file: &str, message: String| StoreError::BadExport {
        path: export_dir.to_owned(),
        file: file.to_owned(),
        message,
    };
    let mut seen = std::collections::BTreeSet::new();
    for f in &m.files {
        if !seen.insert(f.path.as_str()) {
            return Err(bad(MANIFEST, format!("{} is listed twice", f.path)));
        }
        if ![CONSENT, PROFILE, FEATURES, FEEDBACK].contains(&f.path.as_str())
            && recording_name(&f.path).is_none()
            && session_name(&f.path).is_none()
        {
            return Err(bad(MANIFEST, format!("unexpected file {:?}", f.path)));
        }
    }
    let entry = |name: &str| -> Result<&ExportFile, StoreError> {
        m.files
            .iter()
            .find(|f| f.path == name)
            .ok_or_else(|| bad(MANIFEST, format!("{name} is not listed")))
    };
    let read = |f: &ExportFile| read_verified(export_dir, f);
    let text = |f: &ExportFile| -> Result<String, StoreError> {
        String::from_utf8(read(f)?).map_err(|_| bad(&f.path, "not UTF-8".into()))
    };

    let jsonl = |f: &ExportFile| -> Result<Vec<serde_json::Value>, StoreError> {
        let t = text(f)?;
        if !t.is_empty() && !t.ends_with('\n') {
            return Err(bad(&f.path, "the last line does not end with \\n".into()));
        }
        t.split_terminator('\n')
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line)
                    .map_err(|e| bad(&format!("{}:{}", f.path, i + 1), e.to_string()))
            })
            .collect()
    };
    let consent_history = jsonl(entry(CONSENT)?)?;

    let profile_file = entry(PROFILE)?;
    let profile: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text(profile_file)?).map_err(|e| bad(PROFILE, e.to_string()))?;
    for name in profile.keys() {
        check_name(name).map_err(|r| bad(PROFILE, format!("entry name {name:?}: {r}")))?;
    }

    let features = parse_features_csv(&text(entry(FEATURES)?)?)
        .map_err(|(line, message)| bad(&format!("{FEATURES}:{line}"), message))?;

    let mut feedback: Vec<(u64, serde_json::Value)> = Vec::new();
    for (i, v) in jsonl(entry(FEEDBACK)?)?.into_iter().enumerate() {
        let line: FeedbackLine = serde_json::from_value(v)
            .map_err(|e| bad(&format!("{FEEDBACK}:{}", i + 1), e.to_string()))?;
        if feedback.last().is_some_and(|(s, _)| *s >= line.seq) {
            return Err(bad(
                &format!("{FEEDBACK}:{}", i + 1),
                "seq must strictly increase".into(),
            ));
        }
        feedback.push((line.seq, line.feedback));
    }

    let mut recordings = Vec::new();
    let mut recording_kinds = BTreeSet::new();
    for f in &m.files {
        if let Some(name) = recording_name(&f.path) {
            let bytes = read(f)?;
            let reader = Reader::open(bytes.as_slice()).map_err(|e| bad(&f.path, e.to_string()))?;
            for s in &reader.header().streams {
                let kind = s.kind().ok_or_else(|| {
                    bad(
                        &f.path,
                        format!("stream {:?} has an unknown kind {:?}", s.id, s.kind),
                    )
                })?;
                recording_kinds.insert(kind);
            }
            recordings.push((name.to_owned(), bytes));
        }
    }

    // Session files are verified, not stored (module doc, "Import").
    let mut sessions = 0;
    for f in &m.files {
        if session_name(&f.path).is_some() {
            let bytes = read(f)?;
            let mut reader =
                Reader::open(bytes.as_slice()).map_err(|e| bad(&f.path, e.to_string()))?;
            while reader
                .next_record()
                .map_err(|e| bad(&f.path, e.to_string()))?
                .is_some()
            {}
            sessions += 1;
        }
    }

    let found = ExportCounts {
        sessions,
        consent_events: consent_history.len() as u64,
        profile_entries: profile.len() as u64,
        feature_rows: features.len() as u64,
        feedback_entries: feedback.len() as u64,
        recordings: recordings.len() as u64,
    };
    if found != m.counts {
        return Err(bad(
            MANIFEST,
            format!(
                "counts {:?} do not match the files, which hold {found:?}",
                m.counts
            ),
        ));
    }
    Ok(Contents {
        consent_history,
        profile,
        features,
        feedback,
        recordings,
        recording_kinds,
    })
}

/// The session name of an export path `sessions/<name>.attune.ndjson`, if valid.
pub(super) fn session_name(path: &str) -> Option<&str> {
    let name = path
        .strip_prefix(SESSIONS_DIR)?
        .strip_prefix('/')?
        .strip_suffix(RECORDING_SUFFIX)?;
    check_name(name).ok().map(|()| name)
}

/// The recording name of an export path `recordings/<name>.attune.ndjson`, if valid.
pub(super) fn recording_name(path: &str) -> Option<&str> {
    let name = path
        .strip_prefix(RECORDINGS_DIR)?
        .strip_prefix('/')?
        .strip_suffix(RECORDING_SUFFIX)?;
    check_name(name).ok().map(|()| name)
}

/// Opens `path` for reading if it is a regular file (following symlinks), without blocking on
/// a FIFO or a device: those, and directories, are refused.
fn open_regular(path: &Path) -> io::Result<fs::File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Reads a listed file, reading at most one byte more than the manifest claims, and checks its
/// size and SHA-256.
fn read_verified(export_dir: &Path, f: &ExportFile) -> Result<Vec<u8>, StoreError> {
    let path = export_dir.join(&f.path);
    let file = open_regular(&path).map_err(|e| StoreError::BadExport {
        path: export_dir.to_owned(),
        file: f.path.clone(),
        message: format!("listed in {MANIFEST} but cannot be read: {e}"),
    })?;
    let mut bytes = Vec::new();
    file.take(f.bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| StoreError::BadExport {
            path: export_dir.to_owned(),
            file: f.path.clone(),
            message: format!("cannot be read: {e}"),
        })?;
    let found = sha256_hex(&bytes);
    if bytes.len() as u64 != f.bytes || found != f.sha256 {
        return Err(StoreError::ChecksumMismatch {
            path: export_dir.to_owned(),
            file: f.path.clone(),
            expected: f.sha256.clone(),
            found,
        });
    }
    Ok(bytes)
}
