//! Tests of the log search parser and printer: a table of accepted queries, a table of errors with their
//! positions, spans, and property tests (no panics on any input; print → parse round-trips).

use super::parser::{make_and, make_or};
use super::{clear_spans, display, parse_search, MAX_DEPTH};
use proptest::prelude::*;
use sightline_model::{
    CmpOp, Matcher, Number, RangeEnd, SearchExpr, SearchTerm, Span, Target, WildPart,
};

// ---- compact constructors for expected trees (spans are zero; `check` clears the parsed ones) ----

fn t(target: Target, matcher: Matcher) -> SearchExpr {
    SearchExpr::Term(SearchTerm {
        target,
        matcher,
        span: Span::default(),
    })
}
fn word(s: &str) -> SearchExpr {
    t(Target::Message, ex(s))
}
fn phrase(s: &str) -> SearchExpr {
    t(Target::Message, Matcher::Phrase(s.into()))
}
fn wword(pattern: &str) -> SearchExpr {
    t(Target::Message, wild(pattern))
}
fn key(k: &str, m: Matcher) -> SearchExpr {
    t(Target::Key(k.into()), m)
}
fn attr(p: &str, m: Matcher) -> SearchExpr {
    t(Target::Attr(p.into()), m)
}
fn anywhere(m: Matcher) -> SearchExpr {
    t(Target::Any, m)
}
fn ex(s: &str) -> Matcher {
    Matcher::Exact(s.into())
}
fn ph(s: &str) -> Matcher {
    Matcher::Phrase(s.into())
}
/// `*` and `?` in `pattern` are wildcards, every other character literal.
fn wild(pattern: &str) -> Matcher {
    let mut parts = Vec::new();
    for c in pattern.chars() {
        match c {
            '*' => parts.push(WildPart::Star),
            '?' => parts.push(WildPart::One),
            c => match parts.last_mut() {
                Some(WildPart::Lit(s)) => s.push(c),
                _ => parts.push(WildPart::Lit(c.to_string())),
            },
        }
    }
    Matcher::Wildcard(parts)
}
fn lit_star() -> Matcher {
    Matcher::Wildcard(vec![WildPart::Lit("a*b".into()), WildPart::Star])
}
fn and(v: Vec<SearchExpr>) -> SearchExpr {
    SearchExpr::And(v)
}
fn or(v: Vec<SearchExpr>) -> SearchExpr {
    SearchExpr::Or(v)
}
fn not(e: SearchExpr) -> SearchExpr {
    SearchExpr::Not(Box::new(e))
}
fn n(v: f64) -> Number {
    Number {
        value: v,
        duration: false,
    }
}
fn d(ns: f64) -> Number {
    Number {
        value: ns,
        duration: true,
    }
}
fn cmp(op: CmpOp, num: Number) -> Matcher {
    Matcher::Compare(op, num)
}
fn range(lo: RangeEnd, hi: RangeEnd) -> Matcher {
    Matcher::Range(lo, hi)
}
fn inc(v: f64) -> RangeEnd {
    RangeEnd::Inclusive(n(v))
}
fn exc(v: f64) -> RangeEnd {
    RangeEnd::Exclusive(n(v))
}
fn cidr(path: &str, net: &str) -> SearchExpr {
    attr(path, Matcher::Cidr(net.into()))
}

fn parsed(input: &str) -> SearchExpr {
    let mut e = parse_search(input).unwrap_or_else(|err| panic!("{input:?}: {err}"));
    clear_spans(&mut e);
    e
}

/// Parses `input`, compares with `expected` (spans aside), and checks that the printed form parses back.
fn check(input: &str, expected: SearchExpr) {
    let got = parsed(input);
    assert_eq!(got, expected, "parsing {input:?}");
    let printed = display(&got);
    let again = parse_search(&printed)
        .map(|mut e| {
            clear_spans(&mut e);
            e
        })
        .unwrap_or_else(|err| panic!("{input:?} printed as {printed:?}: {err}"));
    assert_eq!(again, got, "{input:?} printed as {printed:?}");
}

#[test]
fn parses_table() {
    use CmpOp::*;
    let cases: Vec<(&str, SearchExpr)> = vec![
        // everything
        ("", SearchExpr::All),
        ("   \t\n", SearchExpr::All),
        ("*", SearchExpr::All),
        ("  *  ", SearchExpr::All),
        ("**", SearchExpr::All),
        ("* hello", word("hello")),
        ("hello OR *", SearchExpr::All),
        ("-*", not(SearchExpr::All)),
        // free text
        ("hello", word("hello")),
        ("Hello", word("Hello")),
        ("hello world", and(vec![word("hello"), word("world")])),
        ("\"hello world\"", phrase("hello world")),
        ("\"\"", phrase("")),
        ("\"say \\\"hi\\\" \\\\ now\"", phrase("say \"hi\" \\ now")),
        ("\"a\\nb\"", phrase("a\\nb")),
        ("\"a:b (c) *\"", phrase("a:b (c) *")),
        ("héllo wörld", and(vec![word("héllo"), word("wörld")])),
        ("日本語", word("日本語")),
        ("retr*", wword("retr*")),
        ("*ception", wword("*ception")),
        ("*rr*", wword("*rr*")),
        ("h?llo", wword("h?llo")),
        ("a**b", wword("a*b")),
        ("web-01", word("web-01")),
        ("/api/v1/users", word("/api/v1/users")),
        ("10.1.2.3", word("10.1.2.3")),
        ("and or not", and(vec![word("and"), word("or"), word("not")])),
        ("ANDROID ORACLE NOTE", and(vec![word("ANDROID"), word("ORACLE"), word("NOTE")])),
        (">100", word(">100")),
        // escapes
        ("hello\\ world", word("hello world")),
        ("a\\:b", word("a:b")),
        ("a\\*b*", t(Target::Message, lit_star())),
        ("\\*", word("*")),
        ("\\-x", word("-x")),
        ("\\AND", word("AND")),
        ("\\@user", word("@user")),
        ("\\(x\\)", word("(x)")),
        ("c\\+\\+ \\#tag", and(vec![word("c++"), word("#tag")])),
        ("a\\\\b", word("a\\b")),
        ("\\\"quoted\\\"", word("\"quoted\"")),
        ("x\\&\\&y \\!z \\=\\~\\^", and(vec![word("x&&y"), word("!z"), word("=~^")])),
        // keys and attributes
        ("service:web", key("service", ex("web"))),
        ("Service:Web", key("service", ex("Web"))),
        ("env:prod host:web-01", and(vec![key("env", ex("prod")), key("host", ex("web-01"))])),
        ("service:\"my app\"", key("service", ph("my app"))),
        ("service:web*", key("service", wild("web*"))),
        ("service:*web", key("service", wild("*web"))),
        ("service:*", key("service", Matcher::Exists)),
        ("trace_id:abc:def", key("trace_id", ex("abc:def"))),
        ("@http.url:/api/v1/users", attr("http.url", ex("/api/v1/users"))),
        ("@http.url:*users*", attr("http.url", wild("*users*"))),
        ("@url:http\\://x", attr("url", ex("http://x"))),
        ("@url:http://x", attr("url", ex("http://x"))),
        ("@ip:10.1.2.3", attr("ip", ex("10.1.2.3"))),
        ("@Http.Status_Code:200", attr("Http.Status_Code", ex("200"))),
        ("@a:*", attr("a", Matcher::Exists)),
        ("@a:-5", attr("a", ex("-5"))),
        ("@msg:hello\\ world", attr("msg", ex("hello world"))),
        ("@a\\ b:c", attr("a b", ex("c"))),
        ("*:hello", anywhere(ex("hello"))),
        ("*:hel*", anywhere(wild("hel*"))),
        ("*:\"a b\"", anywhere(ph("a b"))),
        ("key:a\"b c\"", and(vec![key("key", ex("a")), phrase("b c")])),
        ("\\*:x", key("*", ex("x"))),
        // comparisons and numbers
        ("@n:>100", attr("n", cmp(Gt, n(100.0)))),
        ("@n:>=100", attr("n", cmp(Ge, n(100.0)))),
        ("@n:<1.5", attr("n", cmp(Lt, n(1.5)))),
        ("@n:<=-2e3", attr("n", cmp(Le, n(-2000.0)))),
        ("status:>400", key("status", cmp(Gt, n(400.0)))),
        ("@duration:>100ms", attr("duration", cmp(Gt, d(1e8)))),
        ("@duration:>=1.5s", attr("duration", cmp(Ge, d(1.5e9)))),
        ("@d:<10ns", attr("d", cmp(Lt, d(10.0)))),
        ("@d:<250us", attr("d", cmp(Lt, d(250_000.0)))),
        ("@d:<250µs", attr("d", cmp(Lt, d(250_000.0)))),
        ("@d:>2m", attr("d", cmp(Gt, d(120e9)))),
        ("@d:>1h", attr("d", cmp(Gt, d(3600e9)))),
        // ranges
        ("@n:[400 TO 499]", attr("n", range(inc(400.0), inc(499.0)))),
        ("@n:{1 TO 5}", attr("n", range(exc(1.0), exc(5.0)))),
        ("@n:[1 TO 5}", attr("n", range(inc(1.0), exc(5.0)))),
        ("@n:{1 TO 5]", attr("n", range(exc(1.0), inc(5.0)))),
        ("@n:[* TO 5]", attr("n", range(RangeEnd::Open, inc(5.0)))),
        ("@n:{5 TO *}", attr("n", range(exc(5.0), RangeEnd::Open))),
        ("@n:[ 1   TO  2 ]", attr("n", range(inc(1.0), inc(2.0)))),
        ("@d:[1ms TO 1s]", attr("d", range(RangeEnd::Inclusive(d(1e6)), RangeEnd::Inclusive(d(1e9))))),
        ("@n:[-1.5 TO 0]", attr("n", range(inc(-1.5), inc(0.0)))),
        // key groups
        ("service:(a OR b)", or(vec![key("service", ex("a")), key("service", ex("b"))])),
        ("service:(a b)", and(vec![key("service", ex("a")), key("service", ex("b"))])),
        ("service:(a AND b)", and(vec![key("service", ex("a")), key("service", ex("b"))])),
        (
            "@k:(\"x y\" OR z*)",
            or(vec![attr("k", ph("x y")), attr("k", wild("z*"))]),
        ),
        (
            "@k:(a OR (b c) OR -d)",
            or(vec![
                attr("k", ex("a")),
                and(vec![attr("k", ex("b")), attr("k", ex("c"))]),
                not(attr("k", ex("d"))),
            ]),
        ),
        (
            "@n:(>5 OR [1 TO 2] OR *)",
            or(vec![
                attr("n", cmp(Gt, n(5.0))),
                attr("n", range(inc(1.0), inc(2.0))),
                attr("n", Matcher::Exists),
            ]),
        ),
        ("@k:(a:b)", attr("k", ex("a:b"))),
        (
            "x service:(a b)",
            and(vec![word("x"), key("service", ex("a")), key("service", ex("b"))]),
        ),
        // booleans and precedence
        ("a AND b", and(vec![word("a"), word("b")])),
        ("a OR b", or(vec![word("a"), word("b")])),
        ("a b OR c", or(vec![and(vec![word("a"), word("b")]), word("c")])),
        ("a OR b c", or(vec![word("a"), and(vec![word("b"), word("c")])])),
        ("a AND b OR c AND d", or(vec![and(vec![word("a"), word("b")]), and(vec![word("c"), word("d")])])),
        ("(a OR b) c", and(vec![or(vec![word("a"), word("b")]), word("c")])),
        ("a (b c)", and(vec![word("a"), word("b"), word("c")])),
        ("a OR (b OR c)", or(vec![word("a"), word("b"), word("c")])),
        ("((a))", word("a")),
        ("(a)(b)", and(vec![word("a"), word("b")])),
        ("NOT a", not(word("a"))),
        ("NOT a b", and(vec![not(word("a")), word("b")])),
        ("NOT a OR b", or(vec![not(word("a")), word("b")])),
        ("NOT (a OR b)", not(or(vec![word("a"), word("b")]))),
        ("NOT(a)", not(word("a"))),
        ("-a", not(word("a"))),
        ("--a", not(not(word("a")))),
        ("a -b", and(vec![word("a"), not(word("b"))])),
        ("a AND -b", and(vec![word("a"), not(word("b"))])),
        ("-service:web", not(key("service", ex("web")))),
        ("-@a:*", not(attr("a", Matcher::Exists))),
        ("-\"a phrase\"", not(phrase("a phrase"))),
        ("-(a b)", not(and(vec![word("a"), word("b")]))),
        ("a-b -c-d", and(vec![word("a-b"), not(word("c-d"))])),
        ("a AND\"b\"", and(vec![word("a"), phrase("b")])),
        ("AND:x", key("and", ex("x"))),
        // CIDR
        ("CIDR(@network.client.ip, 10.0.0.0/8)", cidr("network.client.ip", "10.0.0.0/8")),
        ("CIDR(@ip,10.0.0.0/8)", cidr("ip", "10.0.0.0/8")),
        ("cidr( @ip , 192.168.1.0/24 )", cidr("ip", "192.168.1.0/24")),
        ("CIDR(@ip, 2001:db8::/32)", cidr("ip", "2001:db8::/32")),
        ("CIDR(@ip, ::/0)", cidr("ip", "::/0")),
        ("CIDR(@ip, 1.2.3.4/32)", cidr("ip", "1.2.3.4/32")),
        (
            "CIDR(@ip, 10.0.0.0/8, 172.16.0.0/12)",
            or(vec![cidr("ip", "10.0.0.0/8"), cidr("ip", "172.16.0.0/12")]),
        ),
        ("CIDR(Host, 10.0.0.0/8)", key("host", Matcher::Cidr("10.0.0.0/8".into()))),
        ("-CIDR(@ip, 10.0.0.0/8)", not(cidr("ip", "10.0.0.0/8"))),
        (
            "service:web CIDR(@ip, 10.0.0.0/8) OR status:error",
            or(vec![
                and(vec![key("service", ex("web")), cidr("ip", "10.0.0.0/8")]),
                key("status", ex("error")),
            ]),
        ),
        // realistic
        (
            "service:(checkout OR payment) @http.status_code:[500 TO 599] -env:staging \"timed out\"",
            and(vec![
                or(vec![key("service", ex("checkout")), key("service", ex("payment"))]),
                attr("http.status_code", range(inc(500.0), inc(599.0))),
                not(key("env", ex("staging"))),
                phrase("timed out"),
            ]),
        ),
    ];
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn errors_table() {
    // (input, byte position, a piece of the message)
    let deep_parens = format!(
        "{}a{}",
        "(".repeat(MAX_DEPTH + 5),
        ")".repeat(MAX_DEPTH + 5)
    );
    let deep_not = format!("{}a", "-".repeat(MAX_DEPTH + 5));
    let deep_group = format!(
        "k:{}a{}",
        "(".repeat(MAX_DEPTH + 5),
        ")".repeat(MAX_DEPTH + 5)
    );
    let cases: Vec<(&str, usize, &str)> = vec![
        ("\"abc", 0, "unterminated quote \"\\\"abc\""),
        ("hello \"abc", 6, "unterminated quote"),
        ("\"abc\\\"", 0, "unterminated quote"),
        ("service:\"my app", 8, "unterminated quote"),
        ("héllo \"x", 7, "unterminated quote"),
        ("(a", 0, "unclosed parenthesis \"(\""),
        ("(a OR (b)", 0, "unclosed parenthesis"),
        ("a)", 1, "unexpected \")\""),
        ("é)", 2, "unexpected \")\""),
        (")", 0, "unexpected \")\""),
        ("@n:>100)", 7, "unexpected \")\""),
        ("()", 0, "empty parenthesis"),
        ("a AND", 2, "expected a term after \"AND\""),
        ("a AND )", 2, "expected a term after \"AND\""),
        ("a OR", 2, "expected a term after \"OR\""),
        ("a OR OR b", 2, "expected a term after \"OR\""),
        ("a AND OR b", 2, "expected a term after \"AND\""),
        ("AND a", 0, "expected a term before \"AND\""),
        ("OR a", 0, "expected a term before \"OR\""),
        ("(OR a)", 1, "expected a term before \"OR\""),
        ("NOT", 0, "expected a term after \"NOT\""),
        ("a NOT", 2, "expected a term after \"NOT\""),
        ("-", 0, "expected a term right after \"-\""),
        ("a -", 2, "expected a term right after \"-\""),
        ("- a", 0, "expected a term right after \"-\""),
        ("(a -)", 3, "expected a term right after \"-\""),
        ("status:", 7, "expected a value after \"status:\""),
        ("status: error", 7, "expected a value after \"status:\""),
        ("(status:)", 8, "expected a value after \"status:\""),
        ("@http.url: x", 10, "expected a value after \"@http.url:\""),
        ("@:x", 0, "expected an attribute name"),
        (":x", 0, "expected a key before \":\""),
        (
            "serv*:web",
            0,
            "wildcards are not allowed in key \"serv*:\"",
        ),
        ("@a*:x", 0, "wildcards are not allowed in attribute name"),
        (
            "@foo",
            0,
            "expected \":\" and a value after attribute \"@foo\"",
        ),
        ("@n:>abc", 4, "expected a number after \">\", found \"abc\""),
        (
            "@n:>",
            4,
            "expected a number after \">\", found end of query",
        ),
        ("@n:> 5", 4, "expected a number after \">\""),
        ("@n:>=1x", 5, "expected a number after \">=\", found \"1x\""),
        ("@n:<inf", 4, "expected a number after \"<\", found \"inf\""),
        ("@n:<NaN", 4, "found \"NaN\""),
        ("@n:>1e999", 4, "found \"1e999\""),
        ("@d:>100mss", 4, "found \"100mss\""),
        (
            "@n:[a TO 5]",
            4,
            "expected a number or \"*\" in range, found \"a\"",
        ),
        (
            "@n:[1 TO x]",
            9,
            "expected a number or \"*\" in range, found \"x\"",
        ),
        ("@n:[1 5]", 6, "expected \"TO\" in range, found \"5\""),
        ("@n:[1 to 5]", 6, "expected \"TO\" in range, found \"to\""),
        ("@n:[1]", 5, "expected \"TO\" in range, found \"]\""),
        ("@n:[1 TO 5", 3, "unterminated range \"[1 TO 5\""),
        (
            "@n:[1 TO 5)",
            10,
            "expected \"]\" or \"}\" to close the range, found \")\"",
        ),
        (
            "CIDR(@ip, 10.0.0.0/33)",
            10,
            "invalid network \"10.0.0.0/33\": prefix length \"33\" must be 0 to 32",
        ),
        ("CIDR(@ip, 2001:db8::/129)", 10, "must be 0 to 128"),
        ("CIDR(@ip, 10.0.0/8)", 10, "\"10.0.0\" is not an ip address"),
        ("CIDR(@ip, 10.0.0.0)", 10, "expected address/prefix"),
        ("CIDR(@ip, 10.0.0.0/+8)", 10, "prefix length \"+8\""),
        ("CIDR(@ip, 10.0.0.0/)", 10, "prefix length \"\""),
        ("CIDR(@ip)", 8, "expected a network like 10.0.0.0/8"),
        (
            "CIDR(@ip,)",
            9,
            "expected a network like 10.0.0.0/8 in CIDR(…), found \")\"",
        ),
        (
            "CIDR(, 10.0.0.0/8)",
            5,
            "expected an attribute like @network.client.ip",
        ),
        ("CIDR(@, 10.0.0.0/8)", 5, "expected an attribute"),
        (
            "CIDR(@ip, 10.0.0.0/8",
            20,
            "expected \",\" or \")\" in CIDR(…), found end of query",
        ),
        ("CIDR(@ip 10.0.0.0/8)", 9, "expected \",\" or \")\""),
        ("FOO(a)", 0, "unknown function \"FOO\""),
        ("a error(500)", 2, "unknown function \"error\""),
        ("a\\", 1, "dangling \"\\\" at end of query"),
        ("k:a\\", 3, "dangling \"\\\""),
        ("key:(a OR", 7, "expected a term after \"OR\""),
        ("key:()", 4, "empty group after \"key:\" \"()\""),
        ("key:(a", 4, "unclosed group after \"key:\""),
        ("key:(a))", 7, "unexpected \")\""),
        (
            &deep_parens,
            MAX_DEPTH,
            "query nests deeper than 100 levels",
        ),
        (&deep_not, MAX_DEPTH, "nests deeper"),
        (&deep_group, 2 + MAX_DEPTH, "nests deeper"),
    ];
    for (input, position, message) in cases {
        let err = match parse_search(input) {
            Ok(e) => panic!("{input:?} parsed as {e:?}, expected an error"),
            Err(err) => err,
        };
        assert!(
            err.message.contains(message),
            "{input:?}: message {:?} lacks {message:?}",
            err.message
        );
        assert_eq!(err.position, position, "{input:?}: {err}");
        assert!(
            err.message.starts_with(|c: char| c.is_lowercase()),
            "{input:?}: {:?} starts upper-case",
            err.message
        );
    }
}

#[test]
fn error_display_names_position() {
    let err = parse_search("service:web \"oops").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unterminated quote \"\\\"oops\" at position 12"
    );
}

fn spans(e: &SearchExpr, out: &mut Vec<(usize, usize)>) {
    match e {
        SearchExpr::All => {}
        SearchExpr::And(v) | SearchExpr::Or(v) => v.iter().for_each(|e| spans(e, out)),
        SearchExpr::Not(e) => spans(e, out),
        SearchExpr::Term(t) => out.push((t.span.start, t.span.end)),
    }
}

#[test]
fn spans_cover_each_term() {
    let q = "a -service:web @k:(x OR yy) \"p q\" NOT CIDR(@ip, 1.2.3.4/32) é*";
    let mut got = Vec::new();
    spans(&parse_search(q).unwrap(), &mut got);
    let texts: Vec<&str> = got.iter().map(|&(s, e)| &q[s..e]).collect();
    assert_eq!(
        texts,
        [
            "a",
            "service:web",
            "x",
            "yy",
            "\"p q\"",
            "CIDR(@ip, 1.2.3.4/32)",
            "é*"
        ]
    );
}

#[test]
fn display_prints_readable_text() {
    let cases = [
        ("service:(a OR b) -@x:*", "(service:a OR service:b) -@x:*"),
        ("a AND b OR c", "a b OR c"),
        ("(a OR b) c", "(a OR b) c"),
        (
            "@d:>100ms @d:<1.5s @d:>=90s @d:<=2h @d:>250us @d:<7ns",
            "@d:>100ms @d:<1.5s @d:>=1.5m @d:<=2h @d:>250us @d:<7ns",
        ),
        ("@n:{* TO 5]", "@n:[* TO 5]"),
        ("host:web-01 @url:/a/b:c", "host:web-01 @url:/a/b:c"),
        ("\\AND a\\:b \\-c", "\\AND a\\:b \\-c"),
        ("NOT \"say \\\"hi\\\"\"", "-\"say \\\"hi\\\"\""),
        ("CIDR(@ip, 10.0.0.0/8)", "CIDR(@ip, 10.0.0.0/8)"),
    ];
    for (input, printed) in cases {
        assert_eq!(display(&parse_search(input).unwrap()), printed, "{input:?}");
    }
    assert_eq!(display(&SearchExpr::And(vec![])), "*");
    assert_eq!(display(&SearchExpr::Or(vec![])), "-*");
}

// ---- property tests ----

/// Checks one input: errors sit at char boundaries inside the text; successes have in-bounds spans and
/// print to text that parses back to the same tree.
fn check_any(text: &str) -> Result<(), TestCaseError> {
    match parse_search(text) {
        Err(err) => {
            prop_assert!(err.position <= text.len(), "{text:?}: {err}");
            prop_assert!(text.is_char_boundary(err.position), "{text:?}: {err}");
            prop_assert!(!err.message.is_empty());
        }
        Ok(mut expr) => {
            let mut sp = Vec::new();
            spans(&expr, &mut sp);
            for (s, e) in sp {
                prop_assert!(s < e && e <= text.len(), "{text:?}: span {s}..{e}");
                prop_assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
            }
            let printed = display(&expr);
            let mut again = parse_search(&printed).map_err(|e| {
                TestCaseError::fail(format!("{text:?} printed as {printed:?}: {e}"))
            })?;
            clear_spans(&mut expr);
            clear_spans(&mut again);
            prop_assert_eq!(again, expr, "{:?} printed as {:?}", text, printed);
        }
    }
    Ok(())
}

const TOKENS: &[&str] = &[
    "a",
    "Bb",
    "héllo",
    "AND",
    "OR",
    "NOT",
    "and",
    "-",
    "(",
    ")",
    "\"",
    "\"x y\"",
    "*",
    "?",
    "retr*",
    "*rr*",
    "a?c",
    "key:",
    "Key:v",
    "@a.b:",
    "@a.b:c",
    ":",
    "*:",
    ">",
    ">=",
    "<",
    "100",
    "1.5s",
    "100ms",
    "[1 TO 5]",
    "{* TO 2ms]",
    "[",
    "]",
    "{",
    "}",
    "TO",
    "CIDR(@ip, 10.0.0.0/8)",
    "CIDR(",
    "10.0.0.0/8",
    "::1/128",
    ",",
    "\\",
    "\\*",
    "\\:",
    "\\ ",
    "\\\"",
    "\\\\",
    "\\-",
    "@",
    "web-01",
    "/api/v1",
    "a:b:c",
    "status:(a OR b)",
    "@d:>1.5s",
    "@n:[400 TO 499]",
    "-@a:*",
    "FOO(",
    "日本",
    "\u{3000}",
    "\t",
    "#",
    "&&",
    "||",
    "!",
];

fn arb_query() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(TOKENS),
            prop::sample::select(&["", " ", " ", "  "][..]),
        ),
        0..14,
    )
    .prop_map(|v| v.into_iter().flat_map(|(t, sep)| [t, sep]).collect())
}

fn arb_text() -> impl Strategy<Value = String> {
    "[a-cA-C0-9 :@*?()\\[\\]{}\"\\\\<>=.,/#&|!~^+\\-é\u{3000}日]{1,8}"
}

fn arb_wild() -> impl Strategy<Value = Matcher> {
    prop::collection::vec(
        prop_oneof![
            arb_text().prop_map(WildPart::Lit),
            Just(WildPart::Star),
            Just(WildPart::One),
        ],
        1..5,
    )
    .prop_filter_map("not a normalized wildcard", |raw| {
        // The parser's normal form: adjacent literals merged, star runs collapsed, `*` alone excluded.
        let mut parts: Vec<WildPart> = Vec::new();
        for p in raw {
            match (parts.last_mut(), p) {
                (Some(WildPart::Lit(a)), WildPart::Lit(b)) => a.push_str(&b),
                (Some(WildPart::Star), WildPart::Star) => {}
                (_, p) => parts.push(p),
            }
        }
        let wild = parts.iter().any(|p| !matches!(p, WildPart::Lit(_)));
        (wild && parts != [WildPart::Star]).then_some(Matcher::Wildcard(parts))
    })
}

fn arb_number() -> impl Strategy<Value = Number> {
    (-1e12f64..1e12, any::<bool>()).prop_map(|(value, duration)| Number { value, duration })
}

fn arb_end() -> impl Strategy<Value = RangeEnd> {
    prop_oneof![
        Just(RangeEnd::Open),
        arb_number().prop_map(RangeEnd::Inclusive),
        arb_number().prop_map(RangeEnd::Exclusive),
    ]
}

fn arb_leaf() -> impl Strategy<Value = SearchExpr> {
    let target = prop_oneof![
        Just(Target::Any),
        arb_text().prop_map(|k| Target::Key(k.to_lowercase())),
        arb_text().prop_map(Target::Attr),
    ];
    let valued = (
        target,
        prop_oneof![
            arb_text().prop_map(Matcher::Exact),
            ".{0,8}".prop_map(Matcher::Phrase),
            arb_wild(),
            (
                prop::sample::select(&[CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le][..]),
                arb_number()
            )
                .prop_map(|(op, n)| Matcher::Compare(op, n)),
            (arb_end(), arb_end()).prop_map(|(a, b)| Matcher::Range(a, b)),
            Just(Matcher::Exists),
        ],
    )
        .prop_map(|(target, m)| t(target, m));
    let free = prop_oneof![
        arb_text().prop_map(Matcher::Exact),
        ".{0,8}".prop_map(Matcher::Phrase),
        arb_wild(),
    ]
    .prop_map(|m| t(Target::Message, m));
    let cidr = (
        "[a-z][a-z._]{0,6}",
        prop::sample::select(&["10.0.0.0/8", "::/0", "2001:db8::/32", "1.2.3.4/32"][..]),
    )
        .prop_map(|(p, net)| cidr(&p, net));
    prop_oneof![4 => valued, 3 => free, 1 => cidr]
}

fn arb_expr() -> impl Strategy<Value = SearchExpr> {
    arb_leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(make_and),
            prop::collection::vec(inner.clone(), 2..4).prop_map(make_or),
            inner.prop_map(|e| SearchExpr::Not(Box::new(e))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check_any(&text)?;
    }

    #[test]
    fn syntax_heavy_strings_never_panic(text in "[a-cA-C \t:@*?()\\[\\]{}\"\\\\<>=.,/#\\-é]{0,30}") {
        check_any(&text)?;
    }

    #[test]
    fn generated_queries_round_trip(text in arb_query()) {
        check_any(&text)?;
    }

    #[test]
    fn generated_trees_round_trip(expr in arb_expr()) {
        let printed = display(&expr);
        let mut again = parse_search(&printed)
            .map_err(|e| TestCaseError::fail(format!("{expr:?} printed as {printed:?}: {e}")))?;
        clear_spans(&mut again);
        prop_assert_eq!(again, expr, "printed as {:?}", printed);
    }
}
