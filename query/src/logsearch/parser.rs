//! A hand-written recursive-descent parser for the Datadog log and span search syntax (SPEC §6). No I/O;
//! every error names the byte position (at a char boundary) and the offending input.
//!
//! Grammar (whitespace separates tokens; `AND`, `OR`, `NOT` are operators only in upper case and only when
//! followed by whitespace, `(`, `)`, `"` or the end):
//!
//! ```text
//! query   := ws* | or
//! or      := and ("OR" and)*
//! and     := unary (["AND"] unary)*              # AND binds tighter than OR
//! unary   := "NOT" unary | "-" unary | primary   # "-" must touch its operand
//! primary := "(" or ")" | term                   # inside key:(…) a term is a value of that key
//! term    := "\"phrase\"" | func "(" args ")" | key ":" value | word
//! value   := "\"phrase\"" | "(" or-of-values ")" | (">"|">="|"<"|"<=") number
//!          | ("["|"{") bound "TO" bound ("]"|"}") | "*" | word-with-colons
//! ```

use super::MAX_DEPTH;
use sightline_model::{
    CmpOp, Matcher, Number, RangeEnd, SearchExpr, SearchParseError, SearchTerm, Span, Target,
    WildPart,
};
use std::net::IpAddr;

/// Parses a log or span search. The empty (or whitespace-only) query and `*` give [`SearchExpr::All`].
pub fn parse_search(text: &str) -> Result<SearchExpr, SearchParseError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Ok(SearchExpr::All);
    }
    let expr = p.or_expr(None)?;
    p.skip_ws();
    if !p.at_end() {
        // `and`/`or` only stop early at an unmatched `)`.
        return Err(p.err(p.pos, "unexpected \")\" without a matching \"(\""));
    }
    Ok(expr)
}

type PResult<T> = Result<T, SearchParseError>;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

/// Characters that end an unquoted word (unless escaped).
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

/// A scanned unquoted word: its pieces after unescaping, with `*` and `?` kept apart.
struct Word {
    /// Adjacent literals merged, runs of `*` collapsed to one.
    parts: Vec<WildPart>,
}

impl Word {
    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    fn is_wild(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, WildPart::Lit(_)))
    }

    /// Only unescaped stars: `*`, `**`, …
    fn is_star(&self) -> bool {
        self.parts == [WildPart::Star]
    }

    /// The unescaped text, `*` and `?` included as written.
    fn text(&self) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                WildPart::Lit(l) => s.push_str(l),
                WildPart::Star => s.push('*'),
                WildPart::One => s.push('?'),
            }
        }
        s
    }

    fn matcher(self) -> Matcher {
        if self.is_star() {
            Matcher::Exists
        } else if self.is_wild() {
            Matcher::Wildcard(self.parts)
        } else {
            Matcher::Exact(self.text())
        }
    }
}

fn push_lit(parts: &mut Vec<WildPart>, c: char) {
    if let Some(WildPart::Lit(s)) = parts.last_mut() {
        s.push(c);
    } else {
        parts.push(WildPart::Lit(c.to_string()));
    }
}

/// Parses a comparison or range number: an optional sign, digits with an optional fraction and exponent, and
/// an optional duration unit (converted to nanoseconds).
pub(crate) fn parse_number(tok: &str) -> Option<Number> {
    let b = tok.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    let (num, unit) = tok.split_at(i);
    let factor = match unit {
        "" => None,
        "ns" => Some(1.0),
        "us" | "µs" | "μs" => Some(1e3),
        "ms" => Some(1e6),
        "s" => Some(1e9),
        "m" => Some(60e9),
        "h" => Some(3600e9),
        _ => return None,
    };
    let v: f64 = num.parse().ok()?;
    let value = v * factor.unwrap_or(1.0);
    value.is_finite().then_some(Number {
        value,
        duration: factor.is_some(),
    })
}

/// Checks a `CIDR(…)` network: an IPv4 or IPv6 address, `/`, and a prefix length that fits the address.
fn check_network(net: &str) -> Result<(), String> {
    let Some((addr, prefix)) = net.split_once('/') else {
        return Err("expected address/prefix, like 10.0.0.0/8".to_string());
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an ip address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let ok = !prefix.is_empty()
        && prefix.len() <= 3
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && prefix.parse::<u32>().is_ok_and(|n| n <= max);
    if ok {
        Ok(())
    } else {
        Err(format!("prefix length {prefix:?} must be 0 to {max}"))
    }
}

/// At most 24 characters of `s`, quoted, with `…` when cut.
fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(24).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

fn term(target: Target, matcher: Matcher, start: usize, end: usize) -> SearchExpr {
    SearchExpr::Term(SearchTerm {
        target,
        matcher,
        span: Span { start, end },
    })
}

/// `a AND (b AND c)` → `And[a, b, c]`; `*` children drop out; one child stands alone.
pub(crate) fn make_and(items: Vec<SearchExpr>) -> SearchExpr {
    let mut out = Vec::with_capacity(items.len());
    for e in items {
        match e {
            SearchExpr::And(inner) => out.extend(inner),
            SearchExpr::All => {}
            e => out.push(e),
        }
    }
    match out.len() {
        0 => SearchExpr::All,
        1 => out.pop().unwrap_or(SearchExpr::All),
        _ => SearchExpr::And(out),
    }
}

/// `a OR (b OR c)` → `Or[a, b, c]`; a `*` child makes the whole `*`; one child stands alone.
pub(crate) fn make_or(items: Vec<SearchExpr>) -> SearchExpr {
    let mut out = Vec::with_capacity(items.len());
    for e in items {
        match e {
            SearchExpr::Or(inner) => out.extend(inner),
            SearchExpr::All => return SearchExpr::All,
            e => out.push(e),
        }
    }
    match out.len() {
        0 => SearchExpr::All,
        1 => out.pop().unwrap_or(SearchExpr::All),
        _ => SearchExpr::Or(out),
    }
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

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn err(&self, position: usize, message: impl Into<String>) -> SearchParseError {
        SearchParseError {
            position,
            message: message.into(),
        }
    }

    /// Describes the input at `pos` for error messages: the next whitespace-delimited chunk, quoted.
    fn found_at(&self, pos: usize) -> String {
        let chunk: String = self.src[pos..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(24)
            .collect();
        if chunk.is_empty() {
            "end of query".to_string()
        } else {
            format!("{chunk:?}")
        }
    }

    /// Whether the operator `kw` (`AND`, `OR`, `NOT`) starts here, followed by a word boundary.
    fn at_keyword(&self, kw: &str) -> bool {
        self.rest()
            .strip_prefix(kw)
            .is_some_and(|after| after.chars().next().is_none_or(ends_word))
    }

    /// One level deeper; `at` is the opening `(`, `-` or `NOT`, named if the limit is hit.
    fn enter(&mut self, at: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(at, format!("query nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// After the operator `op` at `op_pos`: fails unless an operand follows.
    fn expect_operand(&mut self, op: &str, op_pos: usize) -> PResult<()> {
        self.skip_ws();
        if self.at_end()
            || self.peek() == Some(')')
            || self.at_keyword("AND")
            || self.at_keyword("OR")
        {
            return Err(self.err(op_pos, format!("expected a term after {op:?}")));
        }
        Ok(())
    }

    /// `ctx` is the target of an enclosing `key:( … )` group: its terms are bare values of that target.
    fn or_expr(&mut self, ctx: Option<&Target>) -> PResult<SearchExpr> {
        let mut alts = vec![self.and_expr(ctx)?];
        loop {
            self.skip_ws();
            if !self.at_keyword("OR") {
                break;
            }
            let op_pos = self.pos;
            self.pos += 2;
            self.expect_operand("OR", op_pos)?;
            alts.push(self.and_expr(ctx)?);
        }
        Ok(make_or(alts))
    }

    fn and_expr(&mut self, ctx: Option<&Target>) -> PResult<SearchExpr> {
        let mut items = vec![self.unary(ctx)?];
        loop {
            self.skip_ws();
            if self.at_end() || self.peek() == Some(')') || self.at_keyword("OR") {
                break;
            }
            if self.at_keyword("AND") {
                let op_pos = self.pos;
                self.pos += 3;
                self.expect_operand("AND", op_pos)?;
            }
            items.push(self.unary(ctx)?);
        }
        Ok(make_and(items))
    }

    fn unary(&mut self, ctx: Option<&Target>) -> PResult<SearchExpr> {
        self.skip_ws();
        for kw in ["AND", "OR"] {
            if self.at_keyword(kw) {
                return Err(self.err(self.pos, format!("expected a term before {kw:?}")));
            }
        }
        let neg_pos = self.pos;
        if self.at_keyword("NOT") {
            self.pos += 3;
            self.expect_operand("NOT", neg_pos)?;
        } else if self.peek() == Some('-') {
            self.pos += 1;
            if self.peek().is_none_or(|c| c.is_whitespace() || c == ')') {
                return Err(self.err(
                    neg_pos,
                    "expected a term right after \"-\" (escape a literal dash as \\-)",
                ));
            }
        } else {
            return self.primary(ctx);
        }
        self.enter(neg_pos)?;
        let inner = self.unary(ctx)?;
        self.leave();
        Ok(SearchExpr::Not(Box::new(inner)))
    }

    fn primary(&mut self, ctx: Option<&Target>) -> PResult<SearchExpr> {
        match self.peek() {
            None => Err(self.err(self.pos, "expected a term, found end of query")),
            Some(')') => Err(self.err(self.pos, "unexpected \")\" without a matching \"(\"")),
            Some('(') => self.parenthesized(ctx, "parenthesis"),
            Some(_) => match ctx {
                Some(target) => self.value_leaf(target),
                None => self.term(),
            },
        }
    }

    /// `( … )` at the current position; `what` names it in errors.
    fn parenthesized(&mut self, ctx: Option<&Target>, what: &str) -> PResult<SearchExpr> {
        let open = self.pos;
        self.enter(open)?;
        self.pos += 1;
        self.skip_ws();
        if self.at_end() {
            return Err(self.err(open, format!("unclosed {what} \"(\"")));
        }
        if self.peek() == Some(')') {
            return Err(self.err(open, format!("empty {what} \"()\"")));
        }
        let e = self.or_expr(ctx)?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(self.err(open, format!("unclosed {what} \"(\"")));
        }
        self.leave();
        Ok(e)
    }

    /// Scans an unquoted word up to whitespace, `(`, `)`, `"` (and an unescaped `:` when `stop_at_colon`).
    fn word(&mut self, stop_at_colon: bool) -> PResult<Word> {
        let mut parts = Vec::new();
        while let Some(c) = self.peek() {
            if ends_word(c) || (stop_at_colon && c == ':') {
                break;
            }
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                '\\' => match self.bump() {
                    Some(e) => push_lit(&mut parts, e),
                    None => {
                        return Err(self.err(
                            at,
                            "dangling \"\\\" at end of query (write \\\\ for a backslash)",
                        ))
                    }
                },
                '*' => {
                    if parts.last() != Some(&WildPart::Star) {
                        parts.push(WildPart::Star);
                    }
                }
                '?' => parts.push(WildPart::One),
                c => push_lit(&mut parts, c),
            }
        }
        Ok(Word { parts })
    }

    /// A `"…"` phrase at the current position; `\"` and `\\` are escapes, other backslashes are literal.
    fn phrase(&mut self) -> PResult<String> {
        let open = self.pos;
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(self.err(
                        open,
                        format!("unterminated quote {}", snippet(&self.src[open..])),
                    ))
                }
                Some('"') => return Ok(s),
                Some('\\') => match self.peek() {
                    Some(c @ ('"' | '\\')) => {
                        self.pos += 1;
                        s.push(c);
                    }
                    _ => s.push('\\'),
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// A top-level term: phrase, function call, `key:value` or a free-text word.
    fn term(&mut self) -> PResult<SearchExpr> {
        let start = self.pos;
        if self.peek() == Some('"') {
            let p = self.phrase()?;
            return Ok(term(Target::Message, Matcher::Phrase(p), start, self.pos));
        }
        let rest = self.rest();
        let ident_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if ident_len > 0
            && rest.as_bytes()[0].is_ascii_alphabetic()
            && rest[ident_len..].starts_with('(')
        {
            return self.function(&rest[..ident_len]);
        }
        let key = self.word(true)?;
        if !self.eat(':') {
            if rest.starts_with('@') {
                return Err(self.err(
                    start,
                    format!(
                        "expected \":\" and a value after attribute {:?}",
                        &self.src[start..self.pos]
                    ),
                ));
            }
            return Ok(if key.is_star() {
                SearchExpr::All
            } else {
                term(Target::Message, key.matcher(), start, self.pos)
            });
        }
        let key_text = &self.src[start..self.pos];
        let target = if key.is_star() && rest.starts_with('*') {
            Target::Any
        } else if rest.starts_with('@') {
            let path = key.text();
            let path = &path['@'.len_utf8()..];
            if path.is_empty() {
                return Err(self.err(start, "expected an attribute name between \"@\" and \":\""));
            }
            if key.is_wild() {
                return Err(self.err(
                    start,
                    format!("wildcards are not allowed in attribute name {key_text:?}"),
                ));
            }
            Target::Attr(path.to_string())
        } else {
            if key.is_empty() {
                return Err(self.err(start, "expected a key before \":\""));
            }
            if key.is_wild() {
                return Err(self.err(
                    start,
                    format!("wildcards are not allowed in key {key_text:?}"),
                ));
            }
            Target::Key(key.text().to_lowercase())
        };
        match self.peek() {
            None | Some(')') => {
                Err(self.err(self.pos, format!("expected a value after {key_text:?}")))
            }
            Some(c) if c.is_whitespace() => {
                Err(self.err(self.pos, format!("expected a value after {key_text:?}")))
            }
            Some('(') => {
                let what = format!("group after {key_text:?}");
                self.parenthesized(Some(&target), &what)
            }
            Some(_) => {
                let matcher = self.value(key_text)?;
                Ok(term(target, matcher, start, self.pos))
            }
        }
    }

    /// A bare value inside `key:( … )`; its span is the value's own text.
    fn value_leaf(&mut self, target: &Target) -> PResult<SearchExpr> {
        let start = self.pos;
        let matcher = self.value("(")?;
        Ok(term(target.clone(), matcher, start, self.pos))
    }

    /// The value of a key or attribute term (not a group), at a non-terminator character. `after` names what
    /// precedes it in errors.
    fn value(&mut self, after: &str) -> PResult<Matcher> {
        match self.peek() {
            Some('"') => Ok(Matcher::Phrase(self.phrase()?)),
            Some(c @ ('>' | '<')) => {
                let op_pos = self.pos;
                self.pos += 1;
                let or_equal = self.eat('=');
                let op = match (c, or_equal) {
                    ('>', false) => CmpOp::Gt,
                    ('>', true) => CmpOp::Ge,
                    ('<', false) => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                let op_text = &self.src[op_pos..self.pos];
                let at = self.pos;
                let tok = self.token(ends_word);
                match parse_number(tok) {
                    Some(n) => Ok(Matcher::Compare(op, n)),
                    None if tok.is_empty() => Err(self.err(
                        at,
                        format!(
                            "expected a number after {op_text:?}, found {}",
                            self.found_at(at)
                        ),
                    )),
                    None => Err(self.err(
                        at,
                        format!("expected a number after {op_text:?}, found {tok:?}"),
                    )),
                }
            }
            Some('[' | '{') => self.range(),
            Some(c) if ends_word(c) => {
                Err(self.err(self.pos, format!("expected a value after {after:?}")))
            }
            _ => Ok(self.word(false)?.matcher()),
        }
    }

    /// Consumes characters up to one for which `stop` holds; returns them.
    fn token(&mut self, stop: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(stop).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn range_token(&mut self) -> &'a str {
        self.token(|c| ends_word(c) || matches!(c, ']' | '}'))
    }

    /// One bound of a range: `*` or a number, `at` its position.
    fn range_bound(&self, tok: &str, at: usize, inclusive: bool) -> PResult<RangeEnd> {
        if tok == "*" {
            return Ok(RangeEnd::Open);
        }
        match parse_number(tok) {
            Some(n) if inclusive => Ok(RangeEnd::Inclusive(n)),
            Some(n) => Ok(RangeEnd::Exclusive(n)),
            None => Err(self.err(
                at,
                format!(
                    "expected a number or \"*\" in range, found {}",
                    self.describe(tok, at)
                ),
            )),
        }
    }

    /// `tok` quoted, or what is at `at` when it is empty.
    fn describe(&self, tok: &str, at: usize) -> String {
        if tok.is_empty() {
            self.found_at(at)
        } else {
            format!("{tok:?}")
        }
    }

    /// `[a TO b]`, `{a TO b}` or mixed brackets, at the opening bracket.
    fn range(&mut self) -> PResult<Matcher> {
        let open = self.pos;
        let low_inclusive = self.bump() == Some('[');
        self.skip_ws();
        let low_at = self.pos;
        let low_tok = self.range_token();
        let low = self.range_bound(low_tok, low_at, low_inclusive)?;
        self.skip_ws();
        let at = self.pos;
        let to = self.range_token();
        if to != "TO" {
            return Err(self.err(
                at,
                format!("expected \"TO\" in range, found {}", self.describe(to, at)),
            ));
        }
        self.skip_ws();
        let high_at = self.pos;
        let high_tok = self.range_token();
        // The closing bracket decides whether the upper bound is inclusive.
        self.skip_ws();
        let high_inclusive = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            None => {
                return Err(self.err(
                    open,
                    format!("unterminated range {}", snippet(&self.src[open..])),
                ))
            }
            Some(_) => {
                return Err(self.err(
                    self.pos,
                    format!(
                        "expected \"]\" or \"}}\" to close the range, found {}",
                        self.found_at(self.pos)
                    ),
                ))
            }
        };
        let high = self.range_bound(high_tok, high_at, high_inclusive)?;
        self.pos += 1;
        Ok(Matcher::Range(low, high))
    }

    /// `NAME(…)` at the current position; only `CIDR` is known.
    fn function(&mut self, name: &str) -> PResult<SearchExpr> {
        let start = self.pos;
        if !name.eq_ignore_ascii_case("cidr") {
            return Err(self.err(
                start,
                format!("unknown function {name:?} (only CIDR(@attribute, network) is supported)"),
            ));
        }
        self.pos += name.len() + 1;
        let call = format!("{name}(");
        let arg_stop = |c: char| c.is_whitespace() || matches!(c, ',' | ')');
        self.skip_ws();
        let at = self.pos;
        let attr = self.token(arg_stop);
        let target = if let Some(path) = attr.strip_prefix('@') {
            (!path.is_empty()).then(|| Target::Attr(path.to_string()))
        } else {
            (!attr.is_empty()).then(|| Target::Key(attr.to_lowercase()))
        };
        let Some(target) = target else {
            return Err(self.err(
                at,
                format!(
                    "expected an attribute like @network.client.ip in {call}…), found {}",
                    self.found_at(at)
                ),
            ));
        };
        let mut networks = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            if !self.eat(',') {
                return Err(self.err(
                    self.pos,
                    format!(
                        "expected \",\" or \")\" in {call}…), found {}",
                        self.found_at(self.pos)
                    ),
                ));
            }
            self.skip_ws();
            let at = self.pos;
            let net = self.token(arg_stop);
            if net.is_empty() {
                return Err(self.err(
                    at,
                    format!(
                        "expected a network like 10.0.0.0/8 in {call}…), found {}",
                        self.found_at(at)
                    ),
                ));
            }
            if let Err(why) = check_network(net) {
                return Err(self.err(at, format!("invalid network {net:?}: {why}")));
            }
            networks.push(net);
        }
        if networks.is_empty() {
            return Err(self.err(
                self.pos - 1,
                format!("expected a network like 10.0.0.0/8 in {call}…)"),
            ));
        }
        let end = self.pos;
        Ok(make_or(
            networks
                .into_iter()
                .map(|n| term(target.clone(), Matcher::Cidr(n.to_string()), start, end))
                .collect(),
        ))
    }
}
