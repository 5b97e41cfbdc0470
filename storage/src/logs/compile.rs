//! Compiles the schema-free search AST (`sightline_model::SearchExpr`, SPEC §6) into a tantivy query over
//! the fields of [`super::schema`].

use super::schema::{ip_term, words, LogFields};
use crate::StorageError;
use sightline_model::{CmpOp, Matcher, RangeEnd, SearchExpr, SearchTerm, Target, WildPart};
use std::net::IpAddr;
use std::ops::Bound;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, PhraseQuery, Query, RangeQuery,
    RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::Term;

type Q = Box<dyn Query>;

fn bad(term: &SearchTerm, msg: impl std::fmt::Display) -> StorageError {
    StorageError::BadQuery(format!("{msg} at position {}", term.span.start))
}

/// The tantivy query of a search.
pub fn compile(f: &LogFields, e: &SearchExpr) -> Result<Q, StorageError> {
    Ok(match e {
        SearchExpr::All => Box::new(AllQuery),
        SearchExpr::And(xs) => {
            let mut clauses = Vec::with_capacity(xs.len());
            for x in xs {
                clauses.push(match x {
                    SearchExpr::Not(inner) => (Occur::MustNot, compile(f, inner)?),
                    other => (Occur::Must, compile(f, other)?),
                });
            }
            // Only negations: they exclude from everything.
            if clauses.iter().all(|(o, _)| *o == Occur::MustNot) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Box::new(BooleanQuery::new(clauses))
        }
        SearchExpr::Or(xs) => {
            let mut clauses = Vec::with_capacity(xs.len());
            for x in xs {
                clauses.push((Occur::Should, compile(f, x)?));
            }
            Box::new(BooleanQuery::new(clauses))
        }
        SearchExpr::Not(x) => Box::new(BooleanQuery::new(vec![
            (Occur::Must, Box::new(AllQuery)),
            (Occur::MustNot, compile(f, x)?),
        ])),
        SearchExpr::Term(t) => term(f, t)?,
    })
}

fn any_of(qs: Vec<Q>) -> Q {
    match qs.len() {
        0 => Box::new(EmptyQuery),
        1 => qs.into_iter().next().expect("one query"),
        _ => Box::new(BooleanQuery::new(
            qs.into_iter().map(|q| (Occur::Should, q)).collect(),
        )),
    }
}

fn raw(field: Field, value: &str) -> Q {
    Box::new(TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    ))
}

/// Words of free text as a query on `message`: one word is a term, several a phrase, none matches nothing.
fn message_words(f: &LogFields, text: &str) -> Q {
    let terms: Vec<Term> = words(text)
        .iter()
        .map(|w| Term::from_field_text(f.message, w))
        .collect();
    match terms.len() {
        0 => Box::new(EmptyQuery),
        1 => Box::new(TermQuery::new(
            terms.into_iter().next().expect("one term"),
            IndexRecordOption::Basic,
        )),
        _ => Box::new(PhraseQuery::new(terms)),
    }
}

/// Escapes regex meta characters of a literal (appending to `out`).
pub fn regex_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~\"".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The regex of a wildcard pattern (anchored: tantivy regexes match whole terms).
fn wildcard_regex(prefix: &str, parts: &[WildPart], lowercase: bool) -> String {
    let mut re = String::new();
    regex_escape(prefix, &mut re);
    for p in parts {
        match p {
            WildPart::Lit(s) if lowercase => regex_escape(&s.to_lowercase(), &mut re),
            WildPart::Lit(s) => regex_escape(s, &mut re),
            WildPart::Star => re.push_str(".*"),
            WildPart::One => re.push('.'),
        }
    }
    re
}

fn regex(t: &SearchTerm, field: Field, pattern: &str) -> Result<Q, StorageError> {
    RegexQuery::from_pattern(pattern, field)
        .map(|q| Box::new(q) as Q)
        .map_err(|e| bad(t, format!("invalid wildcard pattern: {e}")))
}

fn number_term(f: &LogFields, path: &str, v: f64) -> Term {
    let mut t = Term::from_field_json_path(f.attrs, path, true);
    t.append_type_and_fast_value(v);
    t
}

fn numeric_range(f: &LogFields, path: &str, lo: Bound<f64>, hi: Bound<f64>) -> Q {
    if matches!((lo, hi), (Bound::Unbounded, Bound::Unbounded)) {
        return Box::new(ExistsQuery::new(format!("attrs.{path}"), false));
    }
    let lo = lo.map(|v| number_term(f, path, v));
    let hi = hi.map(|v| number_term(f, path, v));
    Box::new(RangeQuery::new(lo, hi))
}

/// The range of `@n:>v` and friends.
pub fn compare_bounds(op: CmpOp, v: f64) -> (Bound<f64>, Bound<f64>) {
    match op {
        CmpOp::Gt => (Bound::Excluded(v), Bound::Unbounded),
        CmpOp::Ge => (Bound::Included(v), Bound::Unbounded),
        CmpOp::Lt => (Bound::Unbounded, Bound::Excluded(v)),
        CmpOp::Le => (Bound::Unbounded, Bound::Included(v)),
    }
}

/// One end of a `[a TO b]` range.
pub fn bound(end: RangeEnd) -> Bound<f64> {
    match end {
        RangeEnd::Open => Bound::Unbounded,
        RangeEnd::Inclusive(n) => Bound::Included(n.value),
        RangeEnd::Exclusive(n) => Bound::Excluded(n.value),
    }
}

/// The `ips` term range (inclusive) of a network `a.b.c.d/n` or `v6/n` at `path`; `None` if it is not a network.
pub fn cidr_range(path: &str, net: &str) -> Option<(String, String)> {
    let (addr, len) = net.split_once('/')?;
    let addr: IpAddr = addr.trim().parse().ok()?;
    let len: u32 = len.trim().parse().ok()?;
    let (base, bits) = match addr {
        IpAddr::V4(v4) if len <= 32 => (u128::from(v4.to_ipv6_mapped()), 96 + len),
        IpAddr::V6(v6) if len <= 128 => (u128::from(v6), len),
        _ => return None,
    };
    let host_mask = if bits >= 128 { 0 } else { u128::MAX >> bits };
    let lo = base & !host_mask;
    let hi = lo | host_mask;
    let as_ip = |v: u128| IpAddr::V6(std::net::Ipv6Addr::from(v));
    Some((ip_term(path, as_ip(lo)), ip_term(path, as_ip(hi))))
}

/// The reserved attributes `*:` looks at.
fn any_fields(f: &LogFields) -> [Field; 5] {
    [f.service, f.host, f.source, f.trace_id, f.span_id]
}

fn term(f: &LogFields, t: &SearchTerm) -> Result<Q, StorageError> {
    match (&t.target, &t.matcher) {
        (Target::Message, Matcher::Exact(w) | Matcher::Phrase(w)) => Ok(message_words(f, w)),
        (Target::Message, Matcher::Wildcard(parts)) => {
            regex(t, f.message, &wildcard_regex("", parts, true))
        }
        (Target::Message, _) => Err(bad(t, "free text cannot be compared")),
        // `*:` = the message, or the whole value of a reserved attribute (not `status`), a tag (the part after
        // the first `:`) or an attribute leaf (after the first `=` of its `path=value` term).
        (Target::Any, Matcher::Exact(w) | Matcher::Phrase(w)) => {
            let mut lit = String::new();
            regex_escape(w, &mut lit);
            let mut qs = vec![message_words(f, w)];
            qs.extend(any_fields(f).into_iter().map(|field| raw(field, w)));
            qs.push(regex(t, f.tags, &format!("([^:]*:)?{lit}"))?);
            qs.push(regex(t, f.attr_kv, &format!("[^=]*={lit}"))?);
            Ok(any_of(qs))
        }
        (Target::Any, Matcher::Wildcard(parts)) => {
            let pat = wildcard_regex("", parts, false);
            let mut qs = vec![regex(t, f.message, &wildcard_regex("", parts, true))?];
            for field in any_fields(f) {
                qs.push(regex(t, field, &pat)?);
            }
            qs.push(regex(t, f.tags, &format!("([^:]*:)?{pat}"))?);
            qs.push(regex(t, f.attr_kv, &format!("[^=]*={pat}"))?);
            Ok(any_of(qs))
        }
        (Target::Any, _) => Err(bad(t, "\"*:\" takes a word, a phrase or a wildcard")),
        (Target::Key(k), m) => key_term(f, t, k, m),
        (Target::Attr(path), m) => attr_term(f, t, path, m),
    }
}

fn key_term(f: &LogFields, t: &SearchTerm, key: &str, m: &Matcher) -> Result<Q, StorageError> {
    if let Some(field) = f.reserved(key) {
        // Statuses are stored lower-case (`status:ERROR` finds errors).
        let norm = |v: &str| {
            if key == "status" {
                v.to_lowercase()
            } else {
                v.to_string()
            }
        };
        return match m {
            Matcher::Exact(v) | Matcher::Phrase(v) => Ok(raw(field, &norm(v))),
            Matcher::Wildcard(parts) => {
                regex(t, field, &wildcard_regex("", parts, key == "status"))
            }
            Matcher::Exists => Ok(Box::new(ExistsQuery::new(key.to_string(), false))),
            _ => Err(bad(
                t,
                format!("\"{key}\" values are text, not numbers or addresses"),
            )),
        };
    }
    let prefix = format!("{key}:");
    match m {
        Matcher::Exact(v) | Matcher::Phrase(v) => Ok(raw(f.tags, &format!("{prefix}{v}"))),
        Matcher::Wildcard(parts) => regex(t, f.tags, &wildcard_regex(&prefix, parts, false)),
        Matcher::Exists => regex(
            t,
            f.tags,
            &wildcard_regex(&prefix, &[WildPart::Star], false),
        ),
        _ => Err(bad(
            t,
            format!("tag \"{key}\" values are text; use @{key} for a numeric attribute"),
        )),
    }
}

fn attr_term(f: &LogFields, t: &SearchTerm, path: &str, m: &Matcher) -> Result<Q, StorageError> {
    let kv = format!("{path}=");
    Ok(match m {
        Matcher::Exact(v) | Matcher::Phrase(v) => {
            let mut qs = vec![raw(f.attr_kv, &format!("{kv}{v}"))];
            // A number also matches numerically (`@code:200` finds 200 and 200.0).
            if let Ok(n) = v.parse::<f64>() {
                if n.is_finite() {
                    qs.push(numeric_range(
                        f,
                        path,
                        Bound::Included(n),
                        Bound::Included(n),
                    ));
                }
            }
            any_of(qs)
        }
        Matcher::Wildcard(parts) => regex(t, f.attr_kv, &wildcard_regex(&kv, parts, false))?,
        Matcher::Compare(op, n) => {
            let (lo, hi) = compare_bounds(*op, n.value);
            numeric_range(f, path, lo, hi)
        }
        Matcher::Range(lo, hi) => numeric_range(f, path, bound(*lo), bound(*hi)),
        Matcher::Exists => Box::new(ExistsQuery::new(format!("attrs.{path}"), true)),
        Matcher::Cidr(net) => {
            let (lo, hi) = cidr_range(path, net)
                .ok_or_else(|| bad(t, format!("invalid network \"{net}\"")))?;
            Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_text(f.ips, &lo)),
                Bound::Included(Term::from_field_text(f.ips, &hi)),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges() {
        fn check(net: &str, expected: Option<(&str, &str)>) {
            let got = cidr_range("ip", net);
            let want = expected.map(|(a, b)| (format!("ip={a}"), format!("ip={b}")));
            assert_eq!(got, want, "{net}");
        }
        check(
            "10.0.0.0/8",
            Some((
                "00000000000000000000ffff0a000000",
                "00000000000000000000ffff0affffff",
            )),
        );
        check(
            "10.1.2.3/32",
            Some((
                "00000000000000000000ffff0a010203",
                "00000000000000000000ffff0a010203",
            )),
        );
        check(
            "0.0.0.0/0",
            Some((
                "00000000000000000000ffff00000000",
                "00000000000000000000ffffffffffff",
            )),
        );
        check(
            "2001:db8::/32",
            Some((
                "20010db8000000000000000000000000",
                "20010db8ffffffffffffffffffffffff",
            )),
        );
        check(
            "::/0",
            Some((
                "00000000000000000000000000000000",
                "ffffffffffffffffffffffffffffffff",
            )),
        );
        check("10.0.0.0/33", None);
        check("10.0.0.0", None);
        check("nope/8", None);
    }

    #[test]
    fn wildcard_regexes_escape_literals() {
        use WildPart::*;
        assert_eq!(
            wildcard_regex("env:", &[Lit("a.b".into()), Star, One], false),
            "env:a\\.b.*."
        );
        assert_eq!(
            wildcard_regex("", &[Lit("ReTr".into()), Star], true),
            "retr.*"
        );
    }
}
