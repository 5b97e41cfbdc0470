//! The live tail's in-memory matcher against the log store's index: for every search of a fixed list, the
//! records `sightline_query::logsearch::matches` accepts are exactly the ones the real on-disk store finds.

use serde_json::json;
use sightline_model::LogRecord;
use sightline_query::logsearch::{matches, parse_search};
use sightline_storage::{LogReader, LogSearch, SortOrder};
use std::collections::BTreeSet;

#[path = "../src/test_util.rs"]
mod test_util;

const T0: i64 = 1_700_000_000_000_000_000;

fn rec(
    msg: &str,
    status: &str,
    service: &str,
    host: &str,
    tags: &[&str],
    attrs: serde_json::Value,
) -> LogRecord {
    let mut r = LogRecord::new(0, msg);
    r.status = status.into();
    r.service = Some(service.into());
    r.host = Some(host.into());
    r.source = Some("app".into());
    r.tags = tags.iter().map(|t| t.to_string()).collect();
    r.normalize_tags();
    r.attributes = attrs.as_object().cloned().unwrap_or_default();
    r
}

/// An object nested `levels` deep: `{"l2": {"l3": … {"l<levels>": leaf}}}`.
fn nested(levels: usize, leaf: serde_json::Value) -> serde_json::Value {
    (2..=levels)
        .rev()
        .fold(leaf, |inner, i| json!({ format!("l{i}"): inner }))
}

/// The records of `log_search.rs` plus edge cases of the index: missing reserved fields, arrays, deep
/// nesting, line feeds, long words, dates, dotted keys.
fn corpus() -> Vec<LogRecord> {
    let mut v = vec![
        rec(
            "GET /api/v1/users 200 in 12ms",
            "info",
            "web",
            "web-01",
            &["env:prod", "team:core"],
            json!({"http": {"method": "GET", "status_code": 200, "url": "/api/v1/users"}, "network": {"client": {"ip": "10.0.0.5"}}, "duration": 12}),
        ),
        rec(
            "GET /api/v1/orders 404 not found",
            "warning",
            "web",
            "web-02",
            &["env:prod", "team:core"],
            json!({"http": {"method": "GET", "status_code": 404, "url": "/api/v1/orders"}, "network": {"client": {"ip": "10.20.30.40"}}, "duration": 3}),
        ),
        rec(
            "POST /api/v1/orders 500 upstream timeout",
            "error",
            "web",
            "web-01",
            &["env:prod"],
            json!({"http": {"method": "POST", "status_code": 500, "url": "/api/v1/orders"}, "network": {"client": {"ip": "192.168.1.9"}}, "duration": 1500}),
        ),
        rec(
            "POST /api/v1/payments 503 upstream unavailable",
            "error",
            "payments",
            "pay-01",
            &["env:prod", "team:money"],
            json!({"http": {"method": "POST", "status_code": 503}, "network": {"client": {"ip": "2001:db8::42"}}, "duration": 2200.5}),
        ),
        rec(
            "Retrying connection to db-01 (attempt 3)",
            "warning",
            "worker",
            "wrk-01",
            &["env:staging"],
            json!({"attempt": 3, "db": {"name": "orders_db"}}),
        ),
        rec(
            "Connection refused by db-01",
            "error",
            "worker",
            "wrk-01",
            &["env:staging"],
            json!({"attempt": 4, "db": {"name": "orders_db"}}),
        ),
        rec(
            "user_id=apNjkATwdFGD logged in",
            "info",
            "auth",
            "auth-01",
            &["env:prod", "team:core"],
            json!({"usr": {"id": "apNjkATwdFGD"}}),
        ),
        rec(
            "request 550e8400-e29b-41d4-a716-446655440000 done",
            "info",
            "auth",
            "auth-01",
            &["env:prod"],
            json!({"request_id": "550e8400-e29b-41d4-a716-446655440000"}),
        ),
        rec(
            "cache miss for key user:42",
            "debug",
            "cache",
            "cache-01",
            &["env:dev"],
            json!({"cache": {"hit": false, "key": "user:42"}}),
        ),
        rec(
            "cache hit for key user:43",
            "debug",
            "cache",
            "cache-01",
            &["env:dev"],
            json!({"cache": {"hit": true, "key": "user:43"}}),
        ),
        rec(
            "disk usage at 91% on /var/lib",
            "critical",
            "agent",
            "web-02",
            &["env:prod", "version:1.2.3"],
            json!({"disk": {"used_pct": 91.5, "path": "/var/lib"}}),
        ),
        rec(
            "price is (a+b)*c = 10:30",
            "info",
            "calc",
            "calc-01",
            &["env:dev"],
            json!({"expr": "(a+b)*c"}),
        ),
    ];
    // Edge cases.
    let mut bare = LogRecord::new(0, "");
    bare.status = "ERROR".into();
    bare.trace_id = Some("abc123".into());
    bare.span_id = Some("s1".into());
    bare.attributes =
        json!({"empty": "", "deep": nested(21, json!(7)), "shallow": nested(2, json!(2))})
            .as_object()
            .cloned()
            .unwrap_or_default();
    v.push(bare);
    let long = "x".repeat(300);
    let mut r = rec(
        &format!("Ünïcödé straße: hello world; before {long} after \"quoted\""),
        "notice",
        "",
        "uni-01",
        &["note:a\nb", "team:core", "bare"],
        json!({"codes": [200, 404], "items": [{"id": 1}, {"id": 2}], "list": ["a", "b"], "a.b": 5,
               "note": "line one\nline two", "when": "2023-11-14T22:13:20Z", "ips": ["10.1.1.1", "::1", "nope"]}),
    );
    r.source = None;
    v.push(r);
    v.push(rec(
        "numbers as text and floats: line?two",
        "ok",
        "calc",
        "calc-02",
        &["env:prod", "version:2.0"],
        json!({"str_num": "200", "float": 200.0, "flag": true, "neg": -5, "a": {"b": 6},
               "note": "line?two", "ips": "192.168.7.7", "empty": null}),
    ));
    for (i, r) in v.iter_mut().enumerate() {
        r.ts_ns = T0 + i as i64 * 1_000_000_000;
    }
    v
}

const QUERIES: &[&str] = &[
    "",
    "*",
    "upstream",
    "UPSTREAM",
    "connection",
    "apNjkATwdFGD",
    "apnjkatwdfgd",
    "user_id",
    "user",
    "db-01",
    "550e8400-e29b-41d4-a716-446655440000",
    "/api/v1/orders",
    "10.0.0.5",
    "\"upstream timeout\"",
    "\"timeout upstream\"",
    "\"Connection refused\"",
    "retr*",
    "*fused",
    "*nnect*",
    "up?tream",
    "service:web",
    "status:error",
    "status:ERROR",
    "host:web-01",
    "service:w*",
    "host:*-01",
    "env:prod",
    "env:staging",
    "version:1.2.3",
    "team:*",
    "source:app",
    "@http.method:GET",
    "@http.method:get",
    "@http.url:/api/v1/orders",
    "@http.url:*orders",
    "@db.name:orders_*",
    "@usr.id:apNjkATwdFGD",
    "@cache.hit:true",
    "@cache.key:user\\:42",
    "@http.status_code:404",
    "@http.status_code:>=500",
    "@http.status_code:>404",
    "@http.status_code:<404",
    "@http.status_code:<=404",
    "@http.status_code:[400 TO 499]",
    "@http.status_code:[400 TO 500]",
    "@http.status_code:{404 TO 503}",
    "@http.status_code:[500 TO *]",
    "@duration:>1000",
    "@duration:[2200.5 TO 2200.5]",
    "@disk.used_pct:>90",
    "@attempt:3",
    "@http:*",
    "@http.url:*",
    "-@http:*",
    "@nope:*",
    "-status:error",
    "NOT status:error",
    "-env:prod",
    "service:web -@http.status_code:200",
    "-@http.method:GET",
    "service:web status:error",
    "service:web AND status:error",
    "service:web OR service:worker",
    "service:(web OR worker)",
    "service:(web OR worker) status:error",
    "status:error OR status:warning service:web",
    "(status:error OR status:warning) service:web",
    "@http.method:(GET OR POST) -status:error",
    "upstream OR refused",
    "env:prod (timeout OR unavailable)",
    "CIDR(@network.client.ip, 10.0.0.0/8)",
    "CIDR(@network.client.ip, 10.0.0.0/24)",
    "CIDR(@network.client.ip, 192.168.0.0/16)",
    "CIDR(@network.client.ip, 2001:db8::/32)",
    "-CIDR(@network.client.ip, 10.0.0.0/8)",
    "*:orders_db",
    "*:web-02",
    "@expr:\\(a\\+b\\)\\*c",
    "\"(a+b)*c\"",
    "10\\:30",
    "trace_id:abc123",
    "span_id:*",
    "trace_id:*",
    "-trace_id:*",
    "service:*",
    "-host:*",
    "host:*",
    "status:ERR*",
    "status:err?r",
    "*:abc123",
    "*:Orders_DB",
    "*:orders*",
    "*:*db",
    "*:app",
    "\\\"quoted\\\" OR quoted",
    "straße",
    "ÜNÏCÖDÉ",
    "ünï*",
    "\"hello world\"",
    "\"before after\"",
    "before",
    "after",
    "@codes:404",
    "@codes:>300",
    "@codes:[* TO *]",
    "@codes:*",
    "@items.id:2",
    "@items.id:>1",
    "@items:*",
    "@list:b",
    "@list:*",
    "@a.b:5",
    "@a.b:>4",
    "@a:*",
    "@a.b:*",
    "@deep.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15.l16.l17.l18.l19.l20.l21:*",
    "@deep.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15.l16.l17.l18.l19.l20.l21:7",
    "@deep.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15.l16.l17.l18.l19.l20.l21:>6",
    "@deep.l2.l3.l4.l5.l6.l7.l8.l9.l10.l11.l12.l13.l14.l15.l16.l17.l18.l19.l20.l21:[* TO *]",
    "@shallow.l2:*",
    "@shallow.l2:>1",
    "@note:*",
    "@note:line*",
    "@note:line?two",
    "note:*",
    "note:a*",
    "-note:*",
    "@when:*",
    "@when:>0",
    "@when:2023*",
    "@when:[* TO *]",
    "@str_num:200",
    "@str_num:>100",
    "@float:200",
    "@float:200.0",
    "@float:2e2",
    "@float:<=200",
    "@flag:true",
    "@flag:1",
    "@flag:>0",
    "@neg:-5",
    "@neg:<0",
    "@neg:[-10 TO -5]",
    "@neg:{-5 TO 0}",
    "CIDR(@ips, 10.0.0.0/8)",
    "CIDR(@ips, ::1/128)",
    "CIDR(@ips, 0.0.0.0/0)",
    "CIDR(@ips, ::/0)",
    "-CIDR(@ips, 192.168.0.0/16)",
    "CIDR(@network.client.ip, 10.0.0.0/8, 2001:db8::/32)",
    "-*",
    "NOT (service:web OR service:auth)",
    "-(-status:error)",
    "service:web OR -env:prod",
    "\"\"",
    "service:\"\"",
    "*:\"\"",
    "-\"\"",
    "@empty:\"\"",
    "@empty:*",
    "empty_msg:*",
    "env:*prod",
    "env:?rod",
    "team:co*",
    "version:1.*",
    "-version:*",
    "@http.status_code:200.0",
    "@http.status_code:2e2",
    "@duration:2200.5",
    "@duration:{12 TO 1500}",
    "@http.status_code:[200 TO 404} @http.method:GET",
    "db",
    "01",
    "db 01",
    "\"db 01\"",
    "*01",
    "user*",
    "10\\:30 OR price",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matcher_agrees_with_the_index() {
    let records = corpus();
    let (_dir, store) = test_util::log_store_with(records.clone()).await;

    let mut failures = Vec::new();
    let mut refused = 0;
    for q in QUERIES {
        let expr = parse_search(q).unwrap_or_else(|e| panic!("{q:?}: {e}"));
        let in_memory: BTreeSet<usize> = (0..records.len())
            .filter(|&i| matches(&expr, &records[i]))
            .collect();
        let searched = store.search(&LogSearch {
            expr,
            from_ns: T0,
            to_ns: T0 + 3_600_000_000_000,
            order: SortOrder::Asc,
            limit: 1000,
            after: None,
        });
        let indexed: BTreeSet<usize> = match searched {
            Ok(page) => page
                .hits
                .iter()
                .map(|h| ((h.record.ts_ns - T0) / 1_000_000_000) as usize)
                .collect(),
            // A search the index refuses matches nothing in memory.
            Err(_) => {
                refused += 1;
                BTreeSet::new()
            }
        };
        if in_memory != indexed {
            failures.push(format!("{q:?}: index {indexed:?}, matcher {in_memory:?}"));
        }
    }
    assert!(QUERIES.len() >= 40 && records.len() >= 15);
    assert!(refused < QUERIES.len() / 10, "{refused} searches refused");
    assert!(
        failures.is_empty(),
        "{} of {} searches differ:\n{}",
        failures.len(),
        QUERIES.len(),
        failures.join("\n")
    );
}
