//! Monitor definitions (SPEC §7): [`MonitorRepo`] is the seam the query tier stores monitors through;
//! [`MonitorStore`] keeps them on disk, [`MemoryMonitors`] in memory (for unit tests).
//!
//! A monitor is stored as a JSON object, opaque to storage except for its `id` field, which the repository
//! sets. [`MonitorStore`] keeps one file per monitor, `<dir>/<id>.json`, and the next id in
//! `<dir>/monitors.json`:
//!
//! ```text
//! {"version": 2, "next_id": 4}
//! ```
//!
//! each written atomically (temporary file, fsync, rename, fsync of the directory) when it changes, so a
//! change costs one monitor's bytes however many monitors there are; everything is read once at open. Ids are
//! allocated from 1, monotonically, and never reused: a create persists the next id before the monitor, so a
//! deleted monitor's id (or one whose create was interrupted) stays retired across restarts.
//!
//! Version 1 kept every monitor in `monitors.json` (`{"version": 1, "next_id": 4, "monitors": [{"id": 1, …}]}`),
//! rewritten whole on every change; such a directory is converted at open (the monitor files first, then the
//! version 2 `monitors.json`, so an interrupted conversion is done again).

use crate::block::write_json_doc;
use crate::StorageError;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as JsonValue};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A monitor's id.
pub type MonitorId = u64;

/// A stored monitor: a JSON object whose `id` is its [`MonitorId`].
pub type MonitorDoc = Map<String, JsonValue>;

/// Name of the document, in the monitor directory.
pub const MONITORS_FILE: &str = "monitors.json";

/// Storage of monitor definitions. Calls may do blocking I/O: async callers run them on a blocking thread.
pub trait MonitorRepo: Send + Sync {
    /// Allocates the next id, stores `doc` with its `id` set to it, and returns the stored document.
    fn create(&self, doc: MonitorDoc) -> Result<MonitorDoc, StorageError>;
    /// The monitor with this id, if any.
    fn get(&self, id: MonitorId) -> Option<MonitorDoc>;
    /// Every monitor, by increasing id.
    fn list(&self) -> Vec<MonitorDoc>;
    /// Replaces the monitor (its `id` is kept); `None` if the id is unknown.
    fn update(&self, id: MonitorId, doc: MonitorDoc) -> Result<Option<MonitorDoc>, StorageError>;
    /// Removes the monitor; `false` if the id is unknown. The id is never allocated again.
    fn delete(&self, id: MonitorId) -> Result<bool, StorageError>;
}

/// The persisted index (version 2), or the whole store (version 1, with `monitors`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Document {
    version: u32,
    next_id: MonitorId,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    monitors: Vec<MonitorDoc>,
}

const VERSION: u32 = 2;
/// The one-document layout, converted at open.
const VERSION_ONE_FILE: u32 = 1;

/// The monitors and the next id; what both implementations share.
#[derive(Debug, Clone)]
struct Monitors {
    next_id: MonitorId,
    by_id: BTreeMap<MonitorId, MonitorDoc>,
}

impl Default for Monitors {
    fn default() -> Monitors {
        Monitors {
            next_id: 1,
            by_id: BTreeMap::new(),
        }
    }
}

impl Monitors {
    fn create(&mut self, mut doc: MonitorDoc) -> MonitorDoc {
        let id = self.next_id;
        self.next_id += 1;
        doc.insert("id".into(), JsonValue::from(id));
        self.by_id.insert(id, doc.clone());
        doc
    }

    fn update(&mut self, id: MonitorId, mut doc: MonitorDoc) -> Option<MonitorDoc> {
        let slot = self.by_id.get_mut(&id)?;
        doc.insert("id".into(), JsonValue::from(id));
        *slot = doc.clone();
        Some(doc)
    }

    fn from_document(doc: Document, path: &Path) -> Result<Monitors, StorageError> {
        let corrupt = |detail: String| StorageError::Corrupt {
            path: path.display().to_string(),
            detail,
        };
        let mut by_id = BTreeMap::new();
        for m in doc.monitors {
            let id = m
                .get("id")
                .and_then(JsonValue::as_u64)
                .filter(|id| *id > 0)
                .ok_or_else(|| corrupt("a monitor without a positive integer id".into()))?;
            if by_id.insert(id, m).is_some() {
                return Err(corrupt(format!("monitor id {id} appears twice")));
            }
        }
        // A next id at or below a stored id would hand that id out again.
        let floor = by_id.keys().next_back().map_or(1, |max| max + 1);
        Ok(Monitors {
            next_id: doc.next_id.max(floor),
            by_id,
        })
    }
}

/// Monitors persisted one file each in a directory, all held in memory. Changes are serialized; each one is
/// durable (fsynced) before it returns and applied in memory only once written.
#[derive(Debug)]
pub struct MonitorStore {
    dir: PathBuf,
    state: Mutex<Monitors>,
}

impl MonitorStore {
    /// Opens (creating the directory if needed) and loads the monitors, converting a version 1 directory. A
    /// corrupt file is an error, never silently replaced.
    pub fn open(dir: &Path) -> Result<MonitorStore, StorageError> {
        let (index, doc) = crate::block::read_json_doc::<Document>(dir, MONITORS_FILE)?;
        let store = |state| MonitorStore {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
        };
        let corrupt = |detail: String| StorageError::Corrupt {
            path: index.display().to_string(),
            detail,
        };
        let Some(doc) = doc else {
            return Ok(store(Monitors::default()));
        };
        match doc.version {
            VERSION_ONE_FILE => {
                let monitors = Monitors::from_document(doc, &index)?;
                let s = store(monitors);
                for (id, m) in &s.state.lock().by_id {
                    write_json_doc(&s.path(*id), m, "monitor")?;
                }
                s.write_index(s.state.lock().next_id)?;
                Ok(s)
            }
            VERSION => {
                if !doc.monitors.is_empty() {
                    return Err(corrupt("a version 2 index must not hold monitors".into()));
                }
                let mut monitors = Vec::new();
                for (name, m) in crate::block::read_json_dir::<MonitorDoc>(dir)? {
                    let Ok(id) = name.parse::<MonitorId>() else {
                        continue; // monitors.json, the index
                    };
                    if m.get("id").and_then(JsonValue::as_u64) != Some(id) {
                        return Err(StorageError::Corrupt {
                            path: dir.join(format!("{name}.json")).display().to_string(),
                            detail: format!("the monitor in {id}.json does not have id {id}"),
                        });
                    }
                    monitors.push(m);
                }
                let loaded = Document {
                    version: VERSION,
                    next_id: doc.next_id,
                    monitors,
                };
                Ok(store(Monitors::from_document(loaded, &index)?))
            }
            other => Err(corrupt(format!(
                "unsupported version {other} (expected {VERSION_ONE_FILE} or {VERSION})"
            ))),
        }
    }

    fn path(&self, id: MonitorId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn write_index(&self, next_id: MonitorId) -> Result<(), StorageError> {
        let doc = Document {
            version: VERSION,
            next_id,
            monitors: Vec::new(),
        };
        write_json_doc(&self.dir.join(MONITORS_FILE), &doc, "monitor index")
    }
}

impl MonitorRepo for MonitorStore {
    fn create(&self, mut doc: MonitorDoc) -> Result<MonitorDoc, StorageError> {
        let mut state = self.state.lock();
        let id = state.next_id;
        // The id is retired first: a crash before the monitor's file leaves a gap, never a reused id.
        self.write_index(id + 1)?;
        state.next_id = id + 1;
        doc.insert("id".into(), JsonValue::from(id));
        write_json_doc(&self.path(id), &doc, "monitor")?;
        state.by_id.insert(id, doc.clone());
        Ok(doc)
    }

    fn get(&self, id: MonitorId) -> Option<MonitorDoc> {
        self.state.lock().by_id.get(&id).cloned()
    }

    fn list(&self) -> Vec<MonitorDoc> {
        self.state.lock().by_id.values().cloned().collect()
    }

    fn update(
        &self,
        id: MonitorId,
        mut doc: MonitorDoc,
    ) -> Result<Option<MonitorDoc>, StorageError> {
        let mut state = self.state.lock();
        if !state.by_id.contains_key(&id) {
            return Ok(None);
        }
        doc.insert("id".into(), JsonValue::from(id));
        write_json_doc(&self.path(id), &doc, "monitor")?;
        state.by_id.insert(id, doc.clone());
        Ok(Some(doc))
    }

    fn delete(&self, id: MonitorId) -> Result<bool, StorageError> {
        let mut state = self.state.lock();
        if !state.by_id.contains_key(&id) {
            return Ok(false);
        }
        let path = self.path(id);
        crate::block::remove_file_if_present(&path)?;
        crate::block::sync_dir(&self.dir)?;
        state.by_id.remove(&id);
        Ok(true)
    }
}

/// Monitors kept in memory only: for unit tests.
#[derive(Debug, Default)]
pub struct MemoryMonitors {
    state: Mutex<Monitors>,
}

impl MonitorRepo for MemoryMonitors {
    fn create(&self, doc: MonitorDoc) -> Result<MonitorDoc, StorageError> {
        Ok(self.state.lock().create(doc))
    }

    fn get(&self, id: MonitorId) -> Option<MonitorDoc> {
        self.state.lock().by_id.get(&id).cloned()
    }

    fn list(&self) -> Vec<MonitorDoc> {
        self.state.lock().by_id.values().cloned().collect()
    }

    fn update(&self, id: MonitorId, doc: MonitorDoc) -> Result<Option<MonitorDoc>, StorageError> {
        Ok(self.state.lock().update(id, doc))
    }

    fn delete(&self, id: MonitorId) -> Result<bool, StorageError> {
        Ok(self.state.lock().by_id.remove(&id).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(name: &str) -> MonitorDoc {
        json!({"name": name}).as_object().cloned().unwrap()
    }

    fn names(repo: &dyn MonitorRepo) -> Vec<(u64, String)> {
        repo.list()
            .iter()
            .map(|m| {
                (
                    m["id"].as_u64().unwrap(),
                    m["name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// One step of a scenario and what the repository holds after it.
    enum Op {
        Create(&'static str, u64),
        Update(u64, &'static str, bool),
        Delete(u64, bool),
        /// Reopen the store from disk (a no-op for the in-memory one).
        Reopen,
    }

    fn check(open: &dyn Fn() -> Box<dyn MonitorRepo>, ops: &[Op], want: &[(u64, &str)]) {
        let mut repo = open();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Create(name, id) => {
                    let m = repo.create(doc(name)).unwrap();
                    assert_eq!(m["id"], json!(id), "step {i}");
                    assert_eq!(repo.get(*id).unwrap(), m, "step {i}");
                }
                Op::Update(id, name, found) => {
                    let r = repo.update(*id, doc(name)).unwrap();
                    assert_eq!(r.is_some(), *found, "step {i}");
                    if *found {
                        assert_eq!(repo.get(*id).unwrap()["name"], json!(name), "step {i}");
                    }
                }
                Op::Delete(id, found) => {
                    assert_eq!(repo.delete(*id).unwrap(), *found, "step {i}");
                    assert!(repo.get(*id).is_none(), "step {i}");
                }
                Op::Reopen => {
                    drop(repo);
                    repo = open();
                }
            }
        }
        let want: Vec<(u64, String)> = want.iter().map(|(i, n)| (*i, n.to_string())).collect();
        assert_eq!(names(repo.as_ref()), want);
    }

    /// Steps, then the `(id, name)` pairs the repository lists.
    type Scenario = (Vec<Op>, Vec<(u64, &'static str)>);

    fn scenarios() -> Vec<Scenario> {
        use Op::*;
        vec![
            (vec![], vec![]),
            (
                vec![Create("a", 1), Create("b", 2), Reopen, Create("c", 3)],
                vec![(1, "a"), (2, "b"), (3, "c")],
            ),
            // A deleted id is never handed out again, even the highest one and across a reopen.
            (
                vec![
                    Create("a", 1),
                    Create("b", 2),
                    Delete(2, true),
                    Reopen,
                    Create("c", 3),
                    Delete(3, true),
                    Delete(3, false),
                    Create("d", 4),
                ],
                vec![(1, "a"), (4, "d")],
            ),
            (
                vec![
                    Create("a", 1),
                    Update(1, "a2", true),
                    Update(7, "x", false),
                    Reopen,
                ],
                vec![(1, "a2")],
            ),
            (vec![Delete(1, false), Update(1, "x", false)], vec![]),
        ]
    }

    #[test]
    fn disk_store_scenarios() {
        for (ops, want) in scenarios() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("monitors");
            let open =
                move || -> Box<dyn MonitorRepo> { Box::new(MonitorStore::open(&path).unwrap()) };
            check(&open, &ops, &want);
        }
    }

    #[test]
    fn memory_scenarios() {
        for (ops, want) in scenarios() {
            let mem = std::sync::Arc::new(MemoryMonitors::default());
            let open = move || -> Box<dyn MonitorRepo> { Box::new(Shared(mem.clone())) };
            check(&open, &ops, &want);
        }
    }

    /// Lets a "reopen" of the in-memory store return the same monitors.
    struct Shared(std::sync::Arc<MemoryMonitors>);

    impl MonitorRepo for Shared {
        fn create(&self, doc: MonitorDoc) -> Result<MonitorDoc, StorageError> {
            self.0.create(doc)
        }
        fn get(&self, id: MonitorId) -> Option<MonitorDoc> {
            self.0.get(id)
        }
        fn list(&self) -> Vec<MonitorDoc> {
            self.0.list()
        }
        fn update(
            &self,
            id: MonitorId,
            doc: MonitorDoc,
        ) -> Result<Option<MonitorDoc>, StorageError> {
            self.0.update(id, doc)
        }
        fn delete(&self, id: MonitorId) -> Result<bool, StorageError> {
            self.0.delete(id)
        }
    }

    #[test]
    fn converts_the_one_file_layout() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MONITORS_FILE),
            r#"{"version":1,"next_id":4,"monitors":[{"id":1,"name":"a"},{"id":3,"name":"c"}]}"#,
        )
        .unwrap();
        let want = vec![(1, "a".to_string()), (3, "c".to_string())];
        assert_eq!(names(&MonitorStore::open(dir.path()).unwrap()), want);
        let index: JsonValue =
            serde_json::from_slice(&std::fs::read(dir.path().join(MONITORS_FILE)).unwrap())
                .unwrap();
        assert_eq!(index, json!({"version": 2, "next_id": 4}));
        assert!(dir.path().join("3.json").exists());
        let store = MonitorStore::open(dir.path()).unwrap();
        assert_eq!(names(&store), want);
        assert_eq!(store.create(doc("d")).unwrap()["id"], json!(4));
        // A monitor file naming another id is corrupt.
        std::fs::write(dir.path().join("9.json"), r#"{"id":8}"#).unwrap();
        let e = MonitorStore::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("does not have id 9"), "{e}");
    }

    #[test]
    fn a_change_writes_one_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let store = MonitorStore::open(dir.path()).unwrap();
        for i in 0..50 {
            store.create(doc(&format!("m{i}"))).unwrap();
        }
        let before = std::fs::metadata(dir.path().join("7.json"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        store.update(8, doc("changed")).unwrap();
        let after = std::fs::metadata(dir.path().join("7.json"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after, "other monitors' files are left alone");
        let index = std::fs::read(dir.path().join(MONITORS_FILE)).unwrap();
        assert!(index.len() < 64, "the index holds no monitor");
        assert!(store.delete(8).unwrap());
        assert!(!dir.path().join("8.json").exists());
        let reopened = MonitorStore::open(dir.path()).unwrap();
        assert_eq!(reopened.list().len(), 49);
        assert_eq!(reopened.create(doc("x")).unwrap()["id"], json!(51));
    }

    #[test]
    fn corrupt_or_inconsistent_documents() {
        let cases: &[(&str, Result<u64, &str>)] = &[
            // The next id is raised above the highest stored id.
            (r#"{"version":1,"next_id":1,"monitors":[{"id":5}]}"#, Ok(6)),
            (r#"{"version":1,"next_id":9,"monitors":[]}"#, Ok(9)),
            ("{not json", Err("corrupt data")),
            (r#"{"version":3,"next_id":1}"#, Err("unsupported version 3")),
            (r#"{"version":2,"next_id":7}"#, Ok(7)),
            (
                r#"{"version":2,"next_id":7,"monitors":[{"id":1}]}"#,
                Err("must not hold monitors"),
            ),
            (
                r#"{"version":1,"next_id":3,"monitors":[{"name":"x"}]}"#,
                Err("without a positive integer id"),
            ),
            (
                r#"{"version":1,"next_id":3,"monitors":[{"id":1},{"id":1}]}"#,
                Err("appears twice"),
            ),
        ];
        for (text, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(MONITORS_FILE), text).unwrap();
            match (MonitorStore::open(dir.path()), want) {
                (Ok(s), Ok(next)) => {
                    assert_eq!(s.create(doc("n")).unwrap()["id"], json!(next), "{text}")
                }
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{text}: {e}"),
                (Ok(_), Err(msg)) => panic!("{text}: opened, expected an error with {msg:?}"),
                (Err(e), Ok(_)) => panic!("{text}: {e}"),
            }
        }
    }
}
