//! The series index: series key → dense `SeriesId`, metadata per series, series per metric, an inverted
//! index tag → series ids (roaring bitmaps), last-seen time per metric, and the cardinality limits.
//!
//! On disk (`<store dir>/index/`): `series.log`, an append-only log of series records
//! (`[u32 len][u32 crc32][postcard SeriesRecord]`, little-endian, a torn tail is cut on load), and
//! `metrics.bin`, the last-seen time per metric, rewritten atomically at each persist.

use crate::store::StorageMetrics;
use crate::{SeriesId, SeriesMeta, StorageError};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use sightline_model::{Limits, MetricKind, SeriesKey};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Why a point could not be given a series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("metric {metric:?} has {count} series; the limit max_series_per_metric is {limit}")]
    SeriesPerMetric {
        metric: String,
        count: usize,
        limit: usize,
    },
    #[error(
        "metric {metric:?} would add a series beyond the {count} series in total; the limit max_series_total is {limit}"
    )]
    SeriesTotal {
        metric: String,
        count: usize,
        limit: usize,
    },
    #[error("metric {metric:?} holds {existing} points; a {got} point cannot be stored in the same series")]
    KindMismatch {
        metric: String,
        existing: &'static str,
        got: &'static str,
    },
}

impl IndexError {
    /// The `reason` label of `sightline_storage_points_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            IndexError::SeriesPerMetric { .. } => "max_series_per_metric",
            IndexError::SeriesTotal { .. } => "max_series_total",
            IndexError::KindMismatch { .. } => "kind_mismatch",
        }
    }
}

/// What the index keeps per metric name.
#[derive(Debug, Default)]
struct MetricEntry {
    series: RoaringBitmap,
    tags: BTreeMap<String, RoaringBitmap>,
    last_seen: i64,
}

/// One record of `series.log`: a new series or a change of its kind or interval.
#[derive(Debug, Serialize, Deserialize)]
struct SeriesRecord {
    id: SeriesId,
    key: SeriesKey,
    kind: MetricKind,
    interval: u32,
}

/// The series index. Not synchronized: its owner (head store or metric store) holds it behind a lock.
#[derive(Debug)]
pub struct SeriesIndex {
    limits: Limits,
    metas: Vec<SeriesMeta>,
    /// Hash of the key → the first series with that hash; other keys with the same hash go to `collisions`.
    by_hash: HashMap<u64, SeriesId>,
    collisions: HashMap<SeriesKey, SeriesId>,
    metrics: BTreeMap<String, MetricEntry>,
    /// Series created or changed since the last `persist`.
    dirty: RoaringBitmap,
    stats: StorageMetrics,
    dir: Option<PathBuf>,
}

fn key_hash(key: &SeriesKey) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

fn io_err(path: &Path, source: std::io::Error) -> StorageError {
    StorageError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl SeriesIndex {
    /// An empty in-memory index.
    pub fn new(limits: Limits) -> SeriesIndex {
        SeriesIndex {
            limits,
            metas: Vec::new(),
            by_hash: HashMap::new(),
            collisions: HashMap::new(),
            metrics: BTreeMap::new(),
            dirty: RoaringBitmap::new(),
            stats: StorageMetrics::default(),
            dir: None,
        }
    }

    /// Uses these metric handles (rejections, series gauge) from now on.
    pub fn set_metrics(&mut self, stats: StorageMetrics) {
        stats.series.set(self.metas.len() as i64);
        self.stats = stats;
    }

    /// Opens the index persisted in `dir` (created if missing); `persist` writes there.
    pub fn open(dir: &Path, limits: Limits) -> Result<SeriesIndex, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let mut idx = SeriesIndex::new(limits);
        idx.dir = Some(dir.to_path_buf());
        let log = dir.join("series.log");
        if log.exists() {
            let mut bytes = Vec::new();
            std::fs::File::open(&log)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| io_err(&log, e))?;
            let mut pos = 0usize;
            while pos + 8 <= bytes.len() {
                let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
                let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
                let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
                    break;
                };
                if crc32fast::hash(payload) != crc {
                    break;
                }
                let Ok(rec) = postcard::from_bytes::<SeriesRecord>(payload) else {
                    break;
                };
                idx.load_record(rec)
                    .map_err(|detail| StorageError::Corrupt {
                        path: log.display().to_string(),
                        detail,
                    })?;
                pos += 8 + len;
            }
            if pos < bytes.len() {
                tracing::warn!(path = %log.display(), at = pos, len = bytes.len(), "cutting a torn tail of the series index");
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&log)
                    .map_err(|e| io_err(&log, e))?;
                f.set_len(pos as u64)
                    .and_then(|_| f.sync_all())
                    .map_err(|e| io_err(&log, e))?;
            }
        }
        let mb = dir.join("metrics.bin");
        if mb.exists() {
            let bytes = std::fs::read(&mb).map_err(|e| io_err(&mb, e))?;
            let seen: Vec<(String, i64)> =
                postcard::from_bytes(&bytes).map_err(|e| StorageError::Corrupt {
                    path: mb.display().to_string(),
                    detail: e.to_string(),
                })?;
            for (name, ts) in seen {
                if let Some(m) = idx.metrics.get_mut(&name) {
                    m.last_seen = m.last_seen.max(ts);
                }
            }
        }
        Ok(idx)
    }

    fn load_record(&mut self, rec: SeriesRecord) -> Result<(), String> {
        let id = rec.id as usize;
        if id < self.metas.len() {
            let m = &mut self.metas[id];
            if m.key != rec.key {
                return Err(format!("series {} changes key", rec.id));
            }
            m.kind = rec.kind;
            m.interval = rec.interval;
            Ok(())
        } else if id == self.metas.len() {
            self.insert_new(rec.key, rec.kind, rec.interval, i64::MIN);
            self.dirty.clear();
            Ok(())
        } else {
            Err(format!(
                "series id {} skips ids from {}",
                rec.id,
                self.metas.len()
            ))
        }
    }

    /// Appends every series created or changed since the last call to `series.log` and fsyncs it, and
    /// rewrites `metrics.bin`. Does nothing for an in-memory index.
    pub fn persist(&mut self) -> Result<(), StorageError> {
        match self.prepare_persist() {
            Some(job) => job.write().map_err(|(ids, e)| {
                self.requeue(ids);
                e
            }),
            None => Ok(()),
        }
    }

    /// Takes what `persist` would write, so that the slow part (`IndexPersist::write`) can run without the
    /// index's lock. On failure, hand the ids back with [`SeriesIndex::requeue`].
    pub fn prepare_persist(&mut self) -> Option<IndexPersist> {
        let dir = self.dir.clone();
        let ids = std::mem::take(&mut self.dirty);
        let dir = dir?;
        // Only a snapshot here (the caller holds the lock); `IndexPersist::write` serializes it.
        let records = ids
            .iter()
            .map(|id| {
                let m = &self.metas[id as usize];
                SeriesRecord {
                    id,
                    key: m.key.clone(),
                    kind: m.kind,
                    interval: m.interval,
                }
            })
            .collect();
        let seen = self
            .metrics
            .iter()
            .map(|(k, m)| (k.clone(), m.last_seen))
            .collect();
        Some(IndexPersist {
            dir,
            ids,
            records,
            seen,
        })
    }

    /// Marks series as not yet persisted again (after a failed `IndexPersist::write`).
    pub fn requeue(&mut self, ids: RoaringBitmap) {
        self.dirty |= ids;
    }

    fn insert_new(&mut self, key: SeriesKey, kind: MetricKind, interval: u32, ts: i64) -> SeriesId {
        let id = self.metas.len() as SeriesId;
        let h = key_hash(&key);
        match self.by_hash.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.insert(key.clone(), id);
            }
        }
        let entry = self.metrics.entry(key.name.clone()).or_default();
        entry.series.insert(id);
        for t in key.tags.iter() {
            entry.tags.entry(t.to_string()).or_default().insert(id);
        }
        entry.last_seen = entry.last_seen.max(ts);
        self.metas.push(SeriesMeta {
            id,
            key,
            kind,
            interval,
        });
        self.dirty.insert(id);
        self.stats.series.set(self.metas.len() as i64);
        id
    }

    /// The id of a series, if it exists.
    pub fn lookup(&self, key: &SeriesKey) -> Option<SeriesId> {
        let id = *self.by_hash.get(&key_hash(key))?;
        if self.metas[id as usize].key == *key {
            Some(id)
        } else {
            self.collisions.get(key).copied()
        }
    }

    /// Finds or creates the series of a point written at `ts` with this kind and interval, enforcing the
    /// cardinality limits and that sketch and scalar points do not share a series. Updates the series' kind
    /// and interval to the last written and the metric's last-seen time. Counts rejections.
    pub fn resolve(
        &mut self,
        key: &SeriesKey,
        kind: MetricKind,
        interval: u32,
        ts: i64,
    ) -> Result<SeriesId, IndexError> {
        let r = self.resolve_inner(key, kind, interval, ts);
        if let Err(e) = &r {
            self.stats
                .points_rejected
                .get_or_create(&vec![("reason".to_string(), e.reason().to_string())])
                .inc();
        }
        r
    }

    fn resolve_inner(
        &mut self,
        key: &SeriesKey,
        kind: MetricKind,
        interval: u32,
        ts: i64,
    ) -> Result<SeriesId, IndexError> {
        if let Some(id) = self.lookup(key) {
            let m = &mut self.metas[id as usize];
            if m.kind.is_sketch() != kind.is_sketch() {
                return Err(IndexError::KindMismatch {
                    metric: key.name.clone(),
                    existing: m.kind.as_str(),
                    got: kind.as_str(),
                });
            }
            if m.kind != kind || (m.interval != interval && interval != 0) {
                m.kind = kind;
                if interval != 0 {
                    m.interval = interval;
                }
                self.dirty.insert(id);
            }
            if let Some(e) = self.metrics.get_mut(&key.name) {
                e.last_seen = e.last_seen.max(ts);
            }
            return Ok(id);
        }
        let per_metric = self
            .metrics
            .get(&key.name)
            .map_or(0, |e| e.series.len() as usize);
        if per_metric >= self.limits.max_series_per_metric {
            return Err(IndexError::SeriesPerMetric {
                metric: key.name.clone(),
                count: per_metric,
                limit: self.limits.max_series_per_metric,
            });
        }
        if self.metas.len() >= self.limits.max_series_total {
            return Err(IndexError::SeriesTotal {
                metric: key.name.clone(),
                count: self.metas.len(),
                limit: self.limits.max_series_total,
            });
        }
        Ok(self.insert_new(key.clone(), kind, interval, ts))
    }

    /// Metadata of a series.
    pub fn meta(&self, id: SeriesId) -> Option<&SeriesMeta> {
        self.metas.get(id as usize)
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.metas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metas.is_empty()
    }

    /// Names of metrics last seen at or after `since`, sorted.
    pub fn metric_names(&self, since: i64) -> Vec<String> {
        self.metrics
            .iter()
            .filter(|(_, m)| m.last_seen >= since)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every series of a metric, by id.
    pub fn series_for_metric(&self, name: &str) -> Vec<SeriesMeta> {
        self.metrics
            .get(name)
            .map(|e| {
                e.series
                    .iter()
                    .map(|id| self.metas[id as usize].clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every distinct tag on a metric's series, sorted.
    pub fn tags_for_metric(&self, name: &str) -> Vec<String> {
        self.metrics
            .get(name)
            .map(|e| e.tags.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The series of a metric that carry exactly this tag.
    pub fn series_with_tag(&self, metric: &str, tag: &str) -> RoaringBitmap {
        self.metrics
            .get(metric)
            .and_then(|e| e.tags.get(tag).cloned())
            .unwrap_or_default()
    }

    /// Every series of a metric, as a bitmap.
    pub fn series_ids(&self, metric: &str) -> RoaringBitmap {
        self.metrics
            .get(metric)
            .map(|e| e.series.clone())
            .unwrap_or_default()
    }
}

/// A pending write of the index to disk (see [`SeriesIndex::prepare_persist`]).
#[derive(Debug)]
pub struct IndexPersist {
    dir: PathBuf,
    ids: RoaringBitmap,
    /// The new series records, in id order.
    records: Vec<SeriesRecord>,
    /// Every metric name with its last-seen time, sorted by name.
    seen: Vec<(String, i64)>,
}

impl IndexPersist {
    /// Appends the new series records to `series.log` (fsync'd; a failed append is cut back so the log
    /// never keeps a torn record in its middle) and rewrites `metrics.bin`. On failure, gives back the ids.
    pub fn write(self) -> Result<(), (RoaringBitmap, StorageError)> {
        let mut log_bytes = Vec::new();
        for rec in &self.records {
            let payload = postcard::to_allocvec(rec).expect("a series record always serializes");
            log_bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            log_bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
            log_bytes.extend_from_slice(&payload);
        }
        let metrics_bytes =
            postcard::to_allocvec(&self.seen).expect("metric names always serialize");
        let log = self.dir.join("series.log");
        if !log_bytes.is_empty() {
            let res = (|| {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)?;
                let len = f.metadata()?.len();
                let r = f.write_all(&log_bytes).and_then(|_| f.sync_data());
                if r.is_err() {
                    let _ = f.set_len(len);
                }
                r
            })();
            if let Err(e) = res {
                return Err((self.ids, io_err(&log, e)));
            }
        }
        crate::block::write_atomic(&self.dir.join("metrics.bin"), &metrics_bytes)
            .map_err(|e| (RoaringBitmap::new(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::TagSet;

    fn key(name: &str, tags: &[&str]) -> SeriesKey {
        SeriesKey::new(name, TagSet::parse(tags.iter().copied(), 100, 200).unwrap())
    }

    fn small_limits(per_metric: usize, total: usize) -> Limits {
        Limits {
            max_series_per_metric: per_metric,
            max_series_total: total,
            ..Limits::default()
        }
    }

    #[test]
    fn resolve_lookup_and_tags() {
        let mut idx = SeriesIndex::new(Limits::default());
        let a = idx
            .resolve(&key("m", &["host:a", "env:x"]), MetricKind::Gauge, 10, 100)
            .unwrap();
        let b = idx
            .resolve(&key("m", &["host:b", "env:x"]), MetricKind::Gauge, 10, 200)
            .unwrap();
        let c = idx
            .resolve(&key("n", &["host:a"]), MetricKind::Count, 10, 50)
            .unwrap();
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(
            idx.resolve(&key("m", &["env:x", "host:a"]), MetricKind::Gauge, 10, 300)
                .unwrap(),
            a
        );
        assert_eq!(idx.tags_for_metric("m"), ["env:x", "host:a", "host:b"]);
        assert_eq!(
            idx.series_with_tag("m", "env:x").iter().collect::<Vec<_>>(),
            [a, b]
        );
        assert_eq!(
            idx.series_with_tag("m", "host:b")
                .iter()
                .collect::<Vec<_>>(),
            [b]
        );
        assert!(idx.series_with_tag("n", "env:x").is_empty());
        assert_eq!(idx.metric_names(0), ["m", "n"]);
        assert_eq!(idx.metric_names(100), ["m"]);
        assert_eq!(idx.series_for_metric("n")[0].kind, MetricKind::Count);
        assert!(idx.series_for_metric("zzz").is_empty());
    }

    #[test]
    fn limits_reject_new_series_only() {
        let mut idx = SeriesIndex::new(small_limits(2, 3));
        idx.resolve(&key("m", &["a"]), MetricKind::Gauge, 0, 0)
            .unwrap();
        idx.resolve(&key("m", &["b"]), MetricKind::Gauge, 0, 0)
            .unwrap();
        let e = idx
            .resolve(&key("m", &["c"]), MetricKind::Gauge, 0, 0)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "metric \"m\" has 2 series; the limit max_series_per_metric is 2"
        );
        // Existing series still resolve.
        assert_eq!(
            idx.resolve(&key("m", &["b"]), MetricKind::Gauge, 0, 0),
            Ok(1)
        );
        idx.resolve(&key("n", &["a"]), MetricKind::Gauge, 0, 0)
            .unwrap();
        let e = idx
            .resolve(&key("o", &["a"]), MetricKind::Gauge, 0, 0)
            .unwrap_err();
        assert_eq!(e.reason(), "max_series_total");
        assert!(e.to_string().contains("max_series_total is 3"), "{e}");
        let e = idx
            .resolve(&key("m", &["a"]), MetricKind::Distribution, 0, 0)
            .unwrap_err();
        assert_eq!(e.reason(), "kind_mismatch");
        assert_eq!(idx.len(), 3);
    }

    #[test]
    fn persist_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = SeriesIndex::open(dir.path(), Limits::default()).unwrap();
        idx.resolve(&key("m", &["a"]), MetricKind::Gauge, 10, 100)
            .unwrap();
        idx.resolve(&key("n", &["b"]), MetricKind::Count, 10, 200)
            .unwrap();
        idx.persist().unwrap();
        idx.resolve(&key("m", &["a"]), MetricKind::Count, 60, 300)
            .unwrap();
        idx.resolve(&key("m", &["c"]), MetricKind::Count, 60, 300)
            .unwrap();
        idx.persist().unwrap();
        drop(idx);
        // A torn tail is cut.
        let log = dir.path().join("series.log");
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let idx = SeriesIndex::open(dir.path(), Limits::default()).unwrap();
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.lookup(&key("m", &["c"])), Some(2));
        let m = idx.meta(0).unwrap();
        assert_eq!((m.kind, m.interval), (MetricKind::Count, 60));
        assert_eq!(idx.metric_names(250), ["m"]);
        assert_eq!(idx.tags_for_metric("m"), ["a", "c"]);
    }
}
