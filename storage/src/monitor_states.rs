//! Monitor evaluation states (SPEC §7): [`MonitorStateRepo`] is the seam the evaluator keeps each monitor's
//! per-group states and its recent transitions through; [`MonitorStateStore`] keeps them on disk,
//! [`MemoryMonitorStates`] in memory (for unit tests).
//!
//! Both the group states and the transitions are opaque JSON to storage (the query tier owns their shape).
//! [`MonitorStateStore`] keeps one document per monitor, `<dir>/<id>.json`:
//!
//! ```text
//! {"version": 1, "groups": {"host:a": {…}}, "history": [{…}, …], "attempts": [{…}, …]}
//! ```
//!
//! rewritten atomically (temporary file, fsync, rename, fsync of the directory) when it changes, and read
//! once at open. The history keeps the last [`MAX_HISTORY`] transitions, oldest first; `attempts` the last
//! [`MAX_ATTEMPTS`] notification delivery attempts, oldest first (absent in older documents).
//!
//! `pending` is the outbox of notifications not delivered yet (at most [`MAX_PENDING`], oldest dropped): the
//! evaluator saves them in the same atomic write as the transitions that caused them, and the notifier
//! removes each (by its `"key"` string) when its delivery is over. A restart re-sends what is still pending,
//! so a crash during delivery loses nothing (at-least-once).

use crate::block::write_atomic;
use crate::monitors::MonitorId;
use crate::StorageError;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value as JsonValue;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Most transitions kept per monitor.
pub const MAX_HISTORY: usize = 100;
/// Most notification delivery attempts kept per monitor.
pub const MAX_ATTEMPTS: usize = 200;
/// Most undelivered notifications kept per monitor.
pub const MAX_PENDING: usize = 1000;

const VERSION: u32 = 1;

/// The evaluation state of one monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorStates {
    /// Group name → group state (a JSON object, opaque to storage).
    pub groups: JsonValue,
    /// The last transitions, oldest first, at most [`MAX_HISTORY`].
    pub history: Vec<JsonValue>,
    /// The last notification delivery attempts (opaque JSON), oldest first, at most [`MAX_ATTEMPTS`].
    #[serde(default)]
    pub attempts: Vec<JsonValue>,
    /// Notifications not delivered yet (opaque JSON, each with a `"key"` string), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<JsonValue>,
}

impl Default for MonitorStates {
    fn default() -> MonitorStates {
        MonitorStates {
            groups: JsonValue::Object(Default::default()),
            history: Vec::new(),
            attempts: Vec::new(),
            pending: Vec::new(),
        }
    }
}

impl MonitorStates {
    /// Replaces the groups, appends `transitions` (dropping the oldest beyond [`MAX_HISTORY`]) and queues
    /// `pending` notifications (dropping the oldest beyond [`MAX_PENDING`]).
    fn apply(&mut self, groups: JsonValue, transitions: Vec<JsonValue>, pending: Vec<JsonValue>) {
        self.groups = groups;
        self.history.extend(transitions);
        let excess = self.history.len().saturating_sub(MAX_HISTORY);
        self.history.drain(..excess);
        self.pending.extend(pending);
        let excess = self.pending.len().saturating_sub(MAX_PENDING);
        if excess > 0 {
            tracing::warn!(
                "{excess} undelivered monitor notifications dropped (over {MAX_PENDING})"
            );
        }
        self.pending.drain(..excess);
    }

    /// Appends delivery attempts (dropping the oldest beyond [`MAX_ATTEMPTS`]) and removes the pending
    /// notification `done`.
    fn add_attempts(&mut self, attempts: Vec<JsonValue>, done: Option<&str>) {
        self.attempts.extend(attempts);
        let excess = self.attempts.len().saturating_sub(MAX_ATTEMPTS);
        self.attempts.drain(..excess);
        if let Some(key) = done {
            self.pending
                .retain(|p| p.get("key").and_then(JsonValue::as_str) != Some(key));
        }
    }
}

/// Storage of monitor states. Calls may do blocking I/O: async callers run them on a blocking thread.
pub trait MonitorStateRepo: Send + Sync {
    /// The monitor's states, if any were saved.
    fn get(&self, id: MonitorId) -> Option<MonitorStates>;
    /// Replaces the monitor's group states and appends `transitions` to its history.
    fn save(
        &self,
        id: MonitorId,
        groups: JsonValue,
        transitions: Vec<JsonValue>,
    ) -> Result<(), StorageError> {
        self.save_with_pending(id, groups, transitions, Vec::new())
    }
    /// [`MonitorStateRepo::save`], also queuing `pending` notifications (the outbox), in one atomic
    /// change.
    fn save_with_pending(
        &self,
        id: MonitorId,
        groups: JsonValue,
        transitions: Vec<JsonValue>,
        pending: Vec<JsonValue>,
    ) -> Result<(), StorageError>;
    /// Appends notification delivery attempts to the monitor's record and, with `done`, removes the
    /// pending notification with that key; ignored (`Ok`) if the monitor has no saved states (e.g.
    /// deleted meanwhile).
    fn record_attempts(
        &self,
        id: MonitorId,
        attempts: Vec<JsonValue>,
        done: Option<&str>,
    ) -> Result<(), StorageError>;
    /// Every pending notification, by monitor, oldest first.
    fn pending(&self) -> Vec<(MonitorId, JsonValue)>;
    /// Forgets the monitor's states (a deleted monitor); no error if there were none.
    fn remove(&self, id: MonitorId) -> Result<(), StorageError>;
    /// Ids of the monitors with saved states.
    fn ids(&self) -> Vec<MonitorId>;
}

/// Monitor states in memory only.
#[derive(Debug, Default)]
pub struct MemoryMonitorStates {
    inner: Mutex<BTreeMap<MonitorId, MonitorStates>>,
}

impl MonitorStateRepo for MemoryMonitorStates {
    fn get(&self, id: MonitorId) -> Option<MonitorStates> {
        self.inner.lock().get(&id).cloned()
    }

    fn save_with_pending(
        &self,
        id: MonitorId,
        groups: JsonValue,
        transitions: Vec<JsonValue>,
        pending: Vec<JsonValue>,
    ) -> Result<(), StorageError> {
        self.inner
            .lock()
            .entry(id)
            .or_default()
            .apply(groups, transitions, pending);
        Ok(())
    }

    fn record_attempts(
        &self,
        id: MonitorId,
        attempts: Vec<JsonValue>,
        done: Option<&str>,
    ) -> Result<(), StorageError> {
        if let Some(s) = self.inner.lock().get_mut(&id) {
            s.add_attempts(attempts, done);
        }
        Ok(())
    }

    fn pending(&self) -> Vec<(MonitorId, JsonValue)> {
        all_pending(&self.inner.lock())
    }

    fn remove(&self, id: MonitorId) -> Result<(), StorageError> {
        self.inner.lock().remove(&id);
        Ok(())
    }

    fn ids(&self) -> Vec<MonitorId> {
        self.inner.lock().keys().copied().collect()
    }
}

/// The persisted document of one monitor.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Document {
    version: u32,
    #[serde(flatten)]
    states: MonitorStates,
}

/// Monitor states on disk, one JSON document per monitor, all cached in memory.
#[derive(Debug)]
pub struct MonitorStateStore {
    dir: PathBuf,
    inner: Mutex<BTreeMap<MonitorId, MonitorStates>>,
}

impl MonitorStateStore {
    /// Opens (creating it if needed) the directory and reads every `<id>.json` in it.
    pub fn open(dir: &Path) -> Result<MonitorStateStore, StorageError> {
        let io = |path: &Path, source| StorageError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut by_id = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let path = entry.map_err(|e| io(dir, e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<MonitorId>().ok())
            else {
                continue;
            };
            by_id.insert(id, read_document(&path)?);
        }
        Ok(MonitorStateStore {
            dir: dir.to_path_buf(),
            inner: Mutex::new(by_id),
        })
    }

    fn path(&self, id: MonitorId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Replaces the monitor's states by `change(old states)` on disk, then in memory. The old states are
    /// moved, not copied; if the write fails, they are read back from their file (which the failed atomic
    /// write left as it was).
    fn change(
        &self,
        inner: &mut BTreeMap<MonitorId, MonitorStates>,
        id: MonitorId,
        change: impl FnOnce(&mut MonitorStates),
    ) -> Result<(), StorageError> {
        let mut next = inner.remove(&id).unwrap_or_default();
        change(&mut next);
        let written = self.write(inner, id, next);
        if written.is_err() {
            let path = self.path(id);
            if path.exists() {
                match read_document(&path) {
                    Ok(old) => {
                        inner.insert(id, old);
                    }
                    Err(e) => {
                        tracing::error!(monitor_id = id, error = %e, "cannot read monitor states back")
                    }
                }
            }
        }
        written
    }

    /// Writes the monitor's document and keeps it. Called under the lock, so two changes of one monitor
    /// cannot reorder on disk.
    fn write(
        &self,
        inner: &mut BTreeMap<MonitorId, MonitorStates>,
        id: MonitorId,
        states: MonitorStates,
    ) -> Result<(), StorageError> {
        let doc = Document {
            version: VERSION,
            states,
        };
        let bytes = serde_json::to_vec(&doc).map_err(|e| StorageError::Corrupt {
            path: self.path(id).display().to_string(),
            detail: e.to_string(),
        })?;
        write_atomic(&self.path(id), &bytes)?;
        inner.insert(id, doc.states);
        Ok(())
    }
}

/// Reads one monitor's document.
fn read_document(path: &Path) -> Result<MonitorStates, StorageError> {
    let bytes = std::fs::read(path).map_err(|source| StorageError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let doc: Document = serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    crate::block::check_version(path, doc.version, VERSION)?;
    Ok(doc.states)
}

fn all_pending(by_id: &BTreeMap<MonitorId, MonitorStates>) -> Vec<(MonitorId, JsonValue)> {
    by_id
        .iter()
        .flat_map(|(id, s)| s.pending.iter().map(|p| (*id, p.clone())))
        .collect()
}

impl MonitorStateRepo for MonitorStateStore {
    fn get(&self, id: MonitorId) -> Option<MonitorStates> {
        self.inner.lock().get(&id).cloned()
    }

    fn save_with_pending(
        &self,
        id: MonitorId,
        groups: JsonValue,
        transitions: Vec<JsonValue>,
        pending: Vec<JsonValue>,
    ) -> Result<(), StorageError> {
        let mut inner = self.inner.lock();
        let old = inner.get(&id);
        if transitions.is_empty() && pending.is_empty() && old.is_some_and(|s| s.groups == groups) {
            return Ok(());
        }
        self.change(&mut inner, id, |s| s.apply(groups, transitions, pending))
    }

    fn record_attempts(
        &self,
        id: MonitorId,
        attempts: Vec<JsonValue>,
        done: Option<&str>,
    ) -> Result<(), StorageError> {
        let mut inner = self.inner.lock();
        if !inner.contains_key(&id) || (attempts.is_empty() && done.is_none()) {
            return Ok(());
        }
        self.change(&mut inner, id, |s| s.add_attempts(attempts, done))
    }

    fn pending(&self) -> Vec<(MonitorId, JsonValue)> {
        all_pending(&self.inner.lock())
    }

    fn remove(&self, id: MonitorId) -> Result<(), StorageError> {
        let mut inner = self.inner.lock();
        if inner.remove(&id).is_some() {
            let path = self.path(id);
            crate::block::remove_file_if_present(&path)?;
        }
        Ok(())
    }

    fn ids(&self) -> Vec<MonitorId> {
        self.inner.lock().keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exercise(repo: &dyn MonitorStateRepo) {
        assert_eq!(repo.get(1), None);
        repo.save(1, json!({"host:a": {"status": "OK"}}), vec![])
            .unwrap();
        let transitions: Vec<JsonValue> = (0..150).map(|i| json!({"n": i})).collect();
        repo.save(1, json!({"host:a": {"status": "Alert"}}), transitions)
            .unwrap();
        let s = repo.get(1).unwrap();
        assert_eq!(s.groups, json!({"host:a": {"status": "Alert"}}));
        assert_eq!(s.history.len(), MAX_HISTORY);
        assert_eq!(s.history[0], json!({"n": 50}));
        assert_eq!(s.history[99], json!({"n": 149}));
        repo.save(2, json!({}), vec![json!({"n": 0})]).unwrap();
        assert_eq!(repo.ids(), vec![1, 2]);
        let attempts: Vec<JsonValue> = (0..250).map(|i| json!({"a": i})).collect();
        repo.record_attempts(1, attempts, None).unwrap();
        repo.record_attempts(9, vec![json!({"a": 0})], None)
            .unwrap();
        let s = repo.get(1).unwrap();
        assert_eq!(s.attempts.len(), MAX_ATTEMPTS);
        assert_eq!(s.attempts[0], json!({"a": 50}));
        assert_eq!(s.history.len(), MAX_HISTORY);
        assert_eq!(repo.get(9), None);
        // The outbox: queued with a save, removed by key when delivered.
        let p = |k: &str| json!({"key": k, "n": {"group": "host:a"}});
        repo.save_with_pending(2, json!({}), vec![], vec![p("k1"), p("k2")])
            .unwrap();
        assert_eq!(repo.pending(), vec![(2, p("k1")), (2, p("k2"))]);
        repo.record_attempts(2, vec![json!({"a": 1})], Some("k1"))
            .unwrap();
        assert_eq!(repo.pending(), vec![(2, p("k2"))]);
        assert_eq!(repo.get(2).unwrap().attempts, vec![json!({"a": 1})]);
    }

    #[test]
    fn memory() {
        let repo = MemoryMonitorStates::default();
        exercise(&repo);
        repo.remove(1).unwrap();
        assert_eq!(repo.ids(), vec![2]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_states() {
        let dir = tempfile::tempdir().unwrap();
        let repo = MonitorStateStore::open(dir.path()).unwrap();
        repo.save_with_pending(1, json!({"a": 1}), vec![json!({"n": 1})], vec![])
            .unwrap();
        // The temporary file's name is taken by a directory: the atomic write fails before the rename.
        std::fs::create_dir(dir.path().join("1.tmp")).unwrap();
        let failed = repo.save_with_pending(
            1,
            json!({"a": 2}),
            vec![json!({"n": 2})],
            vec![json!({"key": "k"})],
        );
        assert!(failed.is_err());
        let s = repo.get(1).unwrap();
        assert_eq!((s.groups, s.history.len()), (json!({"a": 1}), 1));
        assert!(repo.pending().is_empty());
        assert!(repo
            .record_attempts(1, vec![json!({"a": 1})], None)
            .is_err());
        assert!(repo.get(1).unwrap().attempts.is_empty());
        std::fs::remove_dir(dir.path().join("1.tmp")).unwrap();
        repo.save_with_pending(1, json!({"a": 3}), vec![], vec![])
            .unwrap();
        let reopened = MonitorStateStore::open(dir.path()).unwrap();
        assert_eq!(reopened.get(1).unwrap().groups, json!({"a": 3}));
        assert_eq!(reopened.get(1).unwrap().history.len(), 1);
    }

    #[test]
    fn on_disk_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("states");
        {
            let repo = MonitorStateStore::open(&path).unwrap();
            exercise(&repo);
        }
        let repo = MonitorStateStore::open(&path).unwrap();
        let s = repo.get(1).unwrap();
        assert_eq!(s.groups["host:a"]["status"], "Alert");
        assert_eq!(s.history.len(), MAX_HISTORY);
        assert_eq!(s.attempts.len(), MAX_ATTEMPTS);
        assert_eq!(repo.pending().len(), 1, "the outbox survives a reopen");
        repo.remove(1).unwrap();
        repo.remove(7).unwrap();
        let repo = MonitorStateStore::open(&path).unwrap();
        assert_eq!(repo.ids(), vec![2]);
        std::fs::write(path.join("3.json"), b"{").unwrap();
        assert!(matches!(
            MonitorStateStore::open(&path),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
