//! Monitor definitions (SPEC §7): [`MonitorRepo`] is the seam the query tier stores monitors through;
//! [`MonitorStore`] keeps them on disk, [`MemoryMonitors`] in memory (for unit tests).
//!
//! A monitor is stored as a JSON object, opaque to storage except for its `id` field, which the repository
//! sets. [`MonitorStore`] keeps every monitor and the next id in one JSON document, `<dir>/monitors.json`:
//!
//! ```text
//! {"version": 1, "next_id": 4, "monitors": [{"id": 1, …}, {"id": 3, …}]}
//! ```
//!
//! rewritten atomically (temporary file, fsync, rename, fsync of the directory) on every change and read
//! once at open. Ids are allocated from 1, monotonically, and never reused: the next id is persisted, so a
//! deleted monitor's id stays retired across restarts.

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

/// The persisted document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Document {
    version: u32,
    next_id: MonitorId,
    monitors: Vec<MonitorDoc>,
}

const VERSION: u32 = 1;

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

    fn to_document(&self) -> Document {
        Document {
            version: VERSION,
            next_id: self.next_id,
            monitors: self.by_id.values().cloned().collect(),
        }
    }

    fn from_document(doc: Document, path: &Path) -> Result<Monitors, StorageError> {
        let corrupt = |detail: String| StorageError::Corrupt {
            path: path.display().to_string(),
            detail,
        };
        if doc.version != VERSION {
            return Err(corrupt(format!(
                "unsupported version {} (expected {VERSION})",
                doc.version
            )));
        }
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

/// Monitors persisted in `<dir>/monitors.json`, all held in memory. Changes are serialized; each one is
/// durable (fsynced) before it returns and applied in memory only once written.
#[derive(Debug)]
pub struct MonitorStore {
    path: PathBuf,
    state: Mutex<Monitors>,
}

impl MonitorStore {
    /// Opens (creating the directory if needed) and loads the monitors. A corrupt document is an error,
    /// never silently replaced.
    pub fn open(dir: &Path) -> Result<MonitorStore, StorageError> {
        let (path, doc) = crate::block::read_json_doc::<Document>(dir, MONITORS_FILE)?;
        let state = match doc {
            Some(doc) => Monitors::from_document(doc, &path)?,
            None => Monitors::default(),
        };
        Ok(MonitorStore {
            path,
            state: Mutex::new(state),
        })
    }

    /// Applies `change` to a copy of the state, writes it, then keeps it.
    fn change<T>(&self, change: impl FnOnce(&mut Monitors) -> T) -> Result<T, StorageError> {
        let mut state = self.state.lock();
        let mut next = state.clone();
        let out = change(&mut next);
        write_json_doc(&self.path, &next.to_document(), "monitors")?;
        *state = next;
        Ok(out)
    }
}

impl MonitorRepo for MonitorStore {
    fn create(&self, doc: MonitorDoc) -> Result<MonitorDoc, StorageError> {
        self.change(|m| m.create(doc))
    }

    fn get(&self, id: MonitorId) -> Option<MonitorDoc> {
        self.state.lock().by_id.get(&id).cloned()
    }

    fn list(&self) -> Vec<MonitorDoc> {
        self.state.lock().by_id.values().cloned().collect()
    }

    fn update(&self, id: MonitorId, doc: MonitorDoc) -> Result<Option<MonitorDoc>, StorageError> {
        if !self.state.lock().by_id.contains_key(&id) {
            return Ok(None);
        }
        self.change(|m| m.update(id, doc))
    }

    fn delete(&self, id: MonitorId) -> Result<bool, StorageError> {
        if !self.state.lock().by_id.contains_key(&id) {
            return Ok(false);
        }
        self.change(|m| m.by_id.remove(&id).is_some())
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
    fn corrupt_or_inconsistent_documents() {
        let cases: &[(&str, Result<u64, &str>)] = &[
            // The next id is raised above the highest stored id.
            (r#"{"version":1,"next_id":1,"monitors":[{"id":5}]}"#, Ok(6)),
            (r#"{"version":1,"next_id":9,"monitors":[]}"#, Ok(9)),
            ("{not json", Err("corrupt data")),
            (
                r#"{"version":2,"next_id":1,"monitors":[]}"#,
                Err("unsupported version 2"),
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
