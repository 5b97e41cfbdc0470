//! A hand-written recursive-descent parser for the Datadog metric query language (SPEC §5). No I/O; every
//! error names the byte position and the offending input.

use crate::ast::*;
use std::fmt;

/// A syntax error at a byte position of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {}", self.pos, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Deepest nesting of parentheses and functions accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Most AST nodes (binary operators, function calls, metric terms and numbers) one query may hold, so a long
/// operator chain such as `1+1+1+…` cannot build a tree deep enough to exhaust the stack when it is planned,
/// evaluated, printed or dropped.
pub const MAX_NODES: usize = 1000;

/// Largest `timeshift()` accepted, in seconds (10 years), so shifted times stay far from overflow.
pub const MAX_TIMESHIFT_SECS: f64 = 315_360_000.0;

/// Parses a whole query (one or more comma-separated expressions).
pub fn parse(input: &str) -> Result<Query, ParseError> {
    let mut p = Parser {
        src: input,
        pos: 0,
        depth: 0,
        nodes: 0,
    };
    let mut exprs = vec![p.expr()?];
    loop {
        p.skip_ws();
        if p.eat(',') {
            exprs.push(p.expr()?);
        } else if p.at_end() {
            return Ok(Query { exprs });
        } else {
            return Err(p.error("expected an operator, \",\" or end of query"));
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
    /// AST nodes counted against [`MAX_NODES`] so far.
    nodes: usize,
}

type PResult<T> = Result<T, ParseError>;

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Characters that end a tag token in a scope.
fn ends_tag(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '{' | '}' | '(' | ')')
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Describes what is at the current position, for error messages.
    fn found(&self) -> String {
        let rest = self.rest();
        match rest.chars().next() {
            None => "end of query".to_string(),
            Some(c) if is_word_char(c) => {
                let word: String = rest
                    .chars()
                    .take_while(|c| is_word_char(*c))
                    .take(40)
                    .collect();
                format!("{word:?}")
            }
            Some(c) => format!("{:?}", c.to_string()),
        }
    }

    fn error(&self, expected: &str) -> ParseError {
        self.error_at(self.pos, format!("{expected}, found {}", self.found()))
    }

    fn error_at(&self, pos: usize, message: String) -> ParseError {
        ParseError { pos, message }
    }

    fn expect(&mut self, c: char, context: &str) -> PResult<()> {
        self.skip_ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected \"{c}\" {context}")))
        }
    }

    /// An identifier made of letters, digits and `_` (may be empty).
    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(
                self.pos,
                format!("query nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// Counts one AST node starting at `pos`; refuses the query once it holds more than [`MAX_NODES`].
    fn node(&mut self, pos: usize) -> PResult<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error_at(
                pos,
                format!("query is too complex: more than {MAX_NODES} terms and operators"),
            ));
        }
        Ok(())
    }

    // expr := sum
    fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let r = self.binary(1);
        self.depth -= 1;
        r
    }

    /// Precedence climbing over `+ -` (1) and `* /` (2), left-associative.
    fn binary(&mut self, min_prec: u8) -> PResult<Expr> {
        let mut lhs = if min_prec >= 3 {
            self.unary()?
        } else {
            self.binary(min_prec + 1)?
        };
        if min_prec >= 3 {
            return Ok(lhs);
        }
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some('+') => BinOp::Add,
                Some('-') => BinOp::Sub,
                Some('*') => BinOp::Mul,
                Some('/') => BinOp::Div,
                _ => return Ok(lhs),
            };
            if op.precedence() != min_prec {
                return Ok(lhs);
            }
            self.node(self.pos)?;
            self.pos += 1;
            let rhs = self.binary(min_prec + 1)?;
            let span = Span::new(lhs.span.start, rhs.span.end);
            lhs = Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
    }

    fn unary(&mut self) -> PResult<Expr> {
        self.skip_ws();
        let start = self.pos;
        if self.eat('-') {
            self.enter()?;
            let inner = self.unary();
            self.depth -= 1;
            let inner = inner?;
            let span = Span::new(start, inner.span.end);
            return Ok(match inner.kind {
                ExprKind::Number(n) if !n.is_sign_negative() => Expr {
                    kind: ExprKind::Number(-n),
                    span,
                },
                _ => Expr {
                    kind: ExprKind::Neg(Box::new(inner)),
                    span,
                },
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> PResult<Expr> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let mut e = self.expr()?;
                self.expect(')', "to close \"(\"")?;
                // Parentheses only group; the span still covers them for error reporting.
                e.span = Span::new(start, self.pos);
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                self.node(start)?;
                let n = self.number()?;
                Ok(Expr {
                    kind: ExprKind::Number(n),
                    span: Span::new(start, self.pos),
                })
            }
            Some(c) if c.is_ascii_alphabetic() => self.call_or_metric(),
            _ => Err(self.error("expected a metric query, a number or a function")),
        }
    }

    /// A non-negative number: digits, optional fraction, optional exponent.
    fn number(&mut self) -> PResult<f64> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut i = self.pos;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            let mut j = i + 1;
            if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                j += 1;
            }
            if j < bytes.len() && bytes[j].is_ascii_digit() {
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                i = j;
            }
        }
        let text = &self.src[start..i];
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => {
                self.pos = i;
                Ok(n)
            }
            _ => Err(self.error_at(start, format!("invalid number {text:?}"))),
        }
    }

    fn call_or_metric(&mut self) -> PResult<Expr> {
        let start = self.pos;
        let word = self.word();
        self.skip_ws();
        match self.peek() {
            Some('(') => {
                let func = Func::from_name(word)
                    .ok_or_else(|| self.error_at(start, format!("unknown function {word:?}")))?;
                self.node(start)?;
                self.pos += 1;
                self.call(func, start)
            }
            Some('.') if space_agg(word).is_some_and(|a| matches!(a, SpaceAgg::Percentile(_))) => {
                // `p99.9:` — a percentile with a fraction; anything else here is a metric name.
                let frac_start = self.pos + 1;
                let frac_len = self.src[frac_start..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(self.src.len() - frac_start);
                let colon = frac_start + frac_len;
                if frac_len > 0 && self.src[colon..].starts_with(':') {
                    let text = &self.src[start + 1..colon];
                    match text.parse::<f64>() {
                        Ok(p) if p <= 100.0 => {
                            self.pos = colon + 1;
                            self.skip_ws();
                            return self.metric_query(Some(SpaceAgg::Percentile(p)), start);
                        }
                        _ => {
                            return Err(
                                self.error_at(start, format!("invalid percentile \"p{text}\""))
                            )
                        }
                    }
                }
                self.pos = start;
                self.metric_query(None, start)
            }
            Some(':') => {
                let agg = space_agg(word).ok_or_else(|| {
                    self.error_at(start, format!("unknown space aggregator {word:?}"))
                })?;
                self.pos += 1;
                self.skip_ws();
                self.metric_query(Some(agg), start)
            }
            _ => {
                self.pos = start;
                self.metric_query(None, start)
            }
        }
    }

    fn call(&mut self, func: Func, start: usize) -> PResult<Expr> {
        let arg = self.expr()?;
        let mut params = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            if !self.eat(',') {
                return Err(self.error(&format!("expected \",\" or \")\" in {}()", func.name())));
            }
            self.skip_ws();
            params.push(self.param(func)?);
        }
        let span = Span::new(start, self.pos);
        check_params(func, &params).map_err(|m| self.error_at(start, m))?;
        Ok(Expr {
            kind: ExprKind::Call {
                func,
                arg: Box::new(arg),
                params,
            },
            span,
        })
    }

    fn param(&mut self, func: Func) -> PResult<Param> {
        let start = self.pos;
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let rest = self.rest();
                let Some(end) = rest.find(q) else {
                    return Err(self.error_at(start, "unterminated string".to_string()));
                };
                let s = &rest[..end];
                self.pos += end + 1;
                Ok(Param::Str(s.to_string()))
            }
            Some('-') => {
                self.pos += 1;
                match self.peek() {
                    Some(c) if c.is_ascii_digit() || c == '.' => Ok(Param::Number(-self.number()?)),
                    _ => Err(self.error(&format!("expected a number in {}()", func.name()))),
                }
            }
            Some(c) if c.is_ascii_digit() || c == '.' => Ok(Param::Number(self.number()?)),
            Some(c) if c.is_ascii_alphabetic() => {
                let w = self.word();
                Ok(Param::Str(w.to_string()))
            }
            _ => Err(self.error(&format!(
                "expected a number or a string in {}()",
                func.name()
            ))),
        }
    }

    fn metric_query(&mut self, space_agg: Option<SpaceAgg>, start: usize) -> PResult<Expr> {
        self.node(start)?;
        let name_start = self.pos;
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(is_word_char(c) || c == '.'))
            .unwrap_or(rest.len());
        let metric = &rest[..len];
        if metric.is_empty() || !metric.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(self.error("expected a metric name"));
        }
        if metric.ends_with('.') || metric.contains("..") {
            return Err(self.error_at(name_start, format!("invalid metric name {metric:?}")));
        }
        self.pos += len;
        let metric_span = Span::new(name_start, self.pos);
        self.skip_ws();
        let scope = if self.eat('{') {
            self.scope()?
        } else {
            Scope::All
        };
        let mut group_by = Vec::new();
        let save = self.pos;
        self.skip_ws();
        let w = self.word();
        if w.eq_ignore_ascii_case("by") {
            self.expect('{', "after \"by\"")?;
            loop {
                self.skip_ws();
                let key_start = self.pos;
                let rest = self.rest();
                let len = rest.find(ends_tag).unwrap_or(rest.len());
                if len == 0 {
                    return Err(self.error("expected a tag key in \"by {…}\""));
                }
                let key = &rest[..len];
                if key.contains(':') || key.contains('*') {
                    return Err(self.error_at(
                        key_start,
                        format!("invalid tag key {key:?} in \"by {{…}}\""),
                    ));
                }
                group_by.push(key.to_lowercase());
                self.pos += len;
                self.skip_ws();
                if self.eat('}') {
                    break;
                }
                if !self.eat(',') {
                    return Err(self.error("expected \",\" or \"}\" in \"by {…}\""));
                }
            }
        } else {
            self.pos = save;
        }
        let mut modifiers = Vec::new();
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.peek() != Some('.') {
                self.pos = save;
                break;
            }
            self.pos += 1;
            modifiers.push(self.modifier()?);
        }
        let mq = MetricQuery {
            space_agg,
            metric: metric.to_string(),
            metric_span,
            scope,
            group_by,
            modifiers,
        };
        Ok(Expr {
            kind: ExprKind::Metric(mq),
            span: Span::new(start, self.pos),
        })
    }

    fn modifier(&mut self) -> PResult<Modifier> {
        let start = self.pos;
        let name = self.word();
        let known = ["as_count", "as_rate", "rollup", "fill"];
        if name.is_empty() {
            return Err(self.error("expected a modifier after \".\""));
        }
        if !known.contains(&name) {
            return Err(self.error_at(
                start,
                format!("unknown modifier {name:?}; expected as_count, as_rate, rollup or fill"),
            ));
        }
        self.expect('(', &format!("after .{name}"))?;
        let mut args: Vec<(usize, &'a str)> = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            if !args.is_empty() && !self.eat(',') {
                return Err(self.error(&format!("expected \",\" or \")\" in .{name}()")));
            }
            self.skip_ws();
            let arg_start = self.pos;
            let rest = self.rest();
            let len = rest
                .find(|c: char| !(is_word_char(c) || c == '.'))
                .unwrap_or(rest.len());
            if len == 0 {
                return Err(self.error(&format!("expected an argument in .{name}()")));
            }
            args.push((arg_start, &rest[..len]));
            self.pos += len;
        }
        let seconds = |(pos, s): (usize, &str)| -> PResult<u32> {
            match s.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(self.error_at(
                    pos,
                    format!("expected a positive number of seconds in .{name}(), found {s:?}"),
                )),
            }
        };
        match name {
            "as_count" | "as_rate" => {
                if let Some((pos, a)) = args.first() {
                    return Err(
                        self.error_at(*pos, format!(".{name}() takes no argument, found {a:?}"))
                    );
                }
                Ok(if name == "as_count" {
                    Modifier::AsCount
                } else {
                    Modifier::AsRate
                })
            }
            "rollup" => match args.as_slice() {
                [] => Err(self.error_at(
                    start,
                    ".rollup() needs a function or an interval".to_string(),
                )),
                [(pos, a)] if a.starts_with(|c: char| c.is_ascii_digit()) => Ok(Modifier::Rollup {
                    func: None,
                    interval: Some(seconds((*pos, a))?),
                }),
                [(pos, a), rest @ ..] if rest.len() <= 1 => {
                    let func = RollupFn::from_name(a).ok_or_else(|| {
                        self.error_at(
                            *pos,
                            format!("unknown rollup function {a:?}; expected avg, sum, min, max or count"),
                        )
                    })?;
                    let interval = rest.first().map(|x| seconds(*x)).transpose()?;
                    Ok(Modifier::Rollup {
                        func: Some(func),
                        interval,
                    })
                }
                [_, _, (pos, a), ..] => Err(self.error_at(
                    *pos,
                    format!(".rollup() takes at most 2 arguments, found {a:?}"),
                )),
                _ => unreachable!("slice patterns above are exhaustive"),
            },
            _ => match args.as_slice() {
                [] => Err(self.error_at(
                    start,
                    ".fill() needs a mode: null, zero, linear or last".to_string(),
                )),
                [(pos, a), rest @ ..] if rest.len() <= 1 => {
                    let mode = FillMode::from_name(a).ok_or_else(|| {
                        self.error_at(
                            *pos,
                            format!("unknown fill mode {a:?}; expected null, zero, linear or last"),
                        )
                    })?;
                    let limit = rest.first().map(|x| seconds(*x)).transpose()?;
                    Ok(Modifier::Fill { mode, limit })
                }
                [_, _, (pos, a), ..] => Err(self.error_at(
                    *pos,
                    format!(".fill() takes at most 2 arguments, found {a:?}"),
                )),
                _ => unreachable!("slice patterns above are exhaustive"),
            },
        }
    }

    /// After `{`: `*`, or a comma list of boolean expressions, then `}`.
    fn scope(&mut self) -> PResult<Scope> {
        self.skip_ws();
        if self.peek() == Some('*') {
            let save = self.pos;
            self.pos += 1;
            self.skip_ws();
            if self.eat('}') {
                return Ok(Scope::All);
            }
            self.pos = save;
        }
        let mut items = vec![self.scope_or()?];
        loop {
            self.skip_ws();
            if self.eat('}') {
                break;
            }
            if !self.eat(',') {
                return Err(self.error("expected \"}\" after scope"));
            }
            items.push(self.scope_or()?);
        }
        // `{*, env:prod}`: a `*` in the list adds nothing.
        items.retain(|x| !matches!(x, ScopeExpr::Filter(f) if !f.negated && f.tag == "*"));
        Ok(match items.len() {
            0 => Scope::All,
            1 => Scope::Expr(items.pop().expect("one item")),
            _ => Scope::Expr(ScopeExpr::And(items)),
        })
    }

    /// Whether the next word is `kw` (case-insensitively), as a whole word; consumes it if so.
    fn keyword(&mut self, kw: &str) -> bool {
        let save = self.pos;
        self.skip_ws();
        let rest = self.rest();
        if rest.len() >= kw.len()
            && rest.is_char_boundary(kw.len())
            && rest[..kw.len()].eq_ignore_ascii_case(kw)
            && rest[kw.len()..]
                .chars()
                .next()
                .is_none_or(|c| !is_word_char(c))
        {
            self.pos += kw.len();
            true
        } else {
            self.pos = save;
            false
        }
    }

    fn scope_or(&mut self) -> PResult<ScopeExpr> {
        self.enter()?;
        let mut items = vec![self.scope_and()?];
        while self.keyword("OR") {
            items.push(self.scope_and()?);
        }
        self.depth -= 1;
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            ScopeExpr::Or(items)
        })
    }

    fn scope_and(&mut self) -> PResult<ScopeExpr> {
        let mut items = vec![self.scope_unary()?];
        while self.keyword("AND") {
            items.push(self.scope_unary()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            ScopeExpr::And(items)
        })
    }

    fn scope_unary(&mut self) -> PResult<ScopeExpr> {
        self.skip_ws();
        // `NOT` is an operator when an operand follows it; `{not}` alone is a bare tag.
        let save = self.pos;
        if self.keyword("NOT") {
            self.skip_ws();
            if self.peek().is_some_and(|c| !matches!(c, ',' | '}' | ')')) {
                self.enter()?;
                let inner = self.scope_unary();
                self.depth -= 1;
                return Ok(ScopeExpr::Not(Box::new(inner?)));
            }
            self.pos = save;
        }
        if self.eat('(') {
            let inner = self.scope_or()?;
            self.expect(')', "to close \"(\" in scope")?;
            return Ok(inner);
        }
        let start = self.pos;
        let negated = self.eat('!') || self.eat('-');
        let rest = self.rest();
        let len = rest.find(ends_tag).unwrap_or(rest.len());
        if len == 0 {
            return Err(self.error("expected a tag filter in scope"));
        }
        let tag = &rest[..len];
        self.pos += len;
        if tag.starts_with(':') {
            return Err(self.error_at(start, format!("tag filter {tag:?} has an empty key")));
        }
        if !negated && !tag.contains(':') {
            let save = self.pos;
            let negated_in = self.keyword("NOT") && self.keyword("IN");
            if !negated_in {
                self.pos = save;
            }
            if negated_in || self.keyword("IN") {
                return self.in_list(tag, negated_in);
            }
        }
        let tag = match tag.split_once(':') {
            Some((k, v)) => format!("{}:{v}", k.to_lowercase()),
            None => tag.to_string(),
        };
        Ok(ScopeExpr::Filter(Filter { negated, tag }))
    }

    fn in_list(&mut self, key: &str, negated: bool) -> PResult<ScopeExpr> {
        self.expect('(', "after IN")?;
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            let rest = self.rest();
            let len = rest.find(ends_tag).unwrap_or(rest.len());
            if len == 0 {
                return Err(self.error("expected a tag value in IN (…)"));
            }
            values.push(rest[..len].to_string());
            self.pos += len;
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            if !self.eat(',') {
                return Err(self.error("expected \",\" or \")\" in IN (…)"));
            }
        }
        Ok(ScopeExpr::In {
            key: key.to_lowercase(),
            values,
            negated,
        })
    }
}

/// `avg`, `sum`, `min`, `max`, `count` or `pNN(.N)`.
fn space_agg(word: &str) -> Option<SpaceAgg> {
    Some(match word {
        "avg" => SpaceAgg::Avg,
        "sum" => SpaceAgg::Sum,
        "min" => SpaceAgg::Min,
        "max" => SpaceAgg::Max,
        "count" => SpaceAgg::Count,
        _ => {
            // `p99_9` is not valid; `p99.9` is tokenized by the caller only up to the `.`, so handled there.
            let digits = word.strip_prefix('p')?;
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || digits.len() > 3
            {
                return None;
            }
            let p: f64 = digits.parse().ok()?;
            (p <= 100.0).then_some(SpaceAgg::Percentile(p))?
        }
    })
}

fn check_params(func: Func, params: &[Param]) -> Result<(), String> {
    let name = func.name();
    match func {
        Func::Timeshift => match params {
            [Param::Number(n)] if n.fract() == 0.0 && n.abs() <= MAX_TIMESHIFT_SECS => Ok(()),
            [Param::Number(n)] if n.fract() == 0.0 => Err(format!(
                "{name}() shift {n} is more than {MAX_TIMESHIFT_SECS} seconds (10 years)"
            )),
            _ => Err(format!(
                "{name}() needs one whole number of seconds, as in timeshift(query, -3600)"
            )),
        },
        Func::Top | Func::Bottom => {
            if params.len() > 3 {
                return Err(format!(
                    "{name}() takes at most 3 parameters after the query"
                ));
            }
            if let Some(p) = params.first() {
                match p {
                    Param::Number(n) if *n >= 1.0 && *n <= 1000.0 && n.fract() == 0.0 => {}
                    _ => {
                        return Err(format!(
                            "{name}() limit must be a whole number from 1 to 1000, found {p}"
                        ))
                    }
                }
            }
            if let Some(p) = params.get(1) {
                match p {
                    Param::Str(s) if RANKERS.contains(&s.as_str()) => {}
                    _ => {
                        return Err(format!(
                            "{name}() ranking must be one of {}, found {p}",
                            RANKERS.join(", ")
                        ))
                    }
                }
            }
            if let Some(p) = params.get(2) {
                match p {
                    Param::Str(s) if s == "asc" || s == "desc" => {}
                    _ => {
                        return Err(format!(
                            "{name}() direction must be 'asc' or 'desc', found {p}"
                        ))
                    }
                }
            }
            Ok(())
        }
        _ if params.is_empty() => Ok(()),
        _ => Err(format!("{name}() takes only a query")),
    }
}
