//! In-memory evaluation of the span search syntax (SPEC §6) against one [`SpanRecord`]. Spans are not in a
//! text index, so a search is compiled once into a [`SpanFilter`] and run over every span a scan visits.
//!
//! | query | matches a span when |
//! |---|---|
//! | `word`, `"a phrase"` | a whole word (or consecutive words) of its name or resource, case-insensitively |
//! | `wor*`, `w?rd` | a word of its name or resource matches the pattern, case-insensitively; a pattern with a literal non-word character (`/api/*`) is also tried on the whole name and resource |
//! | `service:`, `env:`, `host:`, `version:` | that value, whole and case-sensitive (wildcards allowed) |
//! | `resource_name:` / `resource:`, `operation_name:` / `name:` | the resource or name, whole and case-sensitive |
//! | `trace_id:`, `span_id:`, `parent_id:` | the lower-case hex id (the query is lower-cased); `parent_id:0` finds roots |
//! | `status:error`, `status:ok` | the span's error flag (case-insensitive) |
//! | `span.kind:` / `kind:` | `server`, `client`, `producer`, `consumer`, `internal`, `unspecified` |
//! | `@a.b:value`, other `key:value` | a scalar at that path (span attributes, else resource attributes; flat dotted keys and nested objects; array elements each count), whole and case-sensitive; a numeric query also matches the number (`@code:200` finds 200.0) |
//! | `@a:>10`, `>=`, `<`, `<=`, `@a:[1 TO 5]`, `{…}` | a numeric value at the path in range |
//! | `@duration:>100ms`, `[10ms TO 1s]` | the duration in ns (units `ns`, `us`, `ms`, `s`, `m`, `h`; a plain number is ns) |
//! | `@a:*` | anything non-null at the path (a scalar, or an object or array holding one) |
//! | `CIDR(@a, 10.0.0.0/8)` | an IP (v4 or v6) at the path lies in the network; also on `host` |
//! | `*:value` | free text, or any reserved value but status and kind, or any attribute leaf, whole |
//! | `-x`, `NOT x` | `x` does not match (so spans without the attribute match `-@a:v`) |
//!
//! Comparisons and ranges on free text, `*:` or string-valued reserved keys, and `CIDR` on free text, are
//! refused by [`SpanFilter::new`] (a 400 naming the position); the lenient [`fn@matches`] lets them match nothing.

use super::fields::{self, Reserved};
use crate::error::QueryError;
use crate::logsearch::matcher::Glob;
use sightline_model::{Matcher, SearchExpr, SearchTerm, SpanRecord, Target, WildPart};
use sightline_storage::logs::compile::{bound, cidr_range, compare_bounds};
use sightline_storage::logs::schema::{ip_term, is_word_char};
use std::cell::OnceCell;
use std::net::IpAddr;
use std::ops::Bound;

/// Whether `s` matches the search `expr`. Terms that cannot apply to spans (see the module documentation)
/// match nothing here; use [`SpanFilter::new`] to refuse them instead, and to match many spans.
pub fn matches(expr: &SearchExpr, s: &SpanRecord) -> bool {
    SpanFilter::lenient(expr).matches(s)
}

/// A compiled span search.
pub struct SpanFilter {
    node: Node,
}

impl std::fmt::Debug for SpanFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpanFilter")
    }
}

impl SpanFilter {
    /// Compiles a search, refusing terms that cannot apply to spans with an error naming their position.
    pub fn new(expr: &SearchExpr) -> Result<SpanFilter, QueryError> {
        Ok(SpanFilter {
            node: compile(expr, true)?,
        })
    }

    /// Compiles a search; terms that cannot apply to spans match nothing.
    pub fn lenient(expr: &SearchExpr) -> SpanFilter {
        SpanFilter {
            node: compile(expr, false).unwrap_or(Node::Never),
        }
    }

    /// The filter that matches every span.
    pub fn all() -> SpanFilter {
        SpanFilter { node: Node::All }
    }

    pub fn matches(&self, s: &SpanRecord) -> bool {
        eval(&self.node, &Ctx::new(s))
    }
}

enum Node {
    All,
    Never,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Text(Text),
    /// `*:value`: the free-text form, or the value test on any reserved value or attribute leaf.
    Any(Text, Test),
    Reserved(Reserved, Test),
    Attr(String, Test),
}

/// Free text over the words of the name and the resource.
enum Text {
    /// Consecutive lower-cased words (one word for a plain term); empty matches nothing.
    Words(Vec<String>),
    /// A lower-cased pattern over each word; `whole`: also over the whole lower-cased name and resource.
    Wild { glob: Glob, whole: bool },
}

/// A test on one value.
enum Test {
    /// The whole text; `num`: the query as a number, also matched by equal numbers.
    Eq {
        text: String,
        num: Option<f64>,
    },
    Glob(Glob),
    Exists,
    Range(Bound<f64>, Bound<f64>),
    /// Inclusive bounds of the network as `ip_term("", …)` texts.
    Cidr(String, String),
}

/// Lower-cased words: runs of letters, digits and `_`, as the log message analyzer splits them.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn bad(t: &SearchTerm, message: String) -> QueryError {
    QueryError::Invalid {
        pos: t.span.start,
        message,
    }
}

fn compile(e: &SearchExpr, strict: bool) -> Result<Node, QueryError> {
    Ok(match e {
        SearchExpr::All => Node::All,
        SearchExpr::And(xs) => Node::And(
            xs.iter()
                .map(|x| compile(x, strict))
                .collect::<Result<_, _>>()?,
        ),
        SearchExpr::Or(xs) => Node::Or(
            xs.iter()
                .map(|x| compile(x, strict))
                .collect::<Result<_, _>>()?,
        ),
        SearchExpr::Not(x) => Node::Not(Box::new(compile(x, strict)?)),
        SearchExpr::Term(t) => match term(t) {
            Ok(n) => n,
            Err(e) if strict => return Err(e),
            Err(_) => Node::Never,
        },
    })
}

fn text(m: &Matcher) -> Option<Text> {
    match m {
        Matcher::Exact(w) | Matcher::Phrase(w) => Some(Text::Words(words(w))),
        Matcher::Wildcard(parts) => {
            let whole = parts.iter().any(|p| match p {
                WildPart::Lit(l) => l.chars().any(|c| !is_word_char(c)),
                _ => false,
            });
            Some(Text::Wild {
                glob: Glob::new("", parts, true),
                whole,
            })
        }
        _ => None,
    }
}

fn test(t: &SearchTerm, lower: bool) -> Result<Test, QueryError> {
    Ok(match &t.matcher {
        Matcher::Exact(v) | Matcher::Phrase(v) => Test::Eq {
            text: if lower { v.to_lowercase() } else { v.clone() },
            num: v.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        },
        Matcher::Wildcard(parts) => Test::Glob(Glob::new("", parts, lower)),
        Matcher::Exists => Test::Exists,
        Matcher::Compare(op, n) => {
            let (lo, hi) = compare_bounds(*op, n.value);
            Test::Range(lo, hi)
        }
        Matcher::Range(lo, hi) => Test::Range(bound(*lo), bound(*hi)),
        Matcher::Cidr(net) => {
            let (lo, hi) = cidr_range("", net)
                .ok_or_else(|| bad(t, format!("invalid network {net:?} in CIDR(…)")))?;
            Test::Cidr(lo, hi)
        }
    })
}

fn term(t: &SearchTerm) -> Result<Node, QueryError> {
    match &t.target {
        Target::Message => match text(&t.matcher) {
            Some(x) => Ok(Node::Text(x)),
            None => Err(bad(
                t,
                "free text cannot be compared or used in CIDR(…); use an attribute such as @duration:>100ms"
                    .to_string(),
            )),
        },
        Target::Any => match (&t.matcher, text(&t.matcher)) {
            (Matcher::Exists, _) => Ok(Node::All),
            (_, Some(x)) => Ok(Node::Any(x, test(t, false)?)),
            (_, None) => Err(bad(
                t,
                "\"*:\" cannot be compared or used in CIDR(…); name an attribute such as @duration"
                    .to_string(),
            )),
        },
        Target::Key(k) => match Reserved::parse(k) {
            Some(r) => {
                if matches!(t.matcher, Matcher::Compare(..) | Matcher::Range(..)) {
                    return Err(bad(
                        t,
                        format!(
                            "{k:?} is not numeric and cannot be compared; compare a numeric attribute such as @duration"
                        ),
                    ));
                }
                Ok(Node::Reserved(r, test(t, r.lower_case())?))
            }
            None => Ok(Node::Attr(k.clone(), test(t, false)?)),
        },
        Target::Attr(path) => Ok(Node::Attr(path.clone(), test(t, false)?)),
    }
}

/// A span with its free-text words, computed on first use.
struct Ctx<'a> {
    s: &'a SpanRecord,
    /// Words of the name, words of the resource.
    words: OnceCell<(Vec<String>, Vec<String>)>,
}

impl<'a> Ctx<'a> {
    fn new(s: &'a SpanRecord) -> Self {
        Ctx {
            s,
            words: OnceCell::new(),
        }
    }

    fn words(&self) -> &(Vec<String>, Vec<String>) {
        self.words
            .get_or_init(|| (words(&self.s.name), words(&self.s.resource)))
    }
}

fn eval(n: &Node, c: &Ctx<'_>) -> bool {
    match n {
        Node::All => true,
        Node::Never => false,
        Node::And(xs) => xs.iter().all(|x| eval(x, c)),
        Node::Or(xs) => xs.iter().any(|x| eval(x, c)),
        Node::Not(x) => !eval(x, c),
        Node::Text(t) => text_matches(t, c),
        Node::Any(t, test) => {
            text_matches(t, c)
                || ANY_RESERVED
                    .iter()
                    .filter_map(|r| r.value(c.s))
                    .any(|v| str_matches(test, &v))
                || fields::all_leaves(c.s)
                    .into_iter()
                    .any(|l| leaf_matches(test, l))
        }
        Node::Reserved(r, test) => reserved_matches(*r, test, c.s),
        Node::Attr(path, test) => {
            if let Test::Exists = test {
                return fields::attr_exists(c.s, path);
            }
            let values = fields::attr_values(c.s, path);
            fields::leaves(&values)
                .into_iter()
                .any(|l| leaf_matches(test, l))
        }
    }
}

/// The reserved values `*:` looks at.
const ANY_RESERVED: [Reserved; 9] = [
    Reserved::Service,
    Reserved::Env,
    Reserved::Host,
    Reserved::Version,
    Reserved::Resource,
    Reserved::Operation,
    Reserved::TraceId,
    Reserved::SpanId,
    Reserved::ParentId,
];

fn text_matches(t: &Text, c: &Ctx<'_>) -> bool {
    let (name, resource) = c.words();
    match t {
        Text::Words(q) => !q.is_empty() && [name, resource].into_iter().any(|w| contains_run(w, q)),
        Text::Wild { glob, whole } => {
            name.iter().chain(resource).any(|w| glob.matches(w))
                || (*whole
                    && [&c.s.name, &c.s.resource]
                        .into_iter()
                        .any(|v| glob.matches(&v.to_lowercase())))
        }
    }
}

/// Whether `needle` occurs as consecutive elements of `hay`.
fn contains_run(hay: &[String], needle: &[String]) -> bool {
    needle.len() <= hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

fn reserved_matches(r: Reserved, test: &Test, s: &SpanRecord) -> bool {
    let v = r.value(s);
    match (test, v) {
        (Test::Exists, v) => v.is_some(),
        // Datadog writes a root's parent id as 0.
        (Test::Eq { text, .. }, None) => {
            r == Reserved::ParentId && text.trim_start_matches('0').is_empty() && !text.is_empty()
        }
        (_, None) => false,
        (test, Some(v)) => str_matches(test, &v),
    }
}

/// A test on a string value (numbers are not compared: string values are not numeric).
fn str_matches(test: &Test, v: &str) -> bool {
    match test {
        Test::Eq { text, .. } => v == text,
        Test::Glob(g) => g.matches(v),
        Test::Exists => true,
        Test::Range(..) => false,
        Test::Cidr(lo, hi) => in_network(v, lo, hi),
    }
}

fn leaf_matches(test: &Test, leaf: &serde_json::Value) -> bool {
    match test {
        Test::Eq { text, num } => {
            fields::leaf_text(leaf) == text.as_str()
                || num.is_some_and(|n| leaf.is_number() && leaf.as_f64() == Some(n))
        }
        Test::Glob(g) => g.matches(&fields::leaf_text(leaf)),
        Test::Exists => true,
        Test::Range(lo, hi) => leaf
            .as_f64()
            .filter(|_| leaf.is_number())
            .is_some_and(|x| in_range(x, *lo, *hi)),
        Test::Cidr(lo, hi) => leaf.as_str().is_some_and(|v| in_network(v, lo, hi)),
    }
}

fn in_range(x: f64, lo: Bound<f64>, hi: Bound<f64>) -> bool {
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
}

fn in_network(v: &str, lo: &str, hi: &str) -> bool {
    v.trim().parse::<IpAddr>().is_ok_and(|ip| {
        let t = ip_term("", ip);
        lo <= t.as_str() && t.as_str() <= hi
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logsearch::parse_search;
    use serde_json::{json, Value};
    use sightline_model::SpanKind;

    /// Span `i` has span id `[0, …, 0, i]`.
    fn id(i: u8) -> [u8; 8] {
        [0, 0, 0, 0, 0, 0, 0, i]
    }

    fn span(i: u8, service: &str, name: &str, resource: &str, duration_ns: i64) -> SpanRecord {
        let mut s = SpanRecord::new(
            [0xab; 16],
            id(i),
            Some(id(1)),
            service,
            name,
            i64::from(i) * 1000,
            duration_ns,
        );
        s.resource = resource.to_string();
        s
    }

    fn obj(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// The fixed spans every case runs over.
    fn corpus() -> Vec<SpanRecord> {
        let mut out = Vec::new();
        // 1: the root, an HTTP server span.
        let mut s = span(1, "web", "http.request", "GET /users/:id", 250_000_000);
        s.parent_id = None;
        s.kind = SpanKind::Server;
        s.env = Some("prod".into());
        s.host = Some("10.1.2.3".into());
        s.version = Some("1.4.0".into());
        s.attributes = obj(
            json!({"http.route": "/users/:id", "http.status_code": 200, "http.method": "GET",
                   "network.client.ip": "10.1.2.3"}),
        );
        s.resource_attributes =
            obj(json!({"k8s.pod.name": "web-7d9", "cloud": {"region": "eu-west-1"}}));
        out.push(s);
        // 2: a failing server span.
        let mut s = span(2, "web", "http.request", "POST /checkout", 1_500_000_000);
        s.kind = SpanKind::Server;
        s.error = true;
        s.status_message = "boom".into();
        s.env = Some("prod".into());
        s.attributes = obj(
            json!({"http.route": "/checkout", "http.status_code": 503, "http.method": "POST",
                   "network.client.ip": "192.168.0.7"}),
        );
        s.resource_attributes = obj(json!({"k8s.pod.name": "web-1aa"}));
        out.push(s);
        // 3: a database client span with a nested attribute object.
        let mut s = span(
            3,
            "users-db",
            "postgres.query",
            "SELECT * FROM users",
            12_000_000,
        );
        s.kind = SpanKind::Client;
        s.env = Some("staging".into());
        s.attributes =
            obj(json!({"db": {"system": "postgresql", "rows": 3}, "db.statement": "SELECT 1"}));
        out.push(s);
        // 4: a Redis client span with a float attribute.
        let mut s = span(4, "cache", "redis.command", "GET", 800_000);
        s.kind = SpanKind::Client;
        s.attributes = obj(json!({"cache.hit_ratio": 0.5, "db.system": "redis"}));
        out.push(s);
        // 5: an internal span whose name has several words.
        let mut s = span(5, "web", "render template", "users/show.html", 40_000_000);
        s.attributes = obj(json!({"template.engine": "Tera"}));
        out.push(s);
        // 6: a producer with an array attribute.
        let mut s = span(6, "orders", "kafka.produce", "orders topic", 2_000_000);
        s.kind = SpanKind::Producer;
        s.attributes = obj(json!({"messaging.destinations": ["orders", "audit"], "retry": true}));
        out.push(s);
        // 7: a consumer, in IPv6 land.
        let mut s = span(7, "billing", "kafka.consume", "orders topic", 90_000_000);
        s.kind = SpanKind::Consumer;
        s.env = Some("prod".into());
        s.attributes =
            obj(json!({"network.peer.address": "2001:db8::1", "http.status_code": "404"}));
        out.push(s);
        // 8: a slow error in another service with a version.
        let mut s = span(
            8,
            "payments",
            "stripe.charge",
            "POST /v1/charges",
            3_600_000_000_000,
        );
        s.kind = SpanKind::Client;
        s.error = true;
        s.version = Some("2.0.0".into());
        s.attributes = obj(json!({"http.status_code": 500, "peer.service": "stripe"}));
        out.push(s);
        // 9: nanosecond-short, no attributes at all.
        out.push(span(9, "web", "noop", "noop", 10));
        // 10: the same attribute at span and resource level (the span's wins).
        let mut s = span(10, "web", "auth.check", "auth", 150_000);
        s.attributes = obj(json!({"team": "identity"}));
        s.resource_attributes = obj(json!({"team": "platform", "deployment.region": "us"}));
        out.push(s);
        // 11: mixed-case values.
        let mut s = span(11, "Web-Frontend", "HTTP.Request", "GET /Home", 5_000_000);
        s.kind = SpanKind::Server;
        s.attributes = obj(json!({"user.tier": "Gold"}));
        out.push(s);
        // 12: a numeric string status and a null attribute.
        let mut s = span(12, "gateway", "proxy", "GET /users/:id", 60_000_000);
        s.attributes = obj(json!({"upstream": null, "http.status_code": 200.0}));
        out.push(s);
        // 13..=20: a batch of quick lookups of varying duration.
        for i in 13..=20u8 {
            let mut s = span(
                i,
                "users-db",
                "postgres.query",
                "SELECT name FROM users",
                i64::from(i) * 1_000_000,
            );
            s.kind = SpanKind::Client;
            s.attributes = obj(json!({"db.rows": i64::from(i) - 12}));
            out.push(s);
        }
        out
    }

    /// Runs `query` over the corpus and compares the matching span numbers.
    fn check(query: &str, expected: &[u8]) {
        let expr = parse_search(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        let filter = SpanFilter::new(&expr).unwrap_or_else(|e| panic!("{query}: {e}"));
        let got: Vec<u8> = corpus()
            .iter()
            .filter(|s| filter.matches(s))
            .map(|s| s.span_id[7])
            .collect();
        assert_eq!(got, expected, "{query}");
        let lenient: Vec<u8> = corpus()
            .iter()
            .filter(|s| matches(&expr, s))
            .map(|s| s.span_id[7])
            .collect();
        assert_eq!(lenient, expected, "{query} (lenient)");
    }

    const ALL: [u8; 20] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    ];

    #[test]
    fn search_semantics() {
        // Everything.
        check("", &ALL);
        check("*", &ALL);
        // Free text: words of name and resource, case-insensitive.
        check("checkout", &[2]);
        check("CHECKOUT", &[2]);
        check("users", &[1, 3, 5, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
        check("request", &[1, 2, 11]);
        check("\"render template\"", &[5]);
        check("\"template render\"", &[]);
        check("\"users id\"", &[1, 12]);
        check("charg*", &[8]);
        check("po?tgres", &[3, 13, 14, 15, 16, 17, 18, 19, 20]);
        check("GET?/users/*", &[1, 12]);
        check("users/*", &[5]);
        check("boom", &[]);
        // Reserved keys.
        check("service:web", &[1, 2, 5, 9, 10]);
        check("service:Web", &[]);
        check("service:Web-*", &[11]);
        check("service:(cache OR billing)", &[4, 7]);
        check("env:prod", &[1, 2, 7]);
        check(
            "-env:*",
            &[4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
        );
        check("host:10.1.2.3", &[1]);
        check("version:2.*", &[8]);
        check("resource_name:\"GET /users/:id\"", &[1, 12]);
        check("resource:GET", &[4]);
        check("operation_name:kafka.*", &[6, 7]);
        check("name:HTTP.Request", &[11]);
        check("status:error", &[2, 8]);
        check("status:ERROR", &[2, 8]);
        check("status:ok service:web", &[1, 5, 9, 10]);
        check(
            "span.kind:client",
            &[3, 4, 8, 13, 14, 15, 16, 17, 18, 19, 20],
        );
        check("kind:(producer OR consumer)", &[6, 7]);
        check("span_id:0000000000000005", &[5]);
        check(
            "trace_id:ABABABABABABABABABABABABABABABAB service:cache",
            &[4],
        );
        check("parent_id:0000000000000001", &ALL[1..]);
        check("-parent_id:*", &[1]);
        check("parent_id:0 OR parent_id:nope", &[1]);
        // Attributes: flat dotted keys, nested objects, resource attributes, shadowing, arrays.
        check("@http.route:/checkout", &[2]);
        check("@http.route:/users*", &[1]);
        check("@db.system:postgresql", &[3]);
        check("@db.system:*", &[3, 4]);
        check("@db:*", &[3, 4, 13, 14, 15, 16, 17, 18, 19, 20]);
        check("@k8s.pod.name:web-*", &[1, 2]);
        check("@cloud.region:eu-west-1", &[1]);
        check("@team:identity", &[10]);
        check("@team:platform", &[]);
        check("@deployment.region:us", &[10]);
        check("@messaging.destinations:audit", &[6]);
        check("@retry:true", &[6]);
        check("@user.tier:gold", &[]);
        check("@user.tier:Gold", &[11]);
        check("@upstream:*", &[]);
        check("k8s.pod.name:web-1aa", &[2]);
        // Numbers: exact, comparisons, ranges; strings are not numbers.
        check("@http.status_code:200", &[1, 12]);
        check("@http.status_code:>=500", &[2, 8]);
        check("@http.status_code:[400 TO 499]", &[]);
        check("@http.status_code:404", &[7]);
        check("@http.status_code:{200 TO 503}", &[8]);
        check("@cache.hit_ratio:<1", &[4]);
        check("@db.rows:>5", &[18, 19, 20]);
        check("@db.rows:[* TO 2]", &[13, 14]);
        // Durations.
        check("@duration:>1s", &[2, 8]);
        check("@duration:>=1.5s", &[2, 8]);
        check("@duration:>1h", &[]);
        check("@duration:>=1h", &[8]);
        check("@duration:<1us", &[9]);
        check("@duration:<=10ns", &[9]);
        check(
            "@duration:[10ms TO 20ms]",
            &[3, 13, 14, 15, 16, 17, 18, 19, 20],
        );
        check("@duration:{10ms TO 20ms}", &[3, 13, 14, 15, 16, 17, 18, 19]);
        check("@duration:>59m", &[8]);
        check("@duration:[100000 TO 200000]", &[10]);
        check("@duration:[500us TO 1ms]", &[4]);
        // CIDR.
        check("CIDR(@network.client.ip, 10.0.0.0/8)", &[1]);
        check(
            "CIDR(@network.client.ip, 10.0.0.0/8, 192.168.0.0/16)",
            &[1, 2],
        );
        check("CIDR(@network.peer.address, 2001:db8::/32)", &[7]);
        check("CIDR(host, 10.1.0.0/16)", &[1]);
        // Negation: records without the attribute match.
        check(
            "-@http.status_code:200",
            &[
                2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20,
            ],
        );
        check("NOT service:users-db -service:web", &[4, 6, 7, 8, 11, 12]);
        check("-@db.rows:*", &[1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        // Any attribute.
        check("*:stripe", &[8]);
        check("*:prod", &[1, 2, 7]);
        check("*:Tera", &[5]);
        check("*:eu-*", &[1]);
        // Boolean structure: AND binds tighter than OR.
        check("service:web status:error OR service:cache", &[2, 4]);
        check(
            "service:web (status:error OR @http.status_code:200)",
            &[1, 2],
        );
        check("service:web AND NOT (noop OR auth)", &[1, 2, 5]);
    }

    #[test]
    fn refused_terms_name_their_position() {
        for (query, pos, part) in [
            ("service:>5", 0, "\"service\" is not numeric"),
            ("x status:[1 TO 2]", 2, "\"status\" is not numeric"),
            ("a *:>3", 2, "\"*:\" cannot be compared"),
        ] {
            let expr = match parse_search(query) {
                Ok(e) => e,
                // The parser may refuse first; it names a position too.
                Err(e) => {
                    assert_eq!(e.position, pos, "{query}: {e}");
                    continue;
                }
            };
            let e = SpanFilter::new(&expr).expect_err(query);
            let text = e.to_string();
            assert!(matches!(e, QueryError::Invalid { .. }), "{query}: {text}");
            assert!(
                text.contains(&format!("at position {pos}")),
                "{query}: {text}"
            );
            assert!(text.contains(part), "{query}: {text}");
            // The lenient form matches nothing for the refused term.
            assert!(!corpus().iter().any(|s| matches(&expr, s)), "{query}");
        }
        // `duration:` without `@` is the attribute path, so it compares.
        let expr = parse_search("duration:>1s").unwrap();
        assert!(SpanFilter::new(&expr).is_ok());
    }
}
