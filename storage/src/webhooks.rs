//! Webhook configurations (SPEC §7, Datadog's webhooks integration): [`WebhookRepo`] is the seam the query
//! tier stores them through; [`WebhookStore`] keeps them on disk, [`MemoryWebhooks`] in memory (unit tests).
//!
//! Webhooks are keyed by their name (case-sensitive, unique). Storage does not validate the fields (the API
//! does); it only keeps names unique. [`WebhookStore`] keeps every webhook in one JSON document,
//! `<dir>/webhooks.json`:
//!
//! ```text
//! {"version": 1, "webhooks": [{"name": "ops", "url": "https://…", "payload": null, "custom_headers": null,
//!   "encode_as": "json", "format": "datadog"}, …]}
//! ```
//!
//! `encode_as` and `format` were added after version 1 was written: a document without them loads with their
//! defaults (`json`, `datadog`).
//!
//! rewritten atomically ([`crate::block::write_atomic`]: temporary file, fsync, rename, fsync of the
//! directory) on every change and read once at open.

use crate::block::{DocState, DocStore};
use crate::StorageError;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the document, in the webhook directory.
pub const WEBHOOKS_FILE: &str = "webhooks.json";

/// How a webhook's payload is sent: a JSON body, or form-encoded fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookEncoding {
    #[default]
    Json,
    Form,
}

impl WebhookEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEncoding::Json => "json",
            WebhookEncoding::Form => "form",
        }
    }
}

/// What a webhook sends: Datadog's payload (the `payload` template, or Datadog's default payload), or one of
/// the built-in formats (an Alertmanager webhook v4 message, a Slack incoming-webhook message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    #[default]
    Datadog,
    Alertmanager,
    Slack,
}

impl WebhookFormat {
    /// Every format, in the order error messages list them.
    pub const ALL: [WebhookFormat; 3] = [
        WebhookFormat::Datadog,
        WebhookFormat::Alertmanager,
        WebhookFormat::Slack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Datadog => "datadog",
            WebhookFormat::Alertmanager => "alertmanager",
            WebhookFormat::Slack => "slack",
        }
    }

    /// The format named `name` (exact, lowercase), if any.
    pub fn parse(name: &str) -> Option<WebhookFormat> {
        WebhookFormat::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// One webhook, as configured through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub name: String,
    /// The target URL, kept exactly as given.
    pub url: String,
    /// The payload template (JSON text with `$VARIABLES`); `None` means Datadog's default payload.
    pub payload: Option<String>,
    /// JSON object text of extra headers; `None` means no extra header.
    pub custom_headers: Option<String>,
    #[serde(default)]
    pub encode_as: WebhookEncoding,
    /// What to send; absent in documents written before formats existed.
    #[serde(default)]
    pub format: WebhookFormat,
}

/// The result of a change that may collide with another name or miss its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookChange {
    /// Stored; the webhook as stored.
    Stored(Webhook),
    /// The webhook to replace does not exist.
    NotFound,
    /// Another webhook already has the (new) name.
    NameTaken,
}

/// Storage of webhook configurations. Calls may do blocking I/O: async callers run them on a blocking thread.
pub trait WebhookRepo: Send + Sync {
    /// Stores a new webhook; [`WebhookChange::NameTaken`] if its name exists.
    fn create(&self, webhook: Webhook) -> Result<WebhookChange, StorageError>;
    /// The webhook with this name, if any.
    fn get(&self, name: &str) -> Option<Webhook>;
    /// Every webhook, by name.
    fn list(&self) -> Vec<Webhook>;
    /// Replaces the webhook named `name` by `webhook`, whose name may differ (a rename):
    /// [`WebhookChange::NotFound`] if `name` is unknown, [`WebhookChange::NameTaken`] if the new name
    /// belongs to another webhook.
    fn replace(&self, name: &str, webhook: Webhook) -> Result<WebhookChange, StorageError>;
    /// Removes the webhook; `false` if the name is unknown.
    fn delete(&self, name: &str) -> Result<bool, StorageError>;
}

/// The persisted document.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Document {
    version: u32,
    webhooks: Vec<Webhook>,
}

const VERSION: u32 = 1;

/// The webhooks by name; what both implementations share.
#[derive(Debug, Clone, Default)]
struct Webhooks {
    by_name: BTreeMap<String, Webhook>,
}

impl Webhooks {
    fn create(&mut self, w: Webhook) -> WebhookChange {
        if self.by_name.contains_key(&w.name) {
            return WebhookChange::NameTaken;
        }
        self.by_name.insert(w.name.clone(), w.clone());
        WebhookChange::Stored(w)
    }

    fn replace(&mut self, name: &str, w: Webhook) -> WebhookChange {
        if !self.by_name.contains_key(name) {
            return WebhookChange::NotFound;
        }
        if w.name != name && self.by_name.contains_key(&w.name) {
            return WebhookChange::NameTaken;
        }
        self.by_name.remove(name);
        self.by_name.insert(w.name.clone(), w.clone());
        WebhookChange::Stored(w)
    }
}

impl DocState for Webhooks {
    type Document = Document;
    const WHAT: &'static str = "webhooks";

    fn to_document(&self) -> Document {
        Document {
            version: VERSION,
            webhooks: self.by_name.values().cloned().collect(),
        }
    }

    fn from_document(doc: Document, path: &Path) -> Result<Webhooks, StorageError> {
        let corrupt = |detail: String| StorageError::Corrupt {
            path: path.display().to_string(),
            detail,
        };
        crate::block::check_version(path, doc.version, VERSION)?;
        let mut by_name = BTreeMap::new();
        for w in doc.webhooks {
            if w.name.is_empty() {
                return Err(corrupt("a webhook without a name".into()));
            }
            let name = w.name.clone();
            if by_name.insert(name.clone(), w).is_some() {
                return Err(corrupt(format!("webhook {name:?} appears twice")));
            }
        }
        Ok(Webhooks { by_name })
    }
}

/// Webhooks persisted in `<dir>/webhooks.json`, all held in memory (a [`DocStore`]).
#[derive(Debug)]
pub struct WebhookStore(DocStore<Webhooks>);

impl WebhookStore {
    /// Opens (creating the directory if needed) and loads the webhooks. A corrupt document is an error,
    /// never silently replaced.
    pub fn open(dir: &Path) -> Result<WebhookStore, StorageError> {
        DocStore::open(dir, WEBHOOKS_FILE).map(WebhookStore)
    }

    /// Applies `change`; writes only if it stored something.
    fn change(
        &self,
        change: impl FnOnce(&mut Webhooks) -> WebhookChange,
    ) -> Result<WebhookChange, StorageError> {
        self.0.change(|s| {
            let out = change(s);
            let keep = matches!(out, WebhookChange::Stored(_));
            (out, keep)
        })
    }
}

impl WebhookRepo for WebhookStore {
    fn create(&self, webhook: Webhook) -> Result<WebhookChange, StorageError> {
        self.change(|s| s.create(webhook))
    }

    fn get(&self, name: &str) -> Option<Webhook> {
        self.0.read(|s| s.by_name.get(name).cloned())
    }

    fn list(&self) -> Vec<Webhook> {
        self.0.read(|s| s.by_name.values().cloned().collect())
    }

    fn replace(&self, name: &str, webhook: Webhook) -> Result<WebhookChange, StorageError> {
        self.change(|s| s.replace(name, webhook))
    }

    fn delete(&self, name: &str) -> Result<bool, StorageError> {
        self.0.change(|s| {
            let removed = s.by_name.remove(name).is_some();
            (removed, removed)
        })
    }
}

/// Webhooks kept in memory only: for unit tests.
#[derive(Debug, Default)]
pub struct MemoryWebhooks {
    state: Mutex<Webhooks>,
}

impl WebhookRepo for MemoryWebhooks {
    fn create(&self, webhook: Webhook) -> Result<WebhookChange, StorageError> {
        Ok(self.state.lock().create(webhook))
    }

    fn get(&self, name: &str) -> Option<Webhook> {
        self.state.lock().by_name.get(name).cloned()
    }

    fn list(&self) -> Vec<Webhook> {
        self.state.lock().by_name.values().cloned().collect()
    }

    fn replace(&self, name: &str, webhook: Webhook) -> Result<WebhookChange, StorageError> {
        Ok(self.state.lock().replace(name, webhook))
    }

    fn delete(&self, name: &str) -> Result<bool, StorageError> {
        Ok(self.state.lock().by_name.remove(name).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(name: &str, url: &str) -> Webhook {
        Webhook {
            name: name.into(),
            url: url.into(),
            payload: None,
            custom_headers: None,
            encode_as: WebhookEncoding::Json,
            format: WebhookFormat::Datadog,
        }
    }

    fn names(repo: &dyn WebhookRepo) -> Vec<(String, String)> {
        repo.list().into_iter().map(|w| (w.name, w.url)).collect()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Create(&'static str, &'static str, WebhookChange),
        Replace(&'static str, &'static str, &'static str, WebhookChange),
        Delete(&'static str, bool),
        Reopen,
    }

    fn stored(name: &str, url: &str) -> WebhookChange {
        WebhookChange::Stored(hook(name, url))
    }

    /// Runs `ops` on a repository from `open` (reopened at `Reopen`) and checks the final (name, url) list.
    fn check(open: &dyn Fn() -> Box<dyn WebhookRepo>, ops: &[Op], want: &[(&str, &str)]) {
        let mut repo = open();
        for op in ops {
            match op {
                Op::Create(n, u, out) => {
                    assert_eq!(&repo.create(hook(n, u)).unwrap(), out, "{op:?}")
                }
                Op::Replace(old, n, u, out) => {
                    assert_eq!(&repo.replace(old, hook(n, u)).unwrap(), out, "{op:?}")
                }
                Op::Delete(n, out) => assert_eq!(repo.delete(n).unwrap(), *out, "{op:?}"),
                Op::Reopen => {
                    drop(repo);
                    repo = open();
                }
            }
        }
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, u)| (n.to_string(), u.to_string()))
            .collect();
        assert_eq!(names(repo.as_ref()), want, "{ops:?}");
        for (n, u) in &want {
            assert_eq!(repo.get(n).map(|w| w.url), Some(u.clone()));
        }
    }

    /// Operations and the expected final (name, url) list.
    type Scenario = (Vec<Op>, Vec<(&'static str, &'static str)>);

    fn scenarios() -> Vec<Scenario> {
        use Op::*;
        let taken = WebhookChange::NameTaken;
        let missing = WebhookChange::NotFound;
        vec![
            (vec![], vec![]),
            (
                vec![
                    Create("b", "http://b", stored("b", "http://b")),
                    Create("a", "http://a", stored("a", "http://a")),
                    Create("a", "http://other", taken.clone()),
                ],
                vec![("a", "http://a"), ("b", "http://b")],
            ),
            (
                vec![
                    Create("a", "http://a", stored("a", "http://a")),
                    Create("b", "http://b", stored("b", "http://b")),
                    Replace("a", "b", "http://x", taken),
                    Replace("zz", "zz", "http://x", missing),
                    Replace("a", "c", "http://c", stored("c", "http://c")),
                    Replace("b", "b", "http://b2", stored("b", "http://b2")),
                    Delete("a", false),
                ],
                vec![("b", "http://b2"), ("c", "http://c")],
            ),
            (
                vec![
                    Create("a", "http://a", stored("a", "http://a")),
                    Create("b", "http://b", stored("b", "http://b")),
                    Reopen,
                    Delete("a", true),
                    Delete("a", false),
                    Reopen,
                    Replace("b", "B", "http://B", stored("B", "http://B")),
                    Reopen,
                ],
                vec![("B", "http://B")],
            ),
        ]
    }

    #[test]
    fn disk_store_scenarios() {
        for (ops, want) in scenarios() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("webhooks");
            let open =
                move || -> Box<dyn WebhookRepo> { Box::new(WebhookStore::open(&path).unwrap()) };
            check(&open, &ops, &want);
        }
    }

    #[test]
    fn memory_scenarios() {
        for (ops, want) in scenarios() {
            // Memory does not survive a reopen: keep one instance behind a shared handle.
            let shared = std::sync::Arc::new(MemoryWebhooks::default());
            let open = move || -> Box<dyn WebhookRepo> { Box::new(Shared(shared.clone())) };
            check(&open, &ops, &want);
        }
    }

    struct Shared(std::sync::Arc<MemoryWebhooks>);

    impl WebhookRepo for Shared {
        fn create(&self, w: Webhook) -> Result<WebhookChange, StorageError> {
            self.0.create(w)
        }
        fn get(&self, name: &str) -> Option<Webhook> {
            self.0.get(name)
        }
        fn list(&self) -> Vec<Webhook> {
            self.0.list()
        }
        fn replace(&self, name: &str, w: Webhook) -> Result<WebhookChange, StorageError> {
            self.0.replace(name, w)
        }
        fn delete(&self, name: &str) -> Result<bool, StorageError> {
            self.0.delete(name)
        }
    }

    #[test]
    fn reopen_keeps_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let w = Webhook {
            name: "ops-team_1".into(),
            url: "https://hooks.example.com/x?y=1".into(),
            payload: Some(r#"{"t": "$ALERT_TITLE"}"#.into()),
            custom_headers: Some(r#"{"X-Token": "abc"}"#.into()),
            encode_as: WebhookEncoding::Form,
            format: WebhookFormat::Datadog,
        };
        let am = Webhook {
            name: "am".into(),
            url: "http://am:9093/hook".into(),
            payload: None,
            custom_headers: None,
            encode_as: WebhookEncoding::Json,
            format: WebhookFormat::Alertmanager,
        };
        let store = WebhookStore::open(dir.path()).unwrap();
        store.create(w.clone()).unwrap();
        store.create(am.clone()).unwrap();
        drop(store);
        let again = WebhookStore::open(dir.path()).unwrap();
        assert_eq!(again.get("ops-team_1"), Some(w));
        assert_eq!(again.get("am"), Some(am));
        assert!(!dir.path().join("webhooks.tmp").exists());
    }

    #[test]
    fn webhooks_of_older_documents_load_with_defaults() {
        // A version 1 document written before `encode_as` and `format` existed.
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"version": 1, "webhooks": [{"name": "ops", "url": "http://h/x", "payload": "{\"a\": 1}", "custom_headers": null}]}"#;
        std::fs::write(dir.path().join(WEBHOOKS_FILE), text).unwrap();
        let store = WebhookStore::open(dir.path()).unwrap();
        let w = store.get("ops").unwrap();
        assert_eq!(
            (w.encode_as, w.format, w.payload.as_deref()),
            (
                WebhookEncoding::Json,
                WebhookFormat::Datadog,
                Some(r#"{"a": 1}"#)
            )
        );
        for f in WebhookFormat::ALL {
            assert_eq!(WebhookFormat::parse(f.as_str()), Some(f));
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        }
        assert_eq!(WebhookFormat::parse("Slack"), None);
    }

    #[test]
    fn corrupt_documents_are_errors() {
        for (text, want) in [
            ("not json", "expected"),
            (r#"{"version": 2, "webhooks": []}"#, "unsupported version 2"),
            (
                r#"{"version": 1, "webhooks": [{"name": "", "url": "u", "payload": null, "custom_headers": null}]}"#,
                "without a name",
            ),
            (
                r#"{"version": 1, "webhooks": [{"name": "a", "url": "u", "payload": null, "custom_headers": null},
                    {"name": "a", "url": "v", "payload": null, "custom_headers": null}]}"#,
                "appears twice",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(WEBHOOKS_FILE), text).unwrap();
            let err = WebhookStore::open(dir.path()).unwrap_err();
            assert!(
                matches!(&err, StorageError::Corrupt { detail, .. } if detail.contains(want)),
                "{text}: {err}"
            );
        }
    }
}
