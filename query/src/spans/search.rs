//! Span search pages (`POST /api/v2/spans/events/search`): the spans of a time range that match a filter,
//! sorted by start (`timestamp` oldest first, `-timestamp` newest first), `limit` at a time.
//!
//! Pages are cut by a cursor, the sort key of the last span of the page: (start, span id, trace id). The next
//! page holds the spans strictly after it in the sort order, so spans written meanwhile never shift a page
//! boundary: a new span shows up on a later page if it sorts after the cursor, never twice, and nothing
//! already listed is skipped. Spans with an equal key (the same span written twice) are listed once.
//! A scan keeps only the best `limit + 1` spans, so memory is bounded by the page size.

use super::matcher::SpanFilter;
use sightline_model::{hex, parse_hex, SpanRecord};
use sightline_storage::{SortOrder, SpanReader, StorageError};
use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// Where a page ends: the sort key of its last span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpanCursor {
    pub start_ns: i64,
    pub span_id: [u8; 8],
    pub trace_id: [u8; 16],
}

impl SpanCursor {
    pub fn of(s: &SpanRecord) -> SpanCursor {
        SpanCursor {
            start_ns: s.start_ns,
            span_id: s.span_id,
            trace_id: s.trace_id,
        }
    }

    /// Opaque text form for APIs: 64 hex digits.
    pub fn encode(&self) -> String {
        format!(
            "{:016x}{}{}",
            self.start_ns as u64,
            hex(&self.span_id),
            hex(&self.trace_id)
        )
    }

    pub fn decode(s: &str) -> Option<SpanCursor> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        Some(SpanCursor {
            start_ns: u64::from_str_radix(&s[..16], 16).ok()? as i64,
            span_id: parse_hex::<8>(&s[16..32])?,
            trace_id: parse_hex::<16>(&s[32..])?,
        })
    }
}

/// A span search.
#[derive(Debug)]
pub struct SpanSearch<'a> {
    pub filter: &'a SpanFilter,
    /// Spans starting in `[from_ns, to_ns)`.
    pub from_ns: i64,
    pub to_ns: i64,
    pub order: SortOrder,
    /// At least 1.
    pub limit: usize,
    /// Start strictly after this key, in `order`.
    pub after: Option<SpanCursor>,
}

/// A page; `next` is set when more spans follow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanPage {
    pub spans: Vec<SpanRecord>,
    pub next: Option<SpanCursor>,
}

/// Runs one page of a search.
pub fn search(reader: &dyn SpanReader, req: &SpanSearch<'_>) -> Result<SpanPage, StorageError> {
    let limit = req.limit.max(1);
    let keep = limit + 1;
    let asc = req.order == SortOrder::Asc;
    // Narrow the scan to the cursor's side.
    let (mut from, mut to) = (req.from_ns, req.to_ns);
    if let Some(c) = req.after {
        if asc {
            from = from.max(c.start_ns);
        } else {
            to = to.min(c.start_ns.saturating_add(1));
        }
    }
    if from >= to {
        return Ok(SpanPage::default());
    }
    // The best `keep` spans so far; the worst is the last (asc) or the first (desc).
    let mut best: BTreeMap<SpanCursor, SpanRecord> = BTreeMap::new();
    reader.scan(from, to, &mut |s| {
        let key = SpanCursor::of(s);
        let after_cursor = match req.after {
            None => true,
            Some(c) if asc => key > c,
            Some(c) => key < c,
        };
        if !after_cursor || best.contains_key(&key) {
            return ControlFlow::Continue(());
        }
        if best.len() >= keep {
            let worst = if asc {
                best.last_key_value()
            } else {
                best.first_key_value()
            };
            let better = worst.is_some_and(|(w, _)| if asc { key < *w } else { key > *w });
            if !better {
                return ControlFlow::Continue(());
            }
        }
        if req.filter.matches(s) {
            best.insert(key, s.clone());
            if best.len() > keep {
                if asc {
                    best.pop_last();
                } else {
                    best.pop_first();
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    let mut spans: Vec<SpanRecord> = best.into_values().collect();
    if !asc {
        spans.reverse();
    }
    let next = if spans.len() > limit {
        spans.truncate(limit);
        spans.last().map(SpanCursor::of)
    } else {
        None
    };
    Ok(SpanPage { spans, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logsearch::parse_search;
    use sightline_storage::MemorySpans;

    fn sp(i: u8, start: i64) -> SpanRecord {
        let svc = if i % 2 == 1 { "odd" } else { "even" };
        SpanRecord::new([i; 16], [0, 0, 0, 0, 0, 0, 0, i], None, svc, "op", start, 1)
    }

    fn ids(p: &SpanPage) -> Vec<u8> {
        p.spans.iter().map(|s| s.span_id[7]).collect()
    }

    /// Pages through a search, returning the span numbers of every page.
    fn pages(store: &MemorySpans, query: &str, order: SortOrder, limit: usize) -> Vec<Vec<u8>> {
        let filter = SpanFilter::new(&parse_search(query).unwrap()).unwrap();
        let mut after = None;
        let mut out = Vec::new();
        loop {
            let page = search(
                store,
                &SpanSearch {
                    filter: &filter,
                    from_ns: 0,
                    to_ns: 1000,
                    order,
                    limit,
                    after,
                },
            )
            .unwrap();
            out.push(ids(&page));
            match page.next {
                Some(c) => after = Some(c),
                None => return out,
            }
        }
    }

    #[test]
    fn pages_in_both_orders() {
        // Two spans share a start (ties broken by span id); 9 is outside the range; 3 is written twice.
        let store = MemorySpans::new(vec![
            sp(1, 10),
            sp(2, 30),
            sp(3, 20),
            sp(4, 20),
            sp(5, 50),
            sp(6, 40),
            sp(3, 20),
            sp(9, 5000),
        ]);
        assert_eq!(
            pages(&store, "*", SortOrder::Asc, 2),
            [vec![1, 3], vec![4, 2], vec![6, 5]]
        );
        assert_eq!(
            pages(&store, "*", SortOrder::Desc, 4),
            [vec![5, 6, 2, 4], vec![3, 1]]
        );
        assert_eq!(
            pages(&store, "service:odd", SortOrder::Desc, 1),
            [vec![5], vec![3], vec![1]]
        );
        assert_eq!(
            pages(&store, "service:none", SortOrder::Asc, 3),
            [Vec::<u8>::new()]
        );
    }

    #[test]
    fn cursor_is_stable_under_concurrent_writes() {
        let store = MemorySpans::new((1..=6).map(|i| sp(i, i64::from(i) * 10)).collect());
        let filter = SpanFilter::all();
        let req = |after| SpanSearch {
            filter: &filter,
            from_ns: 0,
            to_ns: 1000,
            order: SortOrder::Desc,
            limit: 2,
            after,
        };
        let first = search(&store, &req(None)).unwrap();
        assert_eq!(ids(&first), [6, 5]);
        // New spans arrive: one newer than everything listed, one inside the remaining range, one tying the
        // cursor's start with a smaller id (sorts after it in descending order).
        store.push(sp(7, 70));
        store.push(sp(8, 35));
        store.push(sp(0, 50));
        let second = search(&store, &req(first.next)).unwrap();
        assert_eq!(ids(&second), [0, 4]);
        let third = search(&store, &req(second.next)).unwrap();
        assert_eq!(ids(&third), [8, 3]);
        let c = third.next.unwrap();
        assert_eq!(SpanCursor::decode(&c.encode()), Some(c));
        assert_eq!(SpanCursor::decode("zz"), None);
        assert_eq!(SpanCursor::decode(&"g".repeat(64)), None);
        let neg = SpanCursor { start_ns: -5, ..c };
        assert_eq!(SpanCursor::decode(&neg.encode()), Some(neg));
    }
}
