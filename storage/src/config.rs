//! Configuration of the metric store (`[storage]` in the server's config file) and of the log store
//! (`[storage.logs]`).

use crate::logs::LogStoreConfig;
use crate::spans::SpanStoreConfig;
use crate::wal::WalConfig;
use serde::{Deserialize, Serialize};

/// How the metric store keeps, flushes, compacts and expires data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Write-ahead log: fsync policy (`always` acknowledges only after fsync, group-committed; `interval`
    /// fsyncs every `fsync_interval_ms`), segment size and back-pressure threshold.
    pub wal: WalConfig,
    /// Seconds between flushes of the in-memory head to Parquet blocks (the write-ahead log is truncated
    /// after each flush).
    pub flush_interval_secs: u64,
    /// Flush early once the in-memory head holds more than this many points.
    pub flush_max_points: usize,
    /// Length of one time block, in seconds: each Parquet file holds points of one block.
    pub block_secs: i64,
    /// Days of metrics kept; blocks that end before this are deleted.
    pub retention_days: u32,
    /// Seconds between compaction passes, which merge the several files of one block into one.
    pub compaction_interval_secs: u64,
    /// The log store (`[storage.logs]`).
    pub logs: LogStoreConfig,
    /// The span store (`[storage.spans]`).
    pub spans: SpanStoreConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            wal: WalConfig::default(),
            flush_interval_secs: 600,
            flush_max_points: 5_000_000,
            block_secs: 7200,
            retention_days: 15,
            compaction_interval_secs: 3600,
            logs: LogStoreConfig::default(),
            spans: SpanStoreConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_unknown_keys() {
        let cfg: StorageConfig = serde_json::from_str(r#"{"retention_days": 3}"#).unwrap();
        assert_eq!(
            cfg,
            StorageConfig {
                retention_days: 3,
                ..StorageConfig::default()
            }
        );
        assert_eq!(cfg.block_secs, 7200);
        let err = serde_json::from_str::<StorageConfig>(r#"{"retention": 3}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `retention`"),
            "{err}"
        );
    }
}
