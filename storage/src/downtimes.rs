//! Downtimes (SPEC §7, Datadog's `/api/v2/downtime`): [`DowntimeRepo`] is the seam the query tier stores
//! them through; [`DowntimeStore`] keeps them on disk, [`MemoryDowntimes`] in memory (unit tests).
//!
//! A downtime is stored as a JSON object, opaque to storage except for its `id` field (a string), which the
//! repository sets on creation. Downtimes are never removed: a canceled downtime is an update (the API keeps
//! the record with status `canceled`). [`DowntimeStore`] keeps every downtime, in creation order, and the
//! next sequence number in one JSON document, `<dir>/downtimes.json`:
//!
//! ```text
//! {"version": 1, "next_seq": 3, "downtimes": [{"id": "…", …}, {"id": "…", …}]}
//! ```
//!
//! rewritten atomically ([`crate::block::write_atomic`]: temporary file, fsync, rename, fsync of the
//! directory) on every change and read once at open. Ids look like UUIDs: the creation time in the first
//! groups and the persisted, never reused sequence number in the last 12 hex digits, so they are unique.

use crate::block::{DocState, DocStore};
use crate::StorageError;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as JsonValue};
use std::path::Path;

/// A stored downtime: a JSON object whose `id` is a string set by the repository.
pub type DowntimeDoc = Map<String, JsonValue>;

/// Name of the document, in the downtime directory.
pub const DOWNTIMES_FILE: &str = "downtimes.json";

/// Storage of downtimes. Calls may do blocking I/O: async callers run them on a blocking thread.
pub trait DowntimeRepo: Send + Sync {
    /// Allocates a new id, stores `doc` with its `id` set to it, and returns the stored document.
    fn create(&self, doc: DowntimeDoc) -> Result<DowntimeDoc, StorageError>;
    /// The downtime with this id, if any.
    fn get(&self, id: &str) -> Option<DowntimeDoc>;
    /// Every downtime, in creation order.
    fn list(&self) -> Vec<DowntimeDoc>;
    /// Replaces the downtime (its `id` is kept); `None` if the id is unknown.
    fn update(&self, id: &str, doc: DowntimeDoc) -> Result<Option<DowntimeDoc>, StorageError>;
}

/// The persisted document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Document {
    version: u32,
    next_seq: u64,
    downtimes: Vec<DowntimeDoc>,
}

const VERSION: u32 = 1;

/// The downtimes, in creation order, and the next sequence number; what both implementations share.
#[derive(Debug, Clone)]
struct Downtimes {
    next_seq: u64,
    list: Vec<DowntimeDoc>,
}

impl DocState for Downtimes {
    type Document = Document;
    const WHAT: &'static str = "downtimes";

    fn to_document(&self) -> Document {
        Document {
            version: VERSION,
            next_seq: self.next_seq,
            downtimes: self.list.clone(),
        }
    }

    fn from_document(doc: Document, path: &Path) -> Result<Downtimes, StorageError> {
        let corrupt = |detail: String| StorageError::Corrupt {
            path: path.display().to_string(),
            detail,
        };
        crate::block::check_version(path, doc.version, VERSION)?;
        let mut seen = std::collections::HashSet::new();
        for d in &doc.downtimes {
            let id = id_of(d)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| corrupt("a downtime without a string id".into()))?;
            if !seen.insert(id.to_string()) {
                return Err(corrupt(format!("downtime id {id} appears twice")));
            }
        }
        Ok(Downtimes {
            next_seq: doc.next_seq.max(1),
            list: doc.downtimes,
        })
    }
}

impl Default for Downtimes {
    fn default() -> Downtimes {
        Downtimes {
            next_seq: 1,
            list: Vec::new(),
        }
    }
}

/// A UUID-shaped id (version 4 and variant bits set) from a time in nanoseconds and a unique sequence number.
fn make_id(nanos: u128, seq: u64) -> String {
    let t = nanos as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (t >> 32) as u32,
        (t >> 16) as u16,
        (t >> 4) & 0xfff,
        ((t & 0xf) << 8) | ((seq >> 48) & 0xff),
        seq & 0xffff_ffff_ffff
    )
}

fn id_of(doc: &DowntimeDoc) -> Option<&str> {
    doc.get("id").and_then(JsonValue::as_str)
}

impl Downtimes {
    fn create(&mut self, mut doc: DowntimeDoc) -> DowntimeDoc {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = make_id(nanos, self.next_seq);
        self.next_seq += 1;
        doc.insert("id".into(), JsonValue::from(id));
        self.list.push(doc.clone());
        doc
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.list.iter().position(|d| id_of(d) == Some(id))
    }

    fn update(&mut self, id: &str, mut doc: DowntimeDoc) -> Option<DowntimeDoc> {
        let i = self.position(id)?;
        doc.insert("id".into(), JsonValue::from(id));
        self.list[i] = doc.clone();
        Some(doc)
    }
}

/// Downtimes persisted in `<dir>/downtimes.json`, all held in memory (a [`DocStore`]).
#[derive(Debug)]
pub struct DowntimeStore(DocStore<Downtimes>);

impl DowntimeStore {
    /// Opens (creating the directory if needed) and loads the downtimes. A corrupt document is an error,
    /// never silently replaced.
    pub fn open(dir: &Path) -> Result<DowntimeStore, StorageError> {
        DocStore::open(dir, DOWNTIMES_FILE).map(DowntimeStore)
    }
}

impl DowntimeRepo for DowntimeStore {
    fn create(&self, doc: DowntimeDoc) -> Result<DowntimeDoc, StorageError> {
        self.0.change(|d| (d.create(doc), true))
    }

    fn get(&self, id: &str) -> Option<DowntimeDoc> {
        self.0.read(|d| d.position(id).map(|i| d.list[i].clone()))
    }

    fn list(&self) -> Vec<DowntimeDoc> {
        self.0.read(|d| d.list.clone())
    }

    fn update(&self, id: &str, doc: DowntimeDoc) -> Result<Option<DowntimeDoc>, StorageError> {
        self.0.change(|d| {
            let out = d.update(id, doc);
            let keep = out.is_some();
            (out, keep)
        })
    }
}

/// Downtimes kept in memory only: for unit tests.
#[derive(Debug, Default)]
pub struct MemoryDowntimes {
    state: Mutex<Downtimes>,
}

impl DowntimeRepo for MemoryDowntimes {
    fn create(&self, doc: DowntimeDoc) -> Result<DowntimeDoc, StorageError> {
        Ok(self.state.lock().create(doc))
    }

    fn get(&self, id: &str) -> Option<DowntimeDoc> {
        let state = self.state.lock();
        state.position(id).map(|i| state.list[i].clone())
    }

    fn list(&self) -> Vec<DowntimeDoc> {
        self.state.lock().list.clone()
    }

    fn update(&self, id: &str, doc: DowntimeDoc) -> Result<Option<DowntimeDoc>, StorageError> {
        Ok(self.state.lock().update(id, doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(scope: &str) -> DowntimeDoc {
        json!({"scope": scope}).as_object().cloned().unwrap()
    }

    fn scopes(repo: &dyn DowntimeRepo) -> Vec<String> {
        repo.list()
            .iter()
            .map(|d| d["scope"].as_str().unwrap().to_string())
            .collect()
    }

    /// Creates `a`, `b`, `c`, updates `b`, optionally reopens, and checks what is listed and found.
    fn check(open: &dyn Fn() -> Box<dyn DowntimeRepo>, reopen: bool) {
        let mut repo = open();
        let ids: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|s| {
                repo.create(doc(s)).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(
            ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
            "{ids:?}"
        );
        for id in &ids {
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(&id[14..15], "4", "{id}");
        }
        let updated = repo.update(&ids[1], doc("b2")).unwrap().unwrap();
        assert_eq!(updated["id"], json!(ids[1]));
        assert!(repo.update("nope", doc("x")).unwrap().is_none());
        if reopen {
            drop(repo);
            repo = open();
        }
        assert_eq!(scopes(repo.as_ref()), ["a", "b2", "c"]);
        assert_eq!(repo.get(&ids[2]).unwrap()["scope"], json!("c"));
        assert!(repo.get("nope").is_none());
        // A new id after reopening is not one handed out before.
        let d = repo.create(doc("d")).unwrap();
        assert!(!ids.contains(&d["id"].as_str().unwrap().to_string()));
        assert_eq!(scopes(repo.as_ref()), ["a", "b2", "c", "d"]);
    }

    #[test]
    fn memory_repo() {
        check(&|| Box::new(MemoryDowntimes::default()), false);
    }

    #[test]
    fn store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("downtimes");
        check(&|| Box::new(DowntimeStore::open(&path).unwrap()), true);
        let raw: JsonValue =
            serde_json::from_slice(&std::fs::read(path.join(DOWNTIMES_FILE)).unwrap()).unwrap();
        assert_eq!(raw["version"], json!(1));
        assert_eq!(raw["next_seq"], json!(5));
    }

    #[test]
    fn corrupt_documents_are_refused() {
        let cases = [
            "not json",
            r#"{"version": 2, "next_seq": 1, "downtimes": []}"#,
            r#"{"version": 1, "next_seq": 1, "downtimes": [{"scope": "*"}]}"#,
            r#"{"version": 1, "next_seq": 3, "downtimes": [{"id": "a"}, {"id": "a"}]}"#,
        ];
        for text in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(DOWNTIMES_FILE), text).unwrap();
            let err = DowntimeStore::open(dir.path()).unwrap_err();
            assert!(matches!(err, StorageError::Corrupt { .. }), "{text}: {err}");
        }
    }
}
