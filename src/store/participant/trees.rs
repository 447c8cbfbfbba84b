//! [`ParticipantStore`]: one participant's open database and its four trees (layout in the
//! module doc of `store::participant`).

use super::*;
use crate::recording::{Reader, RecordingError};
use busy::LOCK_POLL;
use std::time::Instant;

/// One participant's open database. The only handle there is: dropping it (or [`close`]) closes
/// sled's database. See the module doc for the layout.
///
/// [`close`]: ParticipantStore::close
pub struct ParticipantStore {
    participant: ParticipantId,
    data_dir: PathBuf,
    path: PathBuf,
    db: sled::Db,
    recordings: sled::Tree,
    features: sled::Tree,
    profile: sled::Tree,
    feedback: sled::Tree,
    /// Declared last: released after the database handles above have dropped.
    _busy: Option<BusyGuard>,
}

impl std::fmt::Debug for ParticipantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticipantStore")
            .field("participant", &self.participant)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ParticipantStore {
    /// Opens the participant's store, creating it (directories mode 0700) if absent.
    pub fn open(data_dir: &Path, participant: &ParticipantId) -> Result<Self, StoreError> {
        let busy = BusyGuard::acquire(data_dir, participant)?;
        recover_one(data_dir, participant)?;
        let path = participant_dir(data_dir, participant);
        if !path.is_dir() {
            let parent = participants_dir(data_dir);
            crate::store::trust::create_data_dir(data_dir)?;
            crate::store::trust::create_private_dir(&parent)?;
            crate::store::trust::create_private_dir(&path)?;
            sync_dir(&parent).map_err(io_error(participant, "create", &path))?;
        }
        Self::open_dir(data_dir, participant, path, Some(busy))
    }

    /// Opens the participant's existing store; [`StoreError::UnknownParticipant`] if there is none.
    pub fn open_existing(data_dir: &Path, participant: &ParticipantId) -> Result<Self, StoreError> {
        let busy = BusyGuard::acquire(data_dir, participant)?;
        recover_one(data_dir, participant)?;
        let path = participant_dir(data_dir, participant);
        if !path.join("db").is_file() {
            return Err(StoreError::UnknownParticipant {
                participant: participant.clone(),
                path,
            });
        }
        Self::open_dir(data_dir, participant, path, Some(busy))
    }

    /// Opens a database at `path` (which exists). The caller holds the busy mark when `busy` is None.
    pub(crate) fn open_dir(
        data_dir: &Path,
        participant: &ParticipantId,
        path: PathBuf,
        busy: Option<BusyGuard>,
    ) -> Result<Self, StoreError> {
        let sled_err = |source: sled::Error| sled_error(participant, &path, source);
        let start = Instant::now();
        let db = loop {
            let opened = sled::Config::new()
                .path(&path)
                .cache_capacity(CACHE_CAPACITY_BYTES)
                .open();
            match opened.map_err(sled_err) {
                Ok(db) => break db,
                Err(StoreError::Locked { .. }) if start.elapsed() < RELEASE_WAIT => {
                    std::thread::sleep(LOCK_POLL);
                }
                Err(e) => return Err(e),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        let (recordings, features, profile, feedback) = (
            tree(TREES[0])?,
            tree(TREES[1])?,
            tree(TREES[2])?,
            tree(TREES[3])?,
        );
        Ok(Self {
            participant: participant.clone(),
            data_dir: data_dir.to_owned(),
            path,
            db,
            recordings,
            features,
            profile,
            feedback,
            _busy: busy,
        })
    }

    /// Whose store this is.
    pub fn participant(&self) -> &ParticipantId {
        &self.participant
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data directory the store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Writes everything to disk (sled's flush ends in `fsync`).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(|e| self.sled_err(e))
    }

    /// Flushes and closes the database. Once this returns, no handle on it is left: sled's
    /// background threads can hold its files for a moment after the last handle drops, so this
    /// waits (up to [`RELEASE_WAIT`]) until sled's lock on the database is free.
    pub fn close(self) -> Result<(), StoreError> {
        self.flush()?;
        let Self {
            participant,
            path,
            db,
            recordings,
            features,
            profile,
            feedback,
            _busy,
            ..
        } = self;
        drop((recordings, features, profile, feedback, db));
        wait_unlocked(&participant, &path, RELEASE_WAIT).map(drop)
    }

    // ---- recordings ----

    /// Stores a whole recording under `name`, replacing one of that name. The bytes must be a
    /// valid recording format v1 file of this participant.
    pub fn put_recording(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.check_name("recording", name)?;
        let bad = |source| StoreError::BadRecording {
            participant: self.participant.clone(),
            name: name.to_owned(),
            source,
        };
        let mut reader = Reader::open(bytes).map_err(bad)?;
        while reader.next_record().map_err(bad)?.is_some() {}
        if reader.header().participant != self.participant {
            return Err(StoreError::WrongParticipant {
                participant: self.participant.clone(),
                name: name.to_owned(),
                found: reader.header().participant.clone(),
            });
        }
        let mut batch = sled::Batch::default();
        for old in self.recordings.scan_prefix(part_prefix(name)).keys() {
            batch.remove(old.map_err(|e| self.sled_err(e))?);
        }
        for (i, part) in bytes.chunks(RECORDING_PART_BYTES).enumerate() {
            let i = u32::try_from(i).map_err(|_| StoreError::BadRecording {
                participant: self.participant.clone(),
                name: name.to_owned(),
                source: RecordingError::Io(io::Error::other("recording too large")),
            })?;
            batch.insert(part_key(name, i), part);
        }
        self.recordings
            .apply_batch(batch)
            .map_err(|e| self.sled_err(e))
    }

    /// The bytes of recording `name`, or `None`.
    pub fn recording(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_name("recording", name)?;
        let mut out = Vec::new();
        let mut expected = 0u32;
        for item in self.recordings.scan_prefix(part_prefix(name)) {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            let index = k
                .get(name.len() + 1..)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes);
            if index != Some(expected) {
                return Err(self.corrupt(
                    "recordings",
                    format!("{name:?} part {expected}"),
                    "a part is missing or has a malformed key".into(),
                ));
            }
            expected += 1;
            out.extend_from_slice(&v);
        }
        Ok((expected > 0).then_some(out))
    }

    /// The names of the stored recordings, sorted by their bytes.
    pub fn recording_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = Vec::new();
        for k in self.recordings.iter().keys() {
            let k = k.map_err(|e| self.sled_err(e))?;
            let name = k
                .iter()
                .position(|&b| b == 0)
                .and_then(|i| std::str::from_utf8(&k[..i]).ok())
                .ok_or_else(|| {
                    self.corrupt(
                        "recordings",
                        String::from_utf8_lossy(&k).into_owned(),
                        "malformed key".into(),
                    )
                })?;
            if names.last().map(String::as_str) != Some(name) {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    // ---- features ----

    /// Stores a feature frame under its tick time in ms (replacing one at that ms); returns the key.
    pub fn put_features(&self, frame: &FeatureFrame) -> Result<u64, StoreError> {
        let row = FeatureRow::from_frame(frame).map_err(|reason| StoreError::BadFeatures {
            participant: self.participant.clone(),
            t_s: frame.t,
            reason,
        })?;
        self.put_feature_row(&row)?;
        Ok(row.t_ms)
    }

    /// Stores a row as it is (non-finite values become `None`).
    pub fn put_feature_row(&self, row: &FeatureRow) -> Result<(), StoreError> {
        if row.t_ms > MAX_T_MS {
            return Err(StoreError::BadFeatures {
                participant: self.participant.clone(),
                t_s: row.t_ms as f64 / 1000.0,
                reason: "the time must be below 2^53 ms",
            });
        }
        let row = row.normalized();
        let json = serde_json::to_vec(&row)
            .map_err(|e| self.corrupt("features", row.t_ms.to_string(), e.to_string()))?;
        self.features
            .insert(row.t_ms.to_be_bytes(), json)
            .map(drop)
            .map_err(|e| self.sled_err(e))
    }

    /// The row at tick time `t_ms`, or `None`.
    pub fn feature_row(&self, t_ms: u64) -> Result<Option<FeatureRow>, StoreError> {
        let v = self
            .features
            .get(t_ms.to_be_bytes())
            .map_err(|e| self.sled_err(e))?;
        v.map(|v| self.decode_row(&t_ms.to_be_bytes(), &v))
            .transpose()
    }

    /// Every row, by time.
    pub fn feature_rows(&self) -> Result<Vec<FeatureRow>, StoreError> {
        self.features
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.sled_err(e))?;
                self.decode_row(&k, &v)
            })
            .collect()
    }

    fn decode_row(&self, k: &[u8], v: &[u8]) -> Result<FeatureRow, StoreError> {
        let key = <[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes);
        let row: FeatureRow = serde_json::from_slice(v)
            .map_err(|e| self.corrupt("features", format!("{key:?}"), e.to_string()))?;
        if key != Some(row.t_ms) {
            return Err(self.corrupt(
                "features",
                format!("{key:?}"),
                format!("key does not match t_ms {}", row.t_ms),
            ));
        }
        Ok(row)
    }

    // ---- profile ----

    /// Stores profile entry `name` (replacing one of that name).
    pub fn put_profile(&self, name: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        self.check_name("profile entry", name)?;
        let json = serde_json::to_vec(value)
            .map_err(|e| self.corrupt("profile", name.to_owned(), e.to_string()))?;
        self.profile
            .insert(name.as_bytes(), json)
            .map(drop)
            .map_err(|e| self.sled_err(e))
    }

    /// Profile entry `name`, or `None`.
    pub fn profile(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.check_name("profile entry", name)?;
        self.json_value(Part::Profile, name.as_bytes(), &name)
    }

    /// Every profile entry, sorted by name.
    pub fn profile_entries(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        self.json_entries(Part::Profile, |k| {
            Ok(String::from_utf8_lossy(k).into_owned())
        })
    }

    // ---- feedback ----

    /// Appends a feedback entry with the next sequence number (0 for the first); returns it.
    /// Safe to call from several threads.
    pub fn append_feedback(&self, value: &serde_json::Value) -> Result<u64, StoreError> {
        let json = self.feedback_json(value)?;
        loop {
            let next = match self.feedback.last().map_err(|e| self.sled_err(e))? {
                None => 0,
                Some((k, _)) => self.feedback_seq(&k)?.saturating_add(1),
            };
            let swapped = self
                .feedback
                .compare_and_swap(next.to_be_bytes(), None::<&[u8]>, Some(json.as_slice()))
                .map_err(|e| self.sled_err(e))?;
            if swapped.is_ok() {
                return Ok(next);
            }
        }
    }

    /// Stores feedback entry `seq` (replacing one with that number).
    pub fn put_feedback(&self, seq: u64, value: &serde_json::Value) -> Result<(), StoreError> {
        let json = self.feedback_json(value)?;
        self.feedback
            .insert(seq.to_be_bytes(), json)
            .map(drop)
            .map_err(|e| self.sled_err(e))
    }

    /// Feedback entry `seq`, or `None`.
    pub fn feedback(&self, seq: u64) -> Result<Option<serde_json::Value>, StoreError> {
        self.json_value(Part::Feedback, &seq.to_be_bytes(), &seq)
    }

    /// Every feedback entry with its sequence number, in order.
    pub fn feedback_entries(&self) -> Result<Vec<(u64, serde_json::Value)>, StoreError> {
        self.json_entries(Part::Feedback, |k| self.feedback_seq(k))
    }

    // ---- JSON values (profile, feedback) ----

    /// The JSON value under `key` in `part`'s tree, or `None`; errors name the key `shown`.
    fn json_value(
        &self,
        part: Part,
        key: &[u8],
        shown: &dyn std::fmt::Display,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let v = self.tree(part).get(key).map_err(|e| self.sled_err(e))?;
        v.map(|v| self.decode_json(part, shown, &v)).transpose()
    }

    /// Every JSON value in `part`'s tree in key order, with its key as `key` decodes it.
    fn json_entries<K: std::fmt::Display>(
        &self,
        part: Part,
        key: impl Fn(&[u8]) -> Result<K, StoreError>,
    ) -> Result<Vec<(K, serde_json::Value)>, StoreError> {
        self.tree(part)
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.sled_err(e))?;
                let key = key(&k)?;
                let value = self.decode_json(part, &key, &v)?;
                Ok((key, value))
            })
            .collect()
    }

    fn decode_json(
        &self,
        part: Part,
        shown: &dyn std::fmt::Display,
        v: &[u8],
    ) -> Result<serde_json::Value, StoreError> {
        serde_json::from_slice(v)
            .map_err(|e| self.corrupt(part.tree(), shown.to_string(), e.to_string()))
    }

    fn feedback_json(&self, value: &serde_json::Value) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(value).map_err(|e| self.corrupt("feedback", "new".into(), e.to_string()))
    }

    fn feedback_seq(&self, k: &[u8]) -> Result<u64, StoreError> {
        <[u8; 8]>::try_from(k)
            .map(u64::from_be_bytes)
            .map_err(|_| self.corrupt("feedback", format!("{k:?}"), "malformed key".into()))
    }

    // ---- raw copies (erase_parts) ----

    fn tree(&self, part: Part) -> &sled::Tree {
        match part {
            Part::Recordings => &self.recordings,
            Part::Features => &self.features,
            Part::Profile => &self.profile,
            Part::Feedback => &self.feedback,
        }
    }

    pub(super) fn copy_tree_to(&self, part: Part, to: &ParticipantStore) -> Result<(), StoreError> {
        for item in self.tree(part).iter() {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            to.tree(part).insert(k, v).map_err(|e| to.sled_err(e))?;
        }
        Ok(())
    }

    // ---- errors ----

    fn check_name(&self, what: &'static str, name: &str) -> Result<(), StoreError> {
        check_name(name).map_err(|reason| StoreError::BadName {
            participant: self.participant.clone(),
            what,
            name: name.to_owned(),
            reason,
        })
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        sled_error(&self.participant, &self.path, source)
    }

    fn corrupt(&self, tree: &'static str, key: String, message: String) -> StoreError {
        StoreError::Corrupt {
            participant: self.participant.clone(),
            path: self.path.clone(),
            tree,
            key,
            message,
        }
    }
}

fn part_prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

fn part_key(name: &str, index: u32) -> Vec<u8> {
    let mut k = part_prefix(name);
    k.extend_from_slice(&index.to_be_bytes());
    k
}
