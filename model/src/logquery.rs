//! The schema-free AST of the Datadog log and span search syntax (SPEC §6). `sightline_query::logsearch`
//! parses text into it; the log store compiles it to index queries and the live tail matches records with it.

use serde::{Deserialize, Serialize};

/// A byte range `[start, end)` in the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SearchExpr {
    /// Matches every record: the empty query and `*`.
    All,
    /// Every child matches (implicit AND, `AND`).
    And(Vec<SearchExpr>),
    /// Some child matches (`OR`, `key:(a OR b)`).
    Or(Vec<SearchExpr>),
    /// The child does not match (`-x`, `NOT x`); records without the attribute match.
    Not(Box<SearchExpr>),
    Term(SearchTerm),
}

/// One condition on one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchTerm {
    pub target: Target,
    pub matcher: Matcher,
    /// Where the term is in the query text.
    pub span: Span,
}

/// What a term looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// Free text: whole words of the message, case-insensitive.
    Message,
    /// `*:term`: the message and every attribute and tag.
    Any,
    /// `key:…` where key is not `@`-prefixed: a reserved attribute (`service`, `host`, `status`, `source`,
    /// `trace_id`, `span_id`) or a tag key (`env`, `version`, anything else). The key as written, lower-cased.
    Key(String),
    /// `@a.b.c:…`: an attribute path (without the `@`).
    Attr(String),
}

/// A piece of a wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WildPart {
    /// Literal text, unescaped.
    Lit(String),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// A comparison operator of `@n:>100` and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
}

/// A number in a comparison or range: the value as written, durations (`100ms`, `1.5s`, `2m`, `1h`, `250us`,
/// `10ns`) converted to nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Number {
    pub value: f64,
    /// Whether the text carried a duration unit.
    pub duration: bool,
}

/// One end of a range: `[` / `]` include it, `{` / `}` exclude it, `*` leaves it open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum RangeEnd {
    Open,
    Inclusive(Number),
    Exclusive(Number),
}

/// How a term matches its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Matcher {
    /// An exact value (unescaped): a whole word of the message for `Target::Message`, the whole value for
    /// keys and attributes (case-sensitive). Numeric attributes also match a value that parses as their number.
    Exact(String),
    /// A quoted phrase: consecutive words of the message, or the whole value of a key/attribute.
    Phrase(String),
    /// A pattern with at least one `Star` or `One` (outside quotes).
    Wildcard(Vec<WildPart>),
    /// `@n:>100`.
    Compare(CmpOp, Number),
    /// `@n:[400 TO 499]`, `{…}`, mixed brackets, `*` for an open end.
    Range(RangeEnd, RangeEnd),
    /// `@a:*`: the target exists.
    Exists,
    /// `CIDR(@path, 10.0.0.0/8)`: the IP value lies in the network (v4 or v6). The target is the path's.
    Cidr(String),
}

/// A parse error with the byte position in the query text where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} at position {position}")]
pub struct SearchParseError {
    pub position: usize,
    pub message: String,
}
