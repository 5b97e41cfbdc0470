//! In-memory evaluation of a log search against one record, with exactly the semantics of the log store's
//! index (`sightline_storage::logs::compile` over `sightline_storage::logs::schema`): the live tail filters
//! acknowledged records with it instead of querying the index.
//!
//! What the index does, mirrored here:
//! - free text: the message's words (runs of letters, digits and `_`, lower-cased character by character;
//!   words of 255 bytes or more are not indexed but keep their position), several words a phrase;
//! - wildcards are anchored patterns over whole terms where `*` and `?` never match a line feed (regex `.`);
//!   literal parts are lower-cased for the message and `status`, case-sensitive elsewhere;
//! - `key:value` on reserved fields and `key:value` tags, `@path` on the `path=text` term of every
//!   attribute leaf; raw terms longer than tantivy's token limit are not indexed;
//! - numbers, ranges and existence read the attributes' fast columns, which stop 20 levels deep;
//! - CIDR compares the `ips` terms (`path=<hex>`) lexicographically, as the term range does;
//! - a term the index cannot compile (e.g. `CIDR` on a tag, a comparison on free text) matches nothing; the
//!   live tail rejects such searches up front.

use serde_json::{Map, Value};
use sightline_model::{LogRecord, Matcher, SearchExpr, SearchTerm, Target, WildPart};
use sightline_storage::logs::compile::{bound, cidr_range, compare_bounds};
use sightline_storage::logs::schema::{ip_term, is_word_char, leaf_text, words};
use std::cell::OnceCell;
use std::net::IpAddr;
use std::ops::Bound;

/// Words of this many bytes or more are dropped by the message analyzer.
const MAX_WORD_BYTES: usize = 255;
/// Longest raw term tantivy indexes (`tantivy::tokenizer::MAX_TOKEN_LEN`).
const MAX_TERM_BYTES: usize = u16::MAX as usize - 5;
/// Nesting levels (objects and arrays) the attributes' fast columns record.
const FAST_DEPTH_LIMIT: usize = 20;

/// Whether `r` is one of the records the log store's search for `expr` returns.
pub fn matches(expr: &SearchExpr, r: &LogRecord) -> bool {
    eval(expr, &Rec::new(r))
}

/// One attribute leaf, as the index sees it.
struct Leaf<'a> {
    path: String,
    value: &'a Value,
    /// Recorded in the fast columns (numbers, ranges, existence).
    fast: bool,
}

/// A record with its derived terms, computed on first use.
struct Rec<'a> {
    r: &'a LogRecord,
    /// Indexed message words with their positions.
    words: OnceCell<Vec<(usize, String)>>,
    leaves: OnceCell<Vec<Leaf<'a>>>,
}

impl<'a> Rec<'a> {
    fn new(r: &'a LogRecord) -> Self {
        Rec {
            r,
            words: OnceCell::new(),
            leaves: OnceCell::new(),
        }
    }

    fn words(&self) -> &[(usize, String)] {
        self.words.get_or_init(|| message_words(&self.r.message))
    }

    fn leaves(&self) -> &[Leaf<'a>] {
        self.leaves.get_or_init(|| {
            let mut out = Vec::new();
            walk_attrs(&self.r.attributes, &mut out);
            out
        })
    }

    /// The values of the reserved fields that are set (`status` aside: `*:` does not look at it).
    fn reserved_values(&self) -> impl Iterator<Item = &'a str> {
        let r = self.r;
        [&r.service, &r.host, &r.source, &r.trace_id, &r.span_id]
            .into_iter()
            .filter_map(|v| v.as_deref())
    }

    /// Every value `*:` looks at: reserved values, tag values (after the first `:`), attribute leaf texts.
    fn values(&self) -> impl Iterator<Item = std::borrow::Cow<'a, str>> + '_ {
        let tags = self
            .r
            .tags
            .iter()
            .map(|t| t.split_once(':').map_or(t.as_str(), |(_, v)| v));
        self.reserved_values()
            .chain(tags)
            .map(std::borrow::Cow::Borrowed)
            .chain(
                self.leaves()
                    .iter()
                    .map(|l| std::borrow::Cow::Owned(leaf_text(l.value))),
            )
            .filter(|v| indexed(v))
    }
}

/// Whether a raw term is short enough to be indexed.
fn indexed(term: &str) -> bool {
    term.len() <= MAX_TERM_BYTES
}

/// Lower-cases like tantivy's `LowerCaser`: ASCII fast path, else character by character.
fn lower(w: &str) -> String {
    if w.is_ascii() {
        w.to_ascii_lowercase()
    } else {
        w.chars().flat_map(char::to_lowercase).collect()
    }
}

/// The indexed words of a message with their token positions (dropped long words leave a gap).
fn message_words(text: &str) -> Vec<(usize, String)> {
    text.split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .enumerate()
        .filter(|(_, w)| w.len() < MAX_WORD_BYTES)
        .map(|(pos, w)| (pos, lower(w)))
        .collect()
}

/// Every non-null attribute leaf with its dotted path; array elements share their array's path.
fn walk_attrs<'a>(attrs: &'a Map<String, Value>, out: &mut Vec<Leaf<'a>>) {
    fn walk<'a>(path: &mut String, v: &'a Value, depth: usize, out: &mut Vec<Leaf<'a>>) {
        match v {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    let len = path.len();
                    path.push('.');
                    path.push_str(k);
                    walk(path, v, depth + 1, out);
                    path.truncate(len);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(path, v, depth + 1, out)),
            leaf => out.push(Leaf {
                path: path.clone(),
                value: leaf,
                fast: depth <= FAST_DEPTH_LIMIT,
            }),
        }
    }
    let mut path = String::new();
    for (k, v) in attrs {
        path.clear();
        path.push_str(k);
        walk(&mut path, v, 1, out);
    }
}

fn eval(e: &SearchExpr, rec: &Rec<'_>) -> bool {
    match e {
        SearchExpr::All => true,
        SearchExpr::And(xs) => xs.iter().all(|x| eval(x, rec)),
        SearchExpr::Or(xs) => xs.iter().any(|x| eval(x, rec)),
        SearchExpr::Not(x) => !eval(x, rec),
        SearchExpr::Term(t) => term(t, rec),
    }
}

fn term(t: &SearchTerm, rec: &Rec<'_>) -> bool {
    match (&t.target, &t.matcher) {
        (Target::Message, Matcher::Exact(w) | Matcher::Phrase(w)) => message_phrase(rec, w),
        (Target::Message, Matcher::Wildcard(parts)) => message_wildcard(rec, parts),
        (Target::Any, Matcher::Exact(w) | Matcher::Phrase(w)) => {
            message_phrase(rec, w) || (indexed(w) && rec.values().any(|v| v == w.as_str()))
        }
        (Target::Any, Matcher::Wildcard(parts)) => {
            let g = Glob::new("", parts, false);
            message_wildcard(rec, parts) || rec.values().any(|v| g.matches(&v))
        }
        (Target::Key(k), m) => key_term(rec, k, m),
        (Target::Attr(path), m) => attr_term(rec, path, m),
        // The index refuses these.
        (Target::Message | Target::Any, _) => false,
    }
}

/// Free text: one word is a term, several a phrase (consecutive positions), none matches nothing.
fn message_phrase(rec: &Rec<'_>, text: &str) -> bool {
    let query = words(text);
    let Some((first, rest)) = query.split_first() else {
        return false;
    };
    let doc = rec.words();
    doc.iter().filter(|(_, w)| w == first).any(|(pos, _)| {
        rest.iter().enumerate().all(|(i, q)| {
            let want = pos + 1 + i;
            doc.binary_search_by_key(&want, |(p, _)| *p)
                .is_ok_and(|at| doc[at].1 == *q)
        })
    })
}

fn message_wildcard(rec: &Rec<'_>, parts: &[WildPart]) -> bool {
    let g = Glob::new("", parts, true);
    rec.words().iter().any(|(_, w)| g.matches(w))
}

fn key_term(rec: &Rec<'_>, key: &str, m: &Matcher) -> bool {
    let r = rec.r;
    let reserved: Option<Option<&str>> = match key {
        "status" => Some(Some(r.status.as_str())),
        "service" => Some(r.service.as_deref()),
        "host" => Some(r.host.as_deref()),
        "source" => Some(r.source.as_deref()),
        "trace_id" => Some(r.trace_id.as_deref()),
        "span_id" => Some(r.span_id.as_deref()),
        _ => None,
    };
    if let Some(value) = reserved {
        let is_status = key == "status";
        return match m {
            Matcher::Exact(v) | Matcher::Phrase(v) => {
                let want = if is_status {
                    v.to_lowercase()
                } else {
                    v.clone()
                };
                value.is_some_and(|x| indexed(x) && x == want)
            }
            Matcher::Wildcard(parts) => {
                let g = Glob::new("", parts, is_status);
                value.is_some_and(|x| indexed(x) && g.matches(x))
            }
            Matcher::Exists => value.is_some(),
            _ => false,
        };
    }
    let prefix = format!("{key}:");
    let tags = r.tags.iter().filter(|t| indexed(t));
    match m {
        Matcher::Exact(v) | Matcher::Phrase(v) => {
            let want = format!("{prefix}{v}");
            tags.into_iter().any(|t| *t == want)
        }
        Matcher::Wildcard(parts) => {
            let g = Glob::new(&prefix, parts, false);
            tags.into_iter().any(|t| g.matches(t))
        }
        Matcher::Exists => {
            let g = Glob::new(&prefix, &[WildPart::Star], false);
            tags.into_iter().any(|t| g.matches(t))
        }
        _ => false,
    }
}

fn attr_term(rec: &Rec<'_>, path: &str, m: &Matcher) -> bool {
    let leaves = rec.leaves();
    let at_path = || leaves.iter().filter(move |l| l.path == path);
    let kv_terms = || {
        at_path()
            .map(|l| format!("{}={}", l.path, leaf_text(l.value)))
            .filter(|t| indexed(t))
    };
    match m {
        Matcher::Exact(v) | Matcher::Phrase(v) => {
            let want = format!("{path}={v}");
            if kv_terms().any(|t| t == want) {
                return true;
            }
            // A number also matches numerically (`@code:200` finds 200 and 200.0).
            match v.parse::<f64>() {
                Ok(n) if n.is_finite() => {
                    numeric(rec, path, Bound::Included(n), Bound::Included(n))
                }
                _ => false,
            }
        }
        Matcher::Wildcard(parts) => {
            let g = Glob::new(&format!("{path}="), parts, false);
            kv_terms().any(|t| g.matches(&t))
        }
        Matcher::Compare(op, n) => {
            let (lo, hi) = compare_bounds(*op, n.value);
            numeric(rec, path, lo, hi)
        }
        Matcher::Range(lo, hi) => numeric(rec, path, bound(*lo), bound(*hi)),
        Matcher::Exists => {
            let below = format!("{path}.");
            leaves
                .iter()
                .any(|l| l.fast && (l.path == path || l.path.starts_with(&below)))
        }
        Matcher::Cidr(net) => {
            let Some((lo, hi)) = cidr_range(path, net) else {
                return false;
            };
            leaves.iter().any(|l| {
                leaf_text(l.value).parse::<IpAddr>().is_ok_and(|ip| {
                    let t = ip_term(&l.path, ip);
                    lo <= t && t <= hi
                })
            })
        }
    }
}

/// A numeric range on the fast columns at `path`; open at both ends it is "a value of any type exists there".
fn numeric(rec: &Rec<'_>, path: &str, lo: Bound<f64>, hi: Bound<f64>) -> bool {
    let mut fast = rec.leaves().iter().filter(|l| l.fast && l.path == path);
    if matches!((lo, hi), (Bound::Unbounded, Bound::Unbounded)) {
        return fast.next().is_some();
    }
    fast.filter_map(|l| match l.value {
        Value::Number(n) => n.as_f64(),
        _ => None,
    })
    .any(|x| {
        let above = match lo {
            Bound::Unbounded => true,
            Bound::Included(v) => x >= v,
            Bound::Excluded(v) => x > v,
        };
        let below = match hi {
            Bound::Unbounded => true,
            Bound::Included(v) => x <= v,
            Bound::Excluded(v) => x < v,
        };
        above && below
    })
}

/// One step of a compiled wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Char(char),
    /// `?`: one character other than a line feed.
    One,
    /// `*`: any run of characters without a line feed.
    Star,
}

/// An anchored wildcard pattern (literal prefix, then the parts), like the index's regex.
pub(crate) struct Glob(Vec<Step>);

impl Glob {
    pub(crate) fn new(prefix: &str, parts: &[WildPart], lowercase: bool) -> Glob {
        let mut steps: Vec<Step> = prefix.chars().map(Step::Char).collect();
        for p in parts {
            match p {
                WildPart::Lit(s) if lowercase => {
                    steps.extend(s.to_lowercase().chars().map(Step::Char))
                }
                WildPart::Lit(s) => steps.extend(s.chars().map(Step::Char)),
                WildPart::Star => steps.push(Step::Star),
                WildPart::One => steps.push(Step::One),
            }
        }
        Glob(steps)
    }

    /// Whether the whole of `s` matches (a set-of-states simulation: linear in `s` times the pattern).
    pub(crate) fn matches(&self, s: &str) -> bool {
        let p = &self.0;
        let mut cur = vec![false; p.len() + 1];
        let mut next = vec![false; p.len() + 1];
        cur[0] = true;
        close(p, &mut cur);
        for c in s.chars() {
            next.iter_mut().for_each(|x| *x = false);
            let mut any = false;
            for (i, step) in p.iter().enumerate() {
                if !cur[i] {
                    continue;
                }
                match *step {
                    Step::Char(x) if x == c => next[i + 1] = true,
                    Step::One if c != '\n' => next[i + 1] = true,
                    Step::Star if c != '\n' => next[i] = true,
                    _ => continue,
                }
                any = true;
            }
            if !any {
                return false;
            }
            close(p, &mut next);
            std::mem::swap(&mut cur, &mut next);
        }
        cur[p.len()]
    }
}

/// A state before a `*` also stands after it (the star may match nothing).
fn close(p: &[Step], states: &mut [bool]) {
    for i in 0..p.len() {
        if states[i] && p[i] == Step::Star {
            states[i + 1] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        use WildPart::*;
        fn check(prefix: &str, parts: &[WildPart], lowercase: bool, input: &str, want: bool) {
            let g = Glob::new(prefix, parts, lowercase);
            assert_eq!(g.matches(input), want, "{prefix} {parts:?} {input:?}");
        }
        check("", &[Lit("retr".into()), Star], true, "retrying", true);
        check("", &[Lit("RETR".into()), Star], true, "retrying", true);
        check("", &[Lit("RETR".into()), Star], false, "retrying", false);
        check(
            "",
            &[Star, Lit("nnect".into()), Star],
            false,
            "connection",
            true,
        );
        check(
            "",
            &[Lit("up".into()), One, Lit("tream".into())],
            false,
            "upstream",
            true,
        );
        check(
            "",
            &[Lit("up".into()), One, Lit("tream".into())],
            false,
            "uptream",
            false,
        );
        check("", &[Star], false, "", true);
        check("", &[Star], false, "a\nb", false);
        check("", &[One], false, "\n", false);
        check("", &[One], false, "é", true);
        check("env:", &[Star], false, "env:", true);
        check("env:", &[Star], false, "team:x", false);
        check(
            "",
            &[Star, Lit("a".into()), Star, Lit("b".into())],
            false,
            "xaxxab",
            true,
        );
        check("", &[Lit("a".into())], false, "ab", false);
    }

    #[test]
    fn message_words_keep_positions() {
        let long = "x".repeat(300);
        let got = message_words(&format!("Hello {long} WORLD"));
        assert_eq!(
            got,
            vec![(0, "hello".to_string()), (2, "world".to_string())]
        );
    }
}
