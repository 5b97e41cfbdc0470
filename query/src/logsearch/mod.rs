//! The Datadog log and span search syntax (SPEC §6): [`parse_search`] turns query text into a
//! [`SearchExpr`]; [`display`] prints one back as query text (for the UI and for round-trip tests).
//!
//! Choices beyond the Datadog documentation:
//! - `*` as a whole term is [`SearchExpr::All`]; `a *` is `a`, `a OR *` is `*`; `-*` stays `Not(All)`.
//! - A backslash makes any following character literal (not only the documented special ones). Inside quotes
//!   only `\"` and `\\` are escapes; any other backslash is kept.
//! - `&&`, `||`, `!` are not operators: they are ordinary characters of a word (escape them to be safe).
//! - An identifier directly followed by `(` is a function call: `CIDR(@attr, net[, net…])`, name
//!   case-insensitive; any other name is an error (write `foo (bar)` for the word and a group). Several
//!   networks give an `Or` of `Cidr` terms; a bare key (`CIDR(host, …)`) targets `Key`.
//! - Spans: a term's span covers its text without a leading `-`/`NOT`; the terms of a `key:(a OR b)` group
//!   each span their own value (`a`, `b`), not the key; every term of a `CIDR(…)` spans the whole call.
//! - A free-text word starting with `@` must be `@attr:value` (write `\@word` for the word itself).
//! - Runs of `*` in a wildcard collapse to one (`a**b` is `a*b`, `**` is `*`).

pub mod matcher;
mod parser;
#[cfg(test)]
mod tests;

pub use matcher::matches;
pub use parser::parse_search;

use sightline_model::{Matcher, Number, RangeEnd, SearchExpr, Target, WildPart};

/// Deepest nesting of parentheses, groups and negations accepted, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 100;

/// Prints a search as query text that [`parse_search`] parses back to the same tree (spans aside), escaping
/// whatever needs it. Explicit `AND` is never printed (juxtaposition is AND); groups like `key:(a OR b)`
/// print as `key:a OR key:b`.
pub fn display(expr: &SearchExpr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr);
    out
}

/// Sets every span in the tree to `0..0`, to compare trees parsed from different text.
pub fn clear_spans(expr: &mut SearchExpr) {
    match expr {
        SearchExpr::All => {}
        SearchExpr::And(items) | SearchExpr::Or(items) => items.iter_mut().for_each(clear_spans),
        SearchExpr::Not(inner) => clear_spans(inner),
        SearchExpr::Term(t) => t.span = Default::default(),
    }
}

fn write_expr(out: &mut String, expr: &SearchExpr) {
    match expr {
        SearchExpr::All => out.push('*'),
        SearchExpr::Term(t) => write_term(out, &t.target, &t.matcher),
        SearchExpr::Not(inner) => {
            out.push('-');
            write_grouped(out, inner, |e| {
                matches!(e, SearchExpr::And(_) | SearchExpr::Or(_))
            });
        }
        SearchExpr::And(items) if items.is_empty() => out.push('*'),
        SearchExpr::And(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_grouped(out, item, |e| {
                    matches!(e, SearchExpr::And(_) | SearchExpr::Or(_))
                });
            }
        }
        SearchExpr::Or(items) if items.is_empty() => out.push_str("-*"),
        SearchExpr::Or(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(" OR ");
                }
                write_grouped(out, item, |e| matches!(e, SearchExpr::Or(_)));
            }
        }
    }
}

fn write_grouped(out: &mut String, expr: &SearchExpr, needs_parens: impl Fn(&SearchExpr) -> bool) {
    if needs_parens(expr) {
        out.push('(');
        write_expr(out, expr);
        out.push(')');
    } else {
        write_expr(out, expr);
    }
}

/// Where escaped text goes: decides which characters need a backslash.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// A free-text word (`:` would make it a key; `AND`/`OR`/`NOT` would be operators).
    Word,
    /// A key or attribute path before `:`.
    Key,
    /// A value after `key:` (`:` is literal there).
    Value,
}

fn escape(out: &mut String, s: &str, place: Place, at_start: bool) {
    if place == Place::Word && at_start && matches!(s, "AND" | "OR" | "NOT") {
        out.push('\\');
    }
    for (i, c) in s.chars().enumerate() {
        let first = at_start && i == 0;
        let special = c.is_whitespace()
            || matches!(c, '(' | ')' | '"' | '\\' | '*' | '?')
            || (c == ':' && place != Place::Value)
            || (first && matches!(c, '-' | '@' | '>' | '<' | '[' | '{'));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Plain numbers as Rust prints them (shortest text that parses back exactly); durations in the largest unit
/// that keeps at most three decimals and converts back to the same nanoseconds (`100ms`, `1.5s`), else `ns`.
fn write_number(out: &mut String, n: &Number) {
    if !n.duration {
        out.push_str(&n.value.to_string());
        return;
    }
    const UNITS: [(&str, f64); 5] = [
        ("h", 3600e9),
        ("m", 60e9),
        ("s", 1e9),
        ("ms", 1e6),
        ("us", 1e3),
    ];
    for (unit, factor) in UNITS {
        let scaled = n.value / factor;
        if scaled.abs() >= 1.0 && (scaled * 1000.0).fract() == 0.0 && scaled * factor == n.value {
            out.push_str(&scaled.to_string());
            out.push_str(unit);
            return;
        }
    }
    out.push_str(&n.value.to_string());
    out.push_str("ns");
}

fn write_term(out: &mut String, target: &Target, matcher: &Matcher) {
    if let Matcher::Cidr(net) = matcher {
        out.push_str("CIDR(");
        match target {
            Target::Attr(p) => {
                out.push('@');
                out.push_str(p);
            }
            Target::Key(k) => out.push_str(k),
            Target::Message => out.push_str("message"),
            Target::Any => out.push('*'),
        }
        out.push_str(", ");
        out.push_str(net);
        out.push(')');
        return;
    }
    let place = match target {
        Target::Message => Place::Word,
        Target::Any => {
            out.push_str("*:");
            Place::Value
        }
        Target::Key(k) => {
            escape(out, k, Place::Key, true);
            out.push(':');
            Place::Value
        }
        Target::Attr(p) => {
            out.push('@');
            escape(out, p, Place::Key, false);
            out.push(':');
            Place::Value
        }
    };
    match matcher {
        Matcher::Exact(s) => escape(out, s, place, true),
        Matcher::Phrase(s) => {
            out.push('"');
            for c in s.chars() {
                if matches!(c, '"' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        Matcher::Wildcard(parts) => {
            for (i, part) in parts.iter().enumerate() {
                match part {
                    WildPart::Lit(s) => escape(out, s, place, i == 0),
                    WildPart::Star => out.push('*'),
                    WildPart::One => out.push('?'),
                }
            }
        }
        Matcher::Compare(op, n) => {
            out.push_str(match op {
                sightline_model::CmpOp::Gt => ">",
                sightline_model::CmpOp::Ge => ">=",
                sightline_model::CmpOp::Lt => "<",
                sightline_model::CmpOp::Le => "<=",
            });
            write_number(out, n);
        }
        Matcher::Range(low, high) => {
            match low {
                RangeEnd::Open => out.push_str("[*"),
                RangeEnd::Inclusive(n) => {
                    out.push('[');
                    write_number(out, n);
                }
                RangeEnd::Exclusive(n) => {
                    out.push('{');
                    write_number(out, n);
                }
            }
            out.push_str(" TO ");
            match high {
                RangeEnd::Open => out.push_str("*]"),
                RangeEnd::Inclusive(n) => {
                    write_number(out, n);
                    out.push(']');
                }
                RangeEnd::Exclusive(n) => {
                    write_number(out, n);
                    out.push('}');
                }
            }
        }
        Matcher::Exists => out.push('*'),
        Matcher::Cidr(_) => {}
    }
}
