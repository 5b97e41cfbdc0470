//! Dashboards (SPEC §8): [`DashboardRepo`] is the seam the dashboard API stores Datadog dashboard JSON
//! through; [`DashboardStore`] keeps one file per dashboard, `<dir>/<id>.json`, written atomically when it
//! changes and read once at open; [`MemoryDashboards`] keeps them in memory (for unit tests).
//!
//! A dashboard is a JSON object, opaque to storage except for its `id` string, which the repository sets on
//! create: Datadog's shape, three groups of three lowercase letters and digits (`abc-d3f-9hj`). Ids are
//! never reused while the store is open (a random part and a sequence number make them); [`DashboardRepo::put`]
//! stores a dashboard under a given id (the dashboards shipped with Sightline).

use crate::block::{sync_dir, write_json_doc};
use crate::StorageError;
use parking_lot::Mutex;
use serde_json::{Map, Value as JsonValue};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A stored dashboard: a JSON object whose `id` is its id.
pub type DashboardDoc = Map<String, JsonValue>;

/// Storage of dashboards. Calls may do blocking I/O: async callers run them on a blocking thread.
pub trait DashboardRepo: Send + Sync {
    /// Allocates a new id, stores `doc` with its `id` set to it, and returns the stored document.
    fn create(&self, doc: DashboardDoc) -> Result<DashboardDoc, StorageError>;
    /// Stores `doc` under `id` (replacing any), and returns the stored document.
    fn put(&self, id: &str, doc: DashboardDoc) -> Result<DashboardDoc, StorageError>;
    fn get(&self, id: &str) -> Option<DashboardDoc>;
    /// Every dashboard, by id.
    fn list(&self) -> Vec<DashboardDoc>;
    /// Replaces the dashboard (its `id` is kept); `None` if the id is unknown.
    fn update(&self, id: &str, doc: DashboardDoc) -> Result<Option<DashboardDoc>, StorageError>;
    /// Removes the dashboard; `false` if the id is unknown.
    fn delete(&self, id: &str) -> Result<bool, StorageError>;
}

/// Whether `id` can name a dashboard (and its file): 1 to 64 of `a-z`, `0-9` and `-`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The dashboards and the id sequence; what both implementations share.
#[derive(Debug, Default)]
struct Dashboards {
    seq: u64,
    by_id: BTreeMap<String, DashboardDoc>,
}

impl Dashboards {
    /// A Datadog-shaped id not in use: `xxx-xxx-xxx` from the clock and the sequence, mixed.
    fn new_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        loop {
            self.seq += 1;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            // splitmix64 of the clock and the sequence: well spread, never the same twice in a row.
            let mut z = nanos ^ self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let mut id = String::with_capacity(11);
            for i in 0..9 {
                if i > 0 && i % 3 == 0 {
                    id.push('-');
                }
                id.push(ALPHABET[(z % 36) as usize] as char);
                z /= 36;
            }
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }
}

fn with_id(mut doc: DashboardDoc, id: &str) -> DashboardDoc {
    doc.insert("id".into(), JsonValue::from(id));
    doc
}

/// Dashboards persisted one file each in a directory, all held in memory. Each change is durable
/// (fsynced) before it returns and applied in memory only once written.
#[derive(Debug)]
pub struct DashboardStore {
    dir: PathBuf,
    state: Mutex<Dashboards>,
}

impl DashboardStore {
    /// Opens (creating the directory if needed) and loads the dashboards. A corrupt file is an error,
    /// never silently replaced.
    pub fn open(dir: &Path) -> Result<DashboardStore, StorageError> {
        let mut by_id = BTreeMap::new();
        for (name, doc) in crate::block::read_json_dir::<DashboardDoc>(dir)? {
            if !valid_id(&name) || doc.get("id").and_then(JsonValue::as_str) != Some(&name) {
                return Err(StorageError::Corrupt {
                    path: dir.join(format!("{name}.json")).display().to_string(),
                    detail: format!("the dashboard in {name}.json does not have id {name:?}"),
                });
            }
            by_id.insert(name, doc);
        }
        Ok(DashboardStore {
            dir: dir.to_path_buf(),
            state: Mutex::new(Dashboards { seq: 0, by_id }),
        })
    }

    fn write(
        &self,
        state: &mut Dashboards,
        id: &str,
        doc: DashboardDoc,
    ) -> Result<DashboardDoc, StorageError> {
        let doc = with_id(doc, id);
        write_json_doc(&self.dir.join(format!("{id}.json")), &doc, "dashboard")?;
        state.by_id.insert(id.to_string(), doc.clone());
        Ok(doc)
    }
}

impl DashboardRepo for DashboardStore {
    fn create(&self, doc: DashboardDoc) -> Result<DashboardDoc, StorageError> {
        let mut state = self.state.lock();
        let id = state.new_id();
        self.write(&mut state, &id, doc)
    }

    fn put(&self, id: &str, doc: DashboardDoc) -> Result<DashboardDoc, StorageError> {
        if !valid_id(id) {
            return Err(StorageError::Corrupt {
                path: self.dir.display().to_string(),
                detail: format!("{id:?} is not a dashboard id"),
            });
        }
        let mut state = self.state.lock();
        self.write(&mut state, id, doc)
    }

    fn get(&self, id: &str) -> Option<DashboardDoc> {
        self.state.lock().by_id.get(id).cloned()
    }

    fn list(&self) -> Vec<DashboardDoc> {
        self.state.lock().by_id.values().cloned().collect()
    }

    fn update(&self, id: &str, doc: DashboardDoc) -> Result<Option<DashboardDoc>, StorageError> {
        let mut state = self.state.lock();
        if !state.by_id.contains_key(id) {
            return Ok(None);
        }
        self.write(&mut state, id, doc).map(Some)
    }

    fn delete(&self, id: &str) -> Result<bool, StorageError> {
        let mut state = self.state.lock();
        if !state.by_id.contains_key(id) {
            return Ok(false);
        }
        let path = self.dir.join(format!("{id}.json"));
        crate::block::remove_file_if_present(&path)?;
        sync_dir(&self.dir)?;
        state.by_id.remove(id);
        Ok(true)
    }
}

/// Dashboards kept in memory only: for unit tests.
#[derive(Debug, Default)]
pub struct MemoryDashboards {
    state: Mutex<Dashboards>,
}

impl DashboardRepo for MemoryDashboards {
    fn create(&self, doc: DashboardDoc) -> Result<DashboardDoc, StorageError> {
        let mut state = self.state.lock();
        let id = state.new_id();
        let doc = with_id(doc, &id);
        state.by_id.insert(id, doc.clone());
        Ok(doc)
    }

    fn put(&self, id: &str, doc: DashboardDoc) -> Result<DashboardDoc, StorageError> {
        let doc = with_id(doc, id);
        self.state.lock().by_id.insert(id.to_string(), doc.clone());
        Ok(doc)
    }

    fn get(&self, id: &str) -> Option<DashboardDoc> {
        self.state.lock().by_id.get(id).cloned()
    }

    fn list(&self) -> Vec<DashboardDoc> {
        self.state.lock().by_id.values().cloned().collect()
    }

    fn update(&self, id: &str, doc: DashboardDoc) -> Result<Option<DashboardDoc>, StorageError> {
        let mut state = self.state.lock();
        let Some(slot) = state.by_id.get_mut(id) else {
            return Ok(None);
        };
        *slot = with_id(doc, id);
        Ok(Some(slot.clone()))
    }

    fn delete(&self, id: &str) -> Result<bool, StorageError> {
        Ok(self.state.lock().by_id.remove(id).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(title: &str) -> DashboardDoc {
        json!({"title": title, "layout_type": "ordered", "widgets": []})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn exercise(repo: &dyn DashboardRepo) -> (String, String) {
        let a = repo.create(doc("a")).unwrap();
        let b = repo.create(doc("b")).unwrap();
        let (ida, idb) = (
            a["id"].as_str().unwrap().to_string(),
            b["id"].as_str().unwrap().to_string(),
        );
        assert_ne!(ida, idb);
        for id in [&ida, &idb] {
            assert!(
                valid_id(id) && id.len() == 11 && id.matches('-').count() == 2,
                "{id}"
            );
        }
        assert_eq!(repo.get(&ida).unwrap()["title"], "a");
        assert!(repo.update(&idb, doc("b2")).unwrap().is_some());
        assert!(repo.update("nope-nop-nop", doc("x")).unwrap().is_none());
        repo.put("sightline-hosts", doc("hosts")).unwrap();
        assert_eq!(repo.list().len(), 3);
        assert!(repo.delete(&ida).unwrap());
        assert!(!repo.delete(&ida).unwrap());
        (ida, idb)
    }

    #[test]
    fn memory() {
        let repo = MemoryDashboards::default();
        exercise(&repo);
        assert_eq!(repo.list().len(), 2);
    }

    #[test]
    fn on_disk_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (ida, idb) = {
            let repo = DashboardStore::open(dir.path()).unwrap();
            exercise(&repo)
        };
        let repo = DashboardStore::open(dir.path()).unwrap();
        assert!(repo.get(&ida).is_none());
        assert_eq!(repo.get(&idb).unwrap()["title"], "b2");
        assert_eq!(
            repo.get("sightline-hosts").unwrap()["id"],
            "sightline-hosts"
        );
        assert!(repo.put("Bad/Id", doc("x")).is_err());
        std::fs::write(dir.path().join("zzz-zzz-zzz.json"), r#"{"id":"other"}"#).unwrap();
        let e = DashboardStore::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("does not have id"), "{e}");
    }
}
