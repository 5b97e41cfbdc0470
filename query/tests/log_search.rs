//! Log search end to end below HTTP: query text → `parse_search` → the real on-disk log store → the number
//! of matching records, over the fixed corpus of `golden/log_search.json`, for every construct of SPEC §6.
//! The same file drives `tests/e2e/test_log_search.py` through the real binary.

use serde::Deserialize;
use sightline_model::LogRecord;
use sightline_query::logsearch::parse_search;
use sightline_storage::{LogReader, LogSearch, LogStore, SortOrder};

#[path = "../src/test_util.rs"]
mod test_util;

const T0: i64 = 1_700_000_000_000_000_000;

#[derive(Deserialize)]
struct Golden {
    corpus: Vec<Doc>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Doc {
    message: String,
    status: String,
    service: String,
    host: String,
    source: String,
    tags: Vec<String>,
    attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Case {
    query: Option<String>,
    count: Option<usize>,
}

fn golden() -> Golden {
    serde_json::from_str(include_str!("golden/log_search.json"))
        .expect("golden/log_search.json parses")
}

fn records(g: &Golden) -> Vec<LogRecord> {
    g.corpus
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut r = LogRecord::new(T0 + i as i64 * 1_000_000_000, d.message.clone());
            r.status = d.status.clone();
            r.service = Some(d.service.clone());
            r.host = Some(d.host.clone());
            r.source = Some(d.source.clone());
            r.tags = d.tags.clone();
            r.normalize_tags();
            r.attributes = d.attributes.clone();
            r
        })
        .collect()
}

fn count(store: &LogStore, q: &str) -> usize {
    let expr = parse_search(q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
    let page = store
        .search(&LogSearch {
            expr,
            from_ns: T0,
            to_ns: T0 + 3_600_000_000_000,
            order: SortOrder::Desc,
            limit: 1000,
            after: None,
        })
        .unwrap_or_else(|e| panic!("{q:?}: {e}"));
    page.hits.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_counts() {
    let g = golden();
    let (_dir, s) = test_util::log_store_with(records(&g)).await;
    let cases: Vec<(&str, usize)> = g
        .cases
        .iter()
        .filter_map(|c| Some((c.query.as_deref()?, c.count?)))
        .collect();
    let mut failures = Vec::new();
    for (q, want) in &cases {
        let got = count(&s, q);
        if got != *want {
            failures.push(format!("{q:?}: expected {want}, got {got}"));
        }
    }
    assert!(cases.len() >= 40, "{} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
