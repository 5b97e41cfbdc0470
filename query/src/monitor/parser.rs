//! The hand-written parser behind [`parse_monitor_query`]: a byte cursor over the monitor query text that
//! slices only at ASCII delimiters (so never inside a UTF-8 character) and never recurses.

use super::{Change, Comparator, EventSource, MonitorParseError, MonitorQuery, Rollup, TimeAgg};
use crate::ast::{ExprKind, SpaceAgg};

/// Longest metric monitor window and change shift: one week.
const MAX_METRIC_WINDOW_SECS: i64 = 7 * 86_400;
/// Longest `.last(…)` window of a log or trace-analytics monitor: two days (Datadog's 2880m / 48h).
const MAX_EVENTS_WINDOW_SECS: i64 = 2 * 86_400;

/// What the monitor type expects.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Metric,
    Events(EventSource),
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Metric => "metric alert",
            Kind::Events(EventSource::Logs) => "log alert",
            Kind::Events(EventSource::Spans) => "trace-analytics alert",
        }
    }
}

/// Parses the `query` of a monitor of type `kind` (`metric alert`, `query alert`, `log alert` or
/// `trace-analytics alert`). A query whose form belongs to another type is refused naming both.
pub fn parse_monitor_query(kind: &str, text: &str) -> Result<MonitorQuery, MonitorParseError> {
    let kind = match kind.trim() {
        "metric alert" | "query alert" => Kind::Metric,
        "log alert" => Kind::Events(EventSource::Logs),
        "trace-analytics alert" => Kind::Events(EventSource::Spans),
        other => {
            return Err(err(
                0,
                format!(
                    "unknown monitor type {other:?}: expected \"metric alert\", \"query alert\", \
                     \"log alert\" or \"trace-analytics alert\""
                ),
            ))
        }
    };
    let mut c = Cursor { src: text, pos: 0 };
    c.skip_ws();
    let start = c.pos;
    let name = c.ident();
    if name.is_empty() {
        return Err(c.error(&format!("expected a {} query", kind.name())));
    }
    let form = match name {
        "avg" | "sum" | "min" | "max" | "percentile" | "change" | "pct_change" => Kind::Metric,
        "logs" => Kind::Events(EventSource::Logs),
        "trace-analytics" => Kind::Events(EventSource::Spans),
        _ => {
            let expected = match kind {
                Kind::Metric => "avg, sum, min, max, percentile, change or pct_change",
                Kind::Events(EventSource::Logs) => "logs",
                Kind::Events(EventSource::Spans) => "trace-analytics",
            };
            return Err(err(
                start,
                format!("unknown monitor function {name:?}: expected {expected}"),
            ));
        }
    };
    if form != kind {
        return Err(err(
            start,
            format!(
                "{name}(…) is a {} query, not a {} query",
                form.name(),
                kind.name()
            ),
        ));
    }
    match kind {
        Kind::Metric => c.metric(name, start),
        Kind::Events(source) => c.events(source),
    }
}

fn err(position: usize, message: impl Into<String>) -> MonitorParseError {
    MonitorParseError {
        position,
        message: message.into(),
    }
}

type PResult<T> = Result<T, MonitorParseError>;

struct Cursor<'a> {
    src: &'a str,
    pos: usize,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// What is at the cursor, for messages: a word, one character or `end of query`.
    fn found(&self) -> String {
        let rest = self.rest();
        match rest.chars().next() {
            None => "end of query".to_string(),
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                    .take(40)
                    .collect();
                format!("{word:?}")
            }
            Some(c) => format!("{:?}", c.to_string()),
        }
    }

    fn error(&self, expected: &str) -> MonitorParseError {
        err(self.pos, format!("{expected}, found {}", self.found()))
    }

    fn expect(&mut self, b: u8, context: &str) -> PResult<()> {
        self.skip_ws();
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.error(&format!("expected \"{}\" {context}", b as char)))
        }
    }

    /// An identifier made of ASCII letters, digits, `_` and `-` (possibly empty).
    fn ident(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_ident_byte) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    // ---- metric monitors ----------------------------------------------------------------------------

    /// `tagg(window):query cmp n` or `change(tagg(window),shift):query cmp n`; `name` (at `start`) is read.
    fn metric(&mut self, name: &str, start: usize) -> PResult<MonitorQuery> {
        let (time_agg, window_secs, change) = match name {
            "change" | "pct_change" => {
                self.expect(b'(', &format!("after {name:?}"))?;
                self.skip_ws();
                let agg_start = self.pos;
                let agg = self.ident();
                let time_agg = time_agg(agg).ok_or_else(|| {
                    err(
                        agg_start,
                        format!(
                            "expected a time aggregation (avg, sum, min, max, percentile) inside \
                             {name}(…), found {}",
                            quoted_or_end(agg)
                        ),
                    )
                })?;
                let window = self.window_arg(agg)?;
                self.expect(
                    b',',
                    &format!("and a time shift after {agg}(…) in {name}(…)"),
                )?;
                self.skip_ws();
                let shift_start = self.pos;
                let token = self.ident();
                let shift_secs = parse_shift(token).ok_or_else(|| {
                    err(
                        shift_start,
                        format!(
                            "bad time shift {}: expected last_<n><m|h|d|w> or <n><m|h|d|w>_ago \
                             (1 minute to 1 week), e.g. last_5m",
                            quoted_or_end(token)
                        ),
                    )
                })?;
                self.expect(b')', &format!("to close {name}(…)"))?;
                let change = if name == "change" {
                    Change::Change { shift_secs }
                } else {
                    Change::PctChange { shift_secs }
                };
                (time_agg, window, Some(change))
            }
            _ => {
                let time_agg = time_agg(name)
                    .ok_or_else(|| err(start, format!("unknown monitor function {name:?}")))?;
                (time_agg, self.window_arg(name)?, None)
            }
        };
        self.expect(b':', "between the time aggregation and the metric query")?;
        let query_start = self.pos;
        let found_cmp = self.find_comparator();
        let query_end = found_cmp.map_or(self.src.len(), |(at, _, _)| at);
        let raw = &self.src[query_start..query_end];
        let parsed = crate::parser::parse(raw).map_err(|e| {
            err(
                query_start + e.pos,
                format!("in the metric query: {}", e.message),
            )
        })?;
        if let Some(second) = parsed.exprs.get(1) {
            return Err(err(
                query_start + second.span.start,
                "a monitor takes one metric query, not several separated by \",\"",
            ));
        }
        if time_agg == TimeAgg::Percentile {
            if let Some(ExprKind::Metric(m)) = parsed.exprs.first().map(|e| &e.kind) {
                if !matches!(m.space_agg, Some(SpaceAgg::Percentile(_))) {
                    let at = query_start + parsed.exprs[0].span.start;
                    return Err(err(
                        at,
                        "percentile(…) needs a percentile space aggregator such as p99: \
                         before the metric",
                    ));
                }
            }
        }
        let Some((cmp_at, comparator, cmp_len)) = found_cmp else {
            let end = self.src.trim_end().len();
            return Err(err(
                end,
                "expected a comparator (>, >=, <, <=, ==, !=) and a threshold after the metric query",
            ));
        };
        self.pos = cmp_at + cmp_len;
        let threshold = self.threshold(comparator)?;
        Ok(MonitorQuery::Metric {
            time_agg,
            window_secs,
            change,
            query: raw.trim().to_string(),
            comparator,
            threshold,
        })
    }

    /// `(last_5m)` after a time aggregation.
    fn window_arg(&mut self, agg: &str) -> PResult<i64> {
        self.expect(b'(', &format!("after {agg:?}"))?;
        self.skip_ws();
        let at = self.pos;
        let token = self.ident();
        let secs = token
            .strip_prefix("last_")
            .and_then(duration_secs)
            .filter(|s| (60..=MAX_METRIC_WINDOW_SECS).contains(s))
            .ok_or_else(|| {
                err(
                    at,
                    format!(
                        "bad window {}: expected last_<n><m|h|d|w> (1 minute to 1 week), e.g. last_5m",
                        quoted_or_end(token)
                    ),
                )
            })?;
        self.expect(b')', &format!("after the window of {agg}(…)"))?;
        Ok(secs)
    }

    /// The first comparator at the top level (outside `{}`, `()` and quotes) from the cursor on:
    /// its offset, what it is and its length.
    fn find_comparator(&self) -> Option<(usize, Comparator, usize)> {
        let bytes = self.src.as_bytes();
        let mut depth = 0usize;
        let mut quoted = false;
        let mut i = self.pos;
        while i < bytes.len() {
            let b = bytes[i];
            if quoted {
                if b == b'\\' {
                    i += 1;
                } else if b == b'"' {
                    quoted = false;
                }
            } else {
                match b {
                    b'"' => quoted = true,
                    b'{' | b'(' | b'[' => depth += 1,
                    b'}' | b')' | b']' => depth = depth.saturating_sub(1),
                    b'<' | b'>' | b'=' | b'!' if depth == 0 => {
                        if let Some((cmp, len)) = comparator_at(&bytes[i..]) {
                            return Some((i, cmp, len));
                        }
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        None
    }

    /// The threshold number after the comparator, then the end of the query.
    fn threshold(&mut self, cmp: Comparator) -> PResult<f64> {
        self.skip_ws();
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut i = self.pos;
        if matches!(bytes.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        while let Some(b) = bytes.get(i) {
            let prev = if i > 0 { bytes[i - 1] } else { 0 };
            let ok = b.is_ascii_digit()
                || *b == b'.'
                || matches!(b, b'e' | b'E')
                || (matches!(b, b'-' | b'+') && matches!(prev, b'e' | b'E'));
            if !ok {
                break;
            }
            i += 1;
        }
        let token = &self.src[start..i];
        let value = token
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && token.bytes().any(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                self.error(&format!(
                    "expected a threshold number after \"{}\"",
                    cmp.symbol()
                ))
            })?;
        self.pos = i;
        self.skip_ws();
        if self.pos < self.src.len() {
            return Err(self.error("unexpected text after the threshold"));
        }
        Ok(value)
    }

    // ---- log and trace-analytics monitors -----------------------------------------------------------

    /// `logs("…")` / `trace-analytics("…")` (name read) with its methods, comparator and threshold.
    fn events(&mut self, source: EventSource) -> PResult<MonitorQuery> {
        let func = match source {
            EventSource::Logs => "logs",
            EventSource::Spans => "trace-analytics",
        };
        self.expect(b'(', &format!("after {func:?}"))?;
        self.skip_ws();
        let lit = self.string(&format!("a quoted search inside {func}(…)"))?;
        if let Err(e) = crate::logsearch::parse_search(&lit.text) {
            return Err(err(
                lit.raw_position(e.position),
                format!("in the search: {}", e.message),
            ));
        }
        self.expect(b')', &format!("after the search of {func}(…)"))?;

        let mut indexes: Option<Vec<String>> = None;
        let mut rollup: Option<Rollup> = None;
        let mut group_by: Option<Vec<String>> = None;
        let mut window_secs: Option<i64> = None;
        loop {
            self.skip_ws();
            if self.peek() != Some(b'.') {
                break;
            }
            self.pos += 1;
            self.skip_ws();
            let name_at = self.pos;
            let name = self.ident();
            let duplicate = match name {
                "index" => indexes.is_some(),
                "rollup" => rollup.is_some(),
                "by" => group_by.is_some(),
                "last" => window_secs.is_some(),
                _ => {
                    return Err(err(
                        name_at,
                        format!(
                            "unknown method {}: expected .index(…), .rollup(…), .by(…) or .last(…)",
                            quoted_or_end(name)
                        ),
                    ))
                }
            };
            if duplicate {
                return Err(err(name_at, format!(".{name}(…) is given twice")));
            }
            if window_secs.is_some() {
                return Err(err(
                    name_at,
                    format!(".{name}(…) must come before .last(…)"),
                ));
            }
            let args = self.string_args(name)?;
            match name {
                "index" => {
                    if args.is_empty() {
                        return Err(err(name_at, ".index(…) needs at least one index name"));
                    }
                    indexes = Some(args.into_iter().map(|a| a.text).collect());
                }
                "by" => {
                    if args.is_empty() {
                        return Err(err(name_at, ".by(…) needs at least one facet"));
                    }
                    group_by = Some(args.into_iter().map(|a| a.text).collect());
                }
                "rollup" => rollup = Some(rollup_from(name_at, args)?),
                _ => {
                    let [arg] = <[Lit; 1]>::try_from(args)
                        .map_err(|_| err(name_at, ".last(…) takes one window such as \"5m\""))?;
                    let secs = duration_secs(&arg.text)
                        .filter(|s| *s >= 60 && *s <= MAX_EVENTS_WINDOW_SECS)
                        .filter(|_| !arg.text.ends_with('w'))
                        .ok_or_else(|| {
                            err(
                                arg.start,
                                format!(
                                    "bad window {:?}: expected <n>m, <n>h or <n>d (1 minute to 2 days), \
                                     e.g. \"5m\"",
                                    arg.text
                                ),
                            )
                        })?;
                    window_secs = Some(secs);
                }
            }
        }
        let Some(window_secs) = window_secs else {
            return Err(self.error("expected .last(\"<window>\") such as .last(\"5m\")"));
        };
        self.skip_ws();
        let comparator = match comparator_at(self.rest().as_bytes()) {
            Some((cmp, len)) => {
                self.pos += len;
                cmp
            }
            None => {
                return Err(self.error("expected a comparator (>, >=, <, <=, ==, !=)"));
            }
        };
        let threshold = self.threshold(comparator)?;
        Ok(MonitorQuery::Events {
            source,
            search: lit.text,
            indexes: indexes.unwrap_or_else(|| vec!["*".to_string()]),
            rollup: rollup.unwrap_or(Rollup::Count),
            group_by: group_by.unwrap_or_default(),
            window_secs,
            comparator,
            threshold,
        })
    }

    /// `( "a", "b" )` after a method name (possibly empty).
    fn string_args(&mut self, method: &str) -> PResult<Vec<Lit>> {
        self.expect(b'(', &format!("after .{method}"))?;
        let mut args = Vec::new();
        self.skip_ws();
        if self.eat(b')') {
            return Ok(args);
        }
        loop {
            self.skip_ws();
            args.push(self.string(&format!("a quoted argument of .{method}(…)"))?);
            self.skip_ws();
            if self.eat(b')') {
                return Ok(args);
            }
            if !self.eat(b',') {
                return Err(self.error(&format!("expected \",\" or \")\" in .{method}(…)")));
            }
        }
    }

    /// A double-quoted string; only `\"` and `\\` are escapes, any other backslash is kept.
    fn string(&mut self, what: &str) -> PResult<Lit> {
        let open = self.pos;
        if !self.eat(b'"') {
            return Err(self.error(&format!("expected {what}")));
        }
        let bytes = self.src.as_bytes();
        let mut text = Vec::new();
        let mut raw = Vec::new();
        let mut i = self.pos;
        loop {
            match bytes.get(i) {
                None => return Err(err(open, "unterminated quote: this \" has no closing \"")),
                Some(b'"') => break,
                Some(b'\\') if matches!(bytes.get(i + 1), Some(b'"' | b'\\')) => {
                    raw.push(i);
                    text.push(bytes[i + 1]);
                    i += 2;
                }
                Some(&b) => {
                    raw.push(i);
                    text.push(b);
                    i += 1;
                }
            }
        }
        raw.push(i);
        self.pos = i + 1;
        // Only ASCII `"` and `\` were removed, so the bytes are still UTF-8.
        let text = String::from_utf8(text).unwrap_or_default();
        Ok(Lit {
            start: open,
            text,
            raw,
        })
    }
}

/// A string literal: its unescaped text and, for each byte of it (and its end), the offset in the query.
struct Lit {
    /// Offset of the opening quote.
    start: usize,
    text: String,
    raw: Vec<usize>,
}

impl Lit {
    fn raw_position(&self, inner: usize) -> usize {
        self.raw
            .get(inner)
            .or(self.raw.last())
            .copied()
            .unwrap_or(self.start)
    }
}

fn rollup_from(name_at: usize, args: Vec<Lit>) -> PResult<Rollup> {
    let mut args = args.into_iter();
    let Some(method) = args.next() else {
        return Err(err(name_at, ".rollup(…) needs a method such as \"count\""));
    };
    let measure = args.next();
    if let Some(extra) = args.next() {
        return Err(err(
            extra.start,
            ".rollup(…) takes a method and at most one measure",
        ));
    }
    let m = method.text.as_str();
    if m == "count" {
        return match measure {
            Some(x) => Err(err(x.start, "\"count\" takes no measure")),
            None => Ok(Rollup::Count),
        };
    }
    let pct = match m {
        "median" => Some(50.0),
        _ => m
            .strip_prefix("pc")
            .filter(|d| !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|p| *p >= 1.0 && *p <= 99.0),
    };
    let known = pct.is_some() || matches!(m, "cardinality" | "avg" | "sum" | "min" | "max");
    if !known {
        return Err(err(
            method.start,
            format!(
                "unknown rollup method {m:?}: expected count, cardinality, avg, sum, min, max, median \
                 or pc1…pc99"
            ),
        ));
    }
    let Some(measure) = measure else {
        return Err(err(
            method.start,
            format!("rollup {m:?} needs a facet or measure, e.g. .rollup({m:?}, \"@duration\")"),
        ));
    };
    if measure.text.trim().is_empty() || measure.text.contains(char::is_whitespace) {
        return Err(err(
            measure.start,
            format!("bad measure {:?}: expected a facet name", measure.text),
        ));
    }
    let x = measure.text;
    Ok(match (m, pct) {
        (_, Some(p)) => Rollup::Pct(p, x),
        ("cardinality", _) => Rollup::Cardinality(x),
        ("avg", _) => Rollup::Avg(x),
        ("sum", _) => Rollup::Sum(x),
        ("min", _) => Rollup::Min(x),
        _ => Rollup::Max(x),
    })
}

fn time_agg(name: &str) -> Option<TimeAgg> {
    Some(match name {
        "avg" => TimeAgg::Avg,
        "sum" => TimeAgg::Sum,
        "min" => TimeAgg::Min,
        "max" => TimeAgg::Max,
        "percentile" => TimeAgg::Percentile,
        _ => return None,
    })
}

/// A comparator at the start of `bytes` and its length.
fn comparator_at(bytes: &[u8]) -> Option<(Comparator, usize)> {
    match bytes {
        [b'>', b'=', ..] => Some((Comparator::Ge, 2)),
        [b'<', b'=', ..] => Some((Comparator::Le, 2)),
        [b'=', b'=', ..] => Some((Comparator::Eq, 2)),
        [b'!', b'=', ..] => Some((Comparator::Ne, 2)),
        [b'>', ..] => Some((Comparator::Gt, 1)),
        [b'<', ..] => Some((Comparator::Lt, 1)),
        _ => None,
    }
}

/// `<n>(m|h|d|w)` in seconds (`5m` is 300); `None` when malformed or absurdly large.
fn duration_secs(token: &str) -> Option<i64> {
    let unit = token.bytes().last()?;
    let digits = &token[..token.len() - 1];
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let scale = match unit {
        b'm' => 60,
        b'h' => 3_600,
        b'd' => 86_400,
        b'w' => 604_800,
        _ => return None,
    };
    Some(n * scale)
}

/// A change shift: `last_5m` or `5m_ago`, 1 minute to 1 week.
fn parse_shift(token: &str) -> Option<i64> {
    token
        .strip_prefix("last_")
        .or_else(|| token.strip_suffix("_ago"))
        .and_then(duration_secs)
        .filter(|s| (60..=MAX_METRIC_WINDOW_SECS).contains(s))
}

fn quoted_or_end(token: &str) -> String {
    if token.is_empty() {
        "nothing".to_string()
    } else {
        format!("{token:?}")
    }
}
