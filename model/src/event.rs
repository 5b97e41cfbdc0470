//! DogStatsD events (`_e`) and service checks (`_sc`). Stored as log records once the log store exists.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventPriority {
    Normal,
    Low,
}

/// An event: `_e{<tlen>,<xlen>}:<title>|<text>|d:|h:|k:|p:|s:|t:|#`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub title: String,
    pub text: String,
    /// Unix seconds (`d:`), if given.
    pub timestamp: Option<i64>,
    pub hostname: Option<String>,
    pub aggregation_key: Option<String>,
    pub priority: Option<EventPriority>,
    pub source_type: Option<String>,
    /// `t:` alert type: error, warning, info or success.
    pub alert_type: Option<String>,
    pub tags: Vec<String>,
}

impl Event {
    /// An event with only a title and a text.
    pub fn new(title: impl Into<String>, text: impl Into<String>) -> Event {
        Event {
            title: title.into(),
            text: text.into(),
            timestamp: None,
            hostname: None,
            aggregation_key: None,
            priority: None,
            source_type: None,
            alert_type: None,
            tags: Vec::new(),
        }
    }
}

/// A service check: `_sc|<name>|<0-3>|d:|h:|#|m:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceCheck {
    pub name: String,
    /// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub status: u8,
    pub timestamp: Option<i64>,
    pub hostname: Option<String>,
    pub message: Option<String>,
    pub tags: Vec<String>,
}
