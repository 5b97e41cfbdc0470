//! One trace as a tree (`GET /api/ui/traces/{trace_id}`, SPEC §4): spans linked to their parents, children
//! sorted by start, each span's self time, and the critical path.
//!
//! - A span whose parent is not in the trace (or is itself, or is part of a parent cycle) becomes an extra
//!   root flagged `orphan: true`.
//! - Spans with the same span id appear once (the earliest start, then the longest, is kept).
//! - A span nested deeper than [`MAX_TREE_DEPTH`] is cut from its parent and shown as a root flagged
//!   `detached: true` (so hostile input cannot exhaust the stack while building or printing the tree).
//! - `self_time` = duration minus the union of the children's intervals, each clipped to the parent.
//! - Critical path (Jaeger's algorithm): from every root, the longest first, walk back from the span's end:
//!   the child (clipped to the parent) that ends last at or before that point is on the path (and is walked
//!   the same way), then the child ending last at or before that child's start, and so on.
//!
//! Times are integer nanoseconds; ids lower-case hex.

use serde_json::{json, Map, Value};
use sightline_model::{hex, SpanRecord};
use std::collections::{BTreeSet, HashMap};

/// Deepest nesting shown as a tree; deeper spans are detached into roots.
pub const MAX_TREE_DEPTH: usize = 256;

/// How a span came to be a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RootKind {
    /// No parent id.
    Root,
    /// Its parent is missing from the trace, is itself, or is part of a cycle.
    Orphan,
    /// Cut from a parent nested too deep.
    Detached,
}

struct Tree {
    spans: Vec<SpanRecord>,
    children: Vec<Vec<usize>>,
    roots: Vec<(usize, RootKind)>,
    self_time: Vec<i64>,
    on_path: Vec<bool>,
}

/// The trace response body (without `logs`) for the spans of one trace, in any order, duplicates allowed;
/// `None` when there are none.
pub fn trace_tree(trace_id: &[u8; 16], spans: Vec<SpanRecord>) -> Option<Value> {
    if spans.is_empty() {
        return None;
    }
    let t = Tree::build(spans);
    let start = t.spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = t
        .spans
        .iter()
        .map(SpanRecord::end_ns)
        .max()
        .unwrap_or(start);
    let services: BTreeSet<&str> = t.spans.iter().map(|s| s.service.as_str()).collect();
    let roots: Vec<Value> = t.roots.iter().map(|&(i, k)| t.node(i, k)).collect();
    Some(json!({
        "trace_id": hex(trace_id),
        "span_count": t.spans.len(),
        "start": start,
        "duration": end.saturating_sub(start),
        "services": services,
        "roots": roots,
    }))
}

impl Tree {
    fn build(mut spans: Vec<SpanRecord>) -> Tree {
        // One span per id: the earliest start, then the longest.
        spans.sort_by(|a, b| {
            (a.span_id, a.start_ns, b.duration_ns).cmp(&(b.span_id, b.start_ns, a.duration_ns))
        });
        spans.dedup_by(|later, kept| later.span_id == kept.span_id);
        // Stable order for everything below: by start, then id.
        spans.sort_by_key(|s| (s.start_ns, s.span_id));
        let n = spans.len();
        let index: HashMap<[u8; 8], usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        let mut parent: Vec<Option<usize>> = vec![None; n];
        let mut roots = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            match s.parent_id {
                None => roots.push((i, RootKind::Root)),
                Some(p) => match index.get(&p) {
                    Some(&j) if j != i => parent[i] = Some(j),
                    _ => roots.push((i, RootKind::Orphan)),
                },
            }
        }
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        // Walk from the roots, detaching spans nested too deep; spans never reached sit in parent cycles: the
        // earliest of each cycle is cut from its parent and becomes an orphan root.
        let mut reached = vec![false; n];
        let mut next_root = 0;
        let mut next_unreached = 0;
        loop {
            while next_root < roots.len() {
                let (r, _) = roots[next_root];
                next_root += 1;
                let mut stack = vec![(r, 0usize)];
                reached[r] = true;
                while let Some((i, depth)) = stack.pop() {
                    let kids = std::mem::take(&mut children[i]);
                    let mut kept = Vec::with_capacity(kids.len());
                    for c in kids {
                        if reached[c] {
                            continue;
                        }
                        reached[c] = true;
                        if depth + 1 >= MAX_TREE_DEPTH {
                            roots.push((c, RootKind::Detached));
                        } else {
                            kept.push(c);
                            stack.push((c, depth + 1));
                        }
                    }
                    children[i] = kept;
                }
            }
            while next_unreached < n && reached[next_unreached] {
                next_unreached += 1;
            }
            if next_unreached == n {
                break;
            }
            let i = next_unreached;
            if let Some(p) = parent[i] {
                children[p].retain(|&c| c != i);
            }
            roots.push((i, RootKind::Orphan));
        }
        for kids in &mut children {
            kids.sort_unstable();
        }
        roots.sort_by(|a, b| {
            let (x, y) = (&spans[a.0], &spans[b.0]);
            (x.start_ns, std::cmp::Reverse(x.duration_ns), a.0).cmp(&(
                y.start_ns,
                std::cmp::Reverse(y.duration_ns),
                b.0,
            ))
        });
        let self_time = (0..n)
            .map(|i| self_time(&spans[i], children[i].iter().map(|&c| &spans[c])))
            .collect();
        let mut t = Tree {
            spans,
            children,
            roots,
            self_time,
            on_path: vec![false; n],
        };
        let mut by_length: Vec<usize> = t.roots.iter().map(|r| r.0).collect();
        by_length.sort_by_key(|&i| std::cmp::Reverse(t.spans[i].duration_ns));
        for r in by_length {
            t.critical_path(r);
        }
        t
    }

    /// A child's interval clipped to its parent `p`, if any of it lies inside.
    fn clipped(&self, p: usize, c: usize) -> Option<(i64, i64)> {
        let (ps, pe) = (self.spans[p].start_ns, self.spans[p].end_ns());
        let (cs, ce) = (self.spans[c].start_ns, self.spans[c].end_ns());
        let (s, e) = (cs.max(ps), ce.min(pe));
        (s <= e).then_some((s, e))
    }

    /// Marks span `i` and, walking back from its end, the children on its critical path.
    fn critical_path(&mut self, i: usize) {
        self.on_path[i] = true;
        let mut kids: Vec<(i64, i64, usize)> = self.children[i]
            .iter()
            .filter_map(|&c| self.clipped(i, c).map(|(s, e)| (e, s, c)))
            .collect();
        // Last to end first; among equal ends the earliest start (the longest).
        kids.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut t = self.spans[i].end_ns();
        for (end, start, c) in kids {
            if end <= t {
                self.critical_path(c);
                t = start;
            }
        }
    }

    fn node(&self, i: usize, kind: RootKind) -> Value {
        let s = &self.spans[i];
        let mut m = Map::new();
        m.insert("span_id".into(), json!(hex(&s.span_id)));
        m.insert("parent_id".into(), json!(s.parent_id.map(|p| hex(&p))));
        m.insert("service".into(), json!(s.service));
        m.insert("name".into(), json!(s.name));
        m.insert("resource".into(), json!(s.resource));
        m.insert("start".into(), json!(s.start_ns));
        m.insert("duration".into(), json!(s.duration_ns));
        m.insert("self_time".into(), json!(self.self_time[i]));
        m.insert("error".into(), json!(s.error));
        m.insert("on_critical_path".into(), json!(self.on_path[i]));
        m.insert("kind".into(), json!(s.kind.as_str()));
        if !s.status_message.is_empty() {
            m.insert("status_message".into(), json!(s.status_message));
        }
        for (k, v) in [("host", &s.host), ("env", &s.env), ("version", &s.version)] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        match kind {
            RootKind::Root => {}
            RootKind::Orphan => {
                m.insert("orphan".into(), json!(true));
            }
            RootKind::Detached => {
                m.insert("detached".into(), json!(true));
            }
        }
        m.insert("attributes".into(), Value::Object(s.attributes.clone()));
        m.insert(
            "resource_attributes".into(),
            Value::Object(s.resource_attributes.clone()),
        );
        let mut events: Vec<_> = s.events.iter().collect();
        events.sort_by_key(|e| e.ts_ns);
        m.insert(
            "events".into(),
            Value::Array(
                events
                    .into_iter()
                    .map(|e| json!({"timestamp": e.ts_ns, "name": e.name, "attributes": e.attributes}))
                    .collect(),
            ),
        );
        if !s.links.is_empty() {
            m.insert(
                "links".into(),
                Value::Array(
                    s.links
                        .iter()
                        .map(|l| {
                            json!({"trace_id": hex(&l.trace_id), "span_id": hex(&l.span_id),
                                   "attributes": l.attributes})
                        })
                        .collect(),
                ),
            );
        }
        let children: Vec<Value> = self.children[i]
            .iter()
            .map(|&c| self.node(c, RootKind::Root))
            .collect();
        m.insert("children".into(), Value::Array(children));
        Value::Object(m)
    }
}

/// The span's duration minus the union of its children's intervals clipped to it.
fn self_time<'a>(p: &SpanRecord, children: impl Iterator<Item = &'a SpanRecord>) -> i64 {
    let (ps, pe) = (p.start_ns, p.end_ns());
    let mut iv: Vec<(i64, i64)> = children
        .map(|c| (c.start_ns.max(ps), c.end_ns().min(pe)))
        .filter(|(s, e)| s < e)
        .collect();
    iv.sort_unstable();
    let mut covered = 0i64;
    let mut cur: Option<(i64, i64)> = None;
    for (s, e) in iv {
        match &mut cur {
            Some((_, ce)) if s <= *ce => *ce = (*ce).max(e),
            _ => {
                if let Some((a, b)) = cur {
                    covered = covered.saturating_add(b - a);
                }
                cur = Some((s, e));
            }
        }
    }
    if let Some((a, b)) = cur {
        covered = covered.saturating_add(b - a);
    }
    (p.duration_ns.max(0) - covered).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: [u8; 16] = [7; 16];

    fn id(i: u8) -> [u8; 8] {
        [0, 0, 0, 0, 0, 0, 0, i]
    }

    fn sp(i: u8, parent: Option<u8>, start: i64, duration: i64) -> SpanRecord {
        SpanRecord::new(
            TRACE,
            id(i),
            parent.map(id),
            "svc",
            &format!("op{i}"),
            start,
            duration,
        )
    }

    /// `(span number, depth, self_time, on_critical_path, orphan)` of every node, depth first.
    fn flatten(v: &Value) -> Vec<(u8, usize, i64, bool, bool)> {
        fn walk(n: &Value, depth: usize, out: &mut Vec<(u8, usize, i64, bool, bool)>) {
            let id = u8::from_str_radix(&n["span_id"].as_str().unwrap()[14..], 16).unwrap();
            out.push((
                id,
                depth,
                n["self_time"].as_i64().unwrap(),
                n["on_critical_path"].as_bool().unwrap(),
                n["orphan"].as_bool().unwrap_or(false),
            ));
            for c in n["children"].as_array().unwrap() {
                walk(c, depth + 1, out);
            }
        }
        let mut out = Vec::new();
        for r in v["roots"].as_array().unwrap() {
            walk(r, 0, &mut out);
        }
        out
    }

    fn check(spans: Vec<SpanRecord>, want: &[(u8, usize, i64, bool, bool)]) -> Value {
        let v = trace_tree(&TRACE, spans).expect("a tree");
        assert_eq!(flatten(&v), want, "{v:#}");
        v
    }

    #[test]
    fn nested_trace() {
        // 1 [0,100): 2 [10,40) with 4 [15,25); 3 [50,90) with 5 [55,60) and 6 [70,85).
        let v = check(
            vec![
                sp(6, Some(3), 70, 15),
                sp(1, None, 0, 100),
                sp(3, Some(1), 50, 40),
                sp(2, Some(1), 10, 30),
                sp(5, Some(3), 55, 5),
                sp(4, Some(2), 15, 10),
            ],
            &[
                (1, 0, 30, true, false),
                (2, 1, 20, true, false),
                (4, 2, 10, true, false),
                (3, 1, 20, true, false),
                (5, 2, 5, true, false),
                (6, 2, 15, true, false),
            ],
        );
        assert_eq!(v["trace_id"], json!(hex(&TRACE)));
        assert_eq!(v["span_count"], json!(6));
        assert_eq!(v["start"], json!(0));
        assert_eq!(v["duration"], json!(100));
        assert_eq!(v["services"], json!(["svc"]));
        let root = &v["roots"][0];
        assert_eq!(root["parent_id"], Value::Null);
        assert_eq!(root["children"][0]["parent_id"], json!("0000000000000001"));
        assert_eq!(root["kind"], json!("internal"));
        assert!(root.get("links").is_none());
    }

    #[test]
    fn overlapping_children_and_the_critical_path() {
        // 1 [0,100): 2 [0,60), 3 [10,80), 4 [70,90), 5 [85,95), 6 [90,120) runs past the parent.
        // Walking back from 100: 6 ends at 100 once clipped → on; then before 90: 5 ends 95 (no), 4 ends 90 → on;
        // before 70: 3 ends 80 (no), 2 ends 60 → on.
        check(
            vec![
                sp(1, None, 0, 100),
                sp(2, Some(1), 0, 60),
                sp(3, Some(1), 10, 70),
                sp(4, Some(1), 70, 20),
                sp(5, Some(1), 85, 10),
                sp(6, Some(1), 90, 30),
            ],
            &[
                (1, 0, 0, true, false),
                (2, 1, 60, true, false),
                (3, 1, 70, false, false),
                (4, 1, 20, true, false),
                (5, 1, 10, false, false),
                (6, 1, 30, true, false),
            ],
        );
    }

    #[test]
    fn self_time_with_gaps() {
        // 1 [0,100): children [10,20), [15,30), [50,60) cover 30; a child before the parent does not count.
        check(
            vec![
                sp(1, None, 0, 100),
                sp(2, Some(1), 10, 10),
                sp(3, Some(1), 15, 15),
                sp(4, Some(1), 50, 10),
                sp(5, Some(1), -20, 10),
            ],
            &[
                (1, 0, 70, true, false),
                (5, 1, 10, false, false),
                (2, 1, 10, false, false),
                (3, 1, 15, true, false),
                (4, 1, 10, true, false),
            ],
        );
    }

    #[test]
    fn orphans_duplicates_and_cycles() {
        check(
            vec![
                sp(1, None, 0, 50),
                sp(2, Some(1), 5, 10),
                // The same span twice.
                sp(2, Some(1), 5, 10),
                // Its parent never arrived.
                sp(3, Some(9), 20, 10),
                sp(4, Some(3), 22, 2),
                // A span that is its own parent, and a two-span cycle.
                sp(5, Some(5), 30, 1),
                sp(6, Some(7), 40, 5),
                sp(7, Some(6), 41, 1),
            ],
            &[
                (1, 0, 40, true, false),
                (2, 1, 10, true, false),
                (3, 0, 8, true, true),
                (4, 1, 2, true, false),
                (5, 0, 1, true, true),
                (6, 0, 4, true, true),
                (7, 1, 1, true, false),
            ],
        );
    }

    #[test]
    fn deep_chains_are_detached() {
        let n = MAX_TREE_DEPTH + 10;
        let mut spans = Vec::new();
        for i in 0..n {
            let mut s = sp(0, None, i as i64, (2 * n - i) as i64);
            s.span_id = (i as u64 + 1).to_be_bytes();
            s.parent_id = (i > 0).then(|| (i as u64).to_be_bytes());
            spans.push(s);
        }
        let v = trace_tree(&TRACE, spans).unwrap();
        let roots = v["roots"].as_array().unwrap();
        assert_eq!(roots.len(), 2);
        assert_eq!(roots[1]["detached"], json!(true));
        assert_eq!(v["span_count"], json!(n));
    }

    #[test]
    fn empty_trace() {
        assert!(trace_tree(&TRACE, Vec::new()).is_none());
    }
}
