//! Table-driven tests of the monitor query parser: valid forms of every monitor type, and malformed
//! queries with the byte position and a piece of the message they are refused with.

use super::*;
use proptest::prelude::*;

/// What a case should give: the parsed query, or an error at a byte position whose message contains a
/// piece of text.
enum Want {
    Ok(MonitorQuery),
    Err(usize, &'static str),
}

fn check(kind: &str, input: &str, expected: Want) {
    let got = parse_monitor_query(kind, input);
    match (expected, got) {
        (Want::Ok(want), Ok(q)) => assert_eq!(q, want, "{kind}: {input}"),
        (Want::Err(pos, piece), Err(e)) => {
            assert_eq!(e.position, pos, "{kind}: {input}: {e}");
            assert!(
                e.message.contains(piece),
                "{kind}: {input}: message {:?} lacks {piece:?}",
                e.message
            );
            assert_eq!(e.message, e.message.to_lowercase(), "{kind}: {input}");
            assert!(input.is_char_boundary(e.position.min(input.len())));
        }
        (Want::Ok(want), Err(e)) => panic!("{kind}: {input}: expected {want:?}, got error {e}"),
        (Want::Err(pos, piece), Ok(q)) => {
            panic!("{kind}: {input}: expected error at {pos} ({piece}), got {q:?}")
        }
    }
}

fn metric(
    time_agg: TimeAgg,
    window_secs: i64,
    change: Option<Change>,
    query: &str,
    comparator: Comparator,
    threshold: f64,
) -> Want {
    Want::Ok(MonitorQuery::Metric {
        time_agg,
        window_secs,
        change,
        query: query.to_string(),
        comparator,
        threshold,
    })
}

#[allow(clippy::too_many_arguments)]
fn events(
    source: EventSource,
    search: &str,
    indexes: &[&str],
    rollup: Rollup,
    group_by: &[&str],
    window_secs: i64,
    comparator: Comparator,
    threshold: f64,
) -> Want {
    Want::Ok(MonitorQuery::Events {
        source,
        search: search.to_string(),
        indexes: indexes.iter().map(|s| s.to_string()).collect(),
        rollup,
        group_by: group_by.iter().map(|s| s.to_string()).collect(),
        window_secs,
        comparator,
        threshold,
    })
}

use Comparator::*;
use EventSource::*;

const M: &str = "metric alert";
const Q: &str = "query alert";
const L: &str = "log alert";
const T: &str = "trace-analytics alert";

#[test]
fn valid_metric_monitors() {
    check(
        M,
        "avg(last_5m):avg:system.cpu.user{host:a} by {host} > 80",
        metric(
            TimeAgg::Avg,
            300,
            None,
            "avg:system.cpu.user{host:a} by {host}",
            Gt,
            80.0,
        ),
    );
    check(
        Q,
        "max(last_1h):sum:x{*}.as_count() >= 3",
        metric(TimeAgg::Max, 3600, None, "sum:x{*}.as_count()", Ge, 3.0),
    );
    check(
        M,
        "  min(last_1w) : avg:a.b{env:prod AND NOT host:x}<=-0.5  ",
        metric(
            TimeAgg::Min,
            604_800,
            None,
            "avg:a.b{env:prod AND NOT host:x}",
            Le,
            -0.5,
        ),
    );
    check(
        M,
        "sum(last_1m):per_second(sum:req{*}) / 2 < 1e3",
        metric(
            TimeAgg::Sum,
            60,
            None,
            "per_second(sum:req{*}) / 2",
            Lt,
            1000.0,
        ),
    );
    check(
        M,
        "change(avg(last_5m),last_5m):avg:system.load.1{*} by {host} > 2",
        metric(
            TimeAgg::Avg,
            300,
            Some(Change::Change { shift_secs: 300 }),
            "avg:system.load.1{*} by {host}",
            Gt,
            2.0,
        ),
    );
    check(
        M,
        "pct_change(max(last_4h), 1d_ago):sum:orders{*}.as_count() < -50",
        metric(
            TimeAgg::Max,
            14_400,
            Some(Change::PctChange { shift_secs: 86_400 }),
            "sum:orders{*}.as_count()",
            Lt,
            -50.0,
        ),
    );
    check(
        M,
        "percentile(last_5m):p99:latency{*} > 0.25",
        metric(TimeAgg::Percentile, 300, None, "p99:latency{*}", Gt, 0.25),
    );
    check(
        M,
        "avg(last_5m):p99:http.latency{env:prod} by {service} == 250",
        metric(
            TimeAgg::Avg,
            300,
            None,
            "p99:http.latency{env:prod} by {service}",
            Eq,
            250.0,
        ),
    );
    check(
        M,
        "avg(last_15m):avg:x{!host:a} != 0",
        metric(TimeAgg::Avg, 900, None, "avg:x{!host:a}", Ne, 0.0),
    );
}

#[test]
fn valid_event_monitors() {
    check(
        L,
        r#"logs("service:web status:error").index("*").rollup("count").by("host").last("5m") > 10"#,
        events(
            Logs,
            "service:web status:error",
            &["*"],
            Rollup::Count,
            &["host"],
            300,
            Gt,
            10.0,
        ),
    );
    check(
        L,
        r#"logs("@http.status_code:[500 TO 599]").index("*").rollup("count").last("20m") >= 1"#,
        events(
            Logs,
            "@http.status_code:[500 TO 599]",
            &["*"],
            Rollup::Count,
            &[],
            1200,
            Ge,
            1.0,
        ),
    );
    check(
        L,
        r#"logs("msg:\"disk full\" -env:dev").last("1h") < 1"#,
        events(
            Logs,
            "msg:\"disk full\" -env:dev",
            &["*"],
            Rollup::Count,
            &[],
            3600,
            Lt,
            1.0,
        ),
    );
    check(
        L,
        r#"logs("*").index("main","audit").rollup("cardinality","@usr.id").by("service","env").last("2d") > 100"#,
        events(
            Logs,
            "*",
            &["main", "audit"],
            Rollup::Cardinality("@usr.id".into()),
            &["service", "env"],
            172_800,
            Gt,
            100.0,
        ),
    );
    check(
        T,
        r#"trace-analytics("env:prod service:spellbot").index("trace-search", "djm-search").rollup("avg", "@duration").last("5m") > 6000000000"#,
        events(
            Spans,
            "env:prod service:spellbot",
            &["trace-search", "djm-search"],
            Rollup::Avg("@duration".into()),
            &[],
            300,
            Gt,
            6e9,
        ),
    );
    check(
        T,
        r#" trace-analytics( "service:api" ) . rollup( "pc99" , "@duration" ) . by( "resource_name" ) . last( "15m" ) <= 0.5 "#,
        events(
            Spans,
            "service:api",
            &["*"],
            Rollup::Pct(99.0, "@duration".into()),
            &["resource_name"],
            900,
            Le,
            0.5,
        ),
    );
    check(
        T,
        r#"trace-analytics("service:x").rollup("count").by("env").last("45m") < 1"#,
        events(
            Spans,
            "service:x",
            &["*"],
            Rollup::Count,
            &["env"],
            2700,
            Lt,
            1.0,
        ),
    );
    check(
        L,
        r#"logs("").rollup("max","@bytes").last("1m") > 1e6"#,
        events(
            Logs,
            "",
            &["*"],
            Rollup::Max("@bytes".into()),
            &[],
            60,
            Gt,
            1e6,
        ),
    );
}

#[test]
fn malformed_monitors() {
    // the monitor type and the form
    check(
        "service check",
        "avg(last_5m):x{*} > 1",
        Want::Err(0, "unknown monitor type"),
    );
    check(
        M,
        r#"logs("a").last("5m") > 1"#,
        Want::Err(0, "logs(…) is a log alert query, not a metric alert query"),
    );
    check(
        L,
        "avg(last_5m):avg:x{*} > 1",
        Want::Err(0, "avg(…) is a metric alert query, not a log alert query"),
    );
    check(
        L,
        r#"  trace-analytics("a").last("5m") > 1"#,
        Want::Err(
            2,
            "trace-analytics(…) is a trace-analytics alert query, not a log alert query",
        ),
    );
    check(
        T,
        r#"logs("a").last("5m") > 1"#,
        Want::Err(0, "not a trace-analytics alert query"),
    );
    check(
        M,
        "median(last_5m):x{*} > 1",
        Want::Err(0, "unknown monitor function \"median\""),
    );
    check(M, "   ", Want::Err(3, "expected a metric alert query"));
    // metric forms
    check(
        M,
        "avg(last_5m):avg:x{*}",
        Want::Err(21, "expected a comparator"),
    );
    check(
        M,
        "avg(last_5m):avg:x{*}   ",
        Want::Err(21, "expected a comparator"),
    );
    check(
        M,
        "avg(last_5m):avg:x{*} 80",
        Want::Err(22, "in the metric query"),
    );
    check(
        M,
        "avg(last_5x):x{*} > 1",
        Want::Err(4, "bad window \"last_5x\""),
    );
    check(M, "avg(5m):x{*} > 1", Want::Err(4, "bad window \"5m\""));
    check(
        M,
        "avg(last_2w):x{*} > 1",
        Want::Err(4, "1 minute to 1 week"),
    );
    check(M, "avg(last_5m) x{*} > 1", Want::Err(13, "expected \":\""));
    check(M, "avg(last_5m:x{*} > 1", Want::Err(11, "expected \")\""));
    check(
        M,
        "change(avg(last_5m)):x{*} > 1",
        Want::Err(19, "expected \",\" and a time shift"),
    );
    check(
        M,
        "change(avg(last_5m),5m):x{*} > 1",
        Want::Err(20, "bad time shift \"5m\""),
    );
    check(
        M,
        "pct_change(last(last_5m),last_5m):x{*} > 1",
        Want::Err(11, "expected a time aggregation"),
    );
    // the inner metric query, at its offset in the whole text
    check(
        M,
        "avg(last_5m):avg:x{host:a > 1",
        Want::Err(26, "in the metric query"),
    );
    check(
        M,
        "avg(last_5m):avg:x{*}.bogus() > 1",
        Want::Err(22, "in the metric query"),
    );
    check(M, "avg(last_5m): > 1", Want::Err(14, "in the metric query"));
    check(
        M,
        "avg(last_5m):avg:x{*}, avg:y{*} > 1",
        Want::Err(23, "one metric query"),
    );
    check(
        M,
        "percentile(last_5m):avg:latency{*} > 1",
        Want::Err(20, "percentile space aggregator"),
    );
    // comparator, threshold, trailing garbage
    check(
        M,
        "avg(last_5m):x{*} > ",
        Want::Err(20, "expected a threshold number after \">\""),
    );
    check(
        M,
        "avg(last_5m):x{*} > abc",
        Want::Err(20, "expected a threshold number"),
    );
    check(
        M,
        "avg(last_5m):x{*} > 80 or 90",
        Want::Err(23, "unexpected text after the threshold"),
    );
    check(
        M,
        "avg(last_5m):x{*} > 1e999",
        Want::Err(20, "expected a threshold number"),
    );
    // event forms
    check(
        L,
        r#"logs("service:web").last("5m) > 1"#,
        Want::Err(25, "unterminated quote"),
    );
    check(
        L,
        r#"logs("service:web"#,
        Want::Err(5, "unterminated quote"),
    );
    check(
        L,
        r#"logs(service:web).last("5m") > 1"#,
        Want::Err(5, "expected a quoted search"),
    );
    check(
        L,
        r#"logs("service:web (a").last("5m") > 1"#,
        Want::Err(18, "in the search"),
    );
    check(
        L,
        r#"logs("x \"y\" (a").last("5m") > 1"#,
        Want::Err(14, "in the search"),
    );
    check(
        L,
        r#"logs("a").index("*").rollup("count") > 1"#,
        Want::Err(37, "expected .last("),
    );
    check(
        L,
        r#"logs("a").last("5x") > 1"#,
        Want::Err(15, "bad window \"5x\""),
    );
    check(
        L,
        r#"logs("a").last("3d") > 1"#,
        Want::Err(15, "1 minute to 2 days"),
    );
    check(
        L,
        r#"logs("a").last("1w") > 1"#,
        Want::Err(15, "bad window"),
    );
    check(
        L,
        r#"logs("a").lats("5m") > 1"#,
        Want::Err(10, "unknown method \"lats\""),
    );
    check(
        L,
        r#"logs("a").rollup("count").rollup("count").last("5m") > 1"#,
        Want::Err(26, ".rollup(…) is given twice"),
    );
    check(
        L,
        r#"logs("a").last("5m").by("host") > 1"#,
        Want::Err(21, "must come before .last"),
    );
    check(
        L,
        r#"logs("a").rollup("p99","@d").last("5m") > 1"#,
        Want::Err(17, "unknown rollup method \"p99\""),
    );
    check(
        L,
        r#"logs("a").rollup("avg").last("5m") > 1"#,
        Want::Err(17, "needs a facet or measure"),
    );
    check(
        L,
        r#"logs("a").rollup("count","@d").last("5m") > 1"#,
        Want::Err(25, "takes no measure"),
    );
    check(
        L,
        r#"logs("a").last("5m") 1"#,
        Want::Err(21, "expected a comparator"),
    );
    check(
        L,
        r#"logs("a").last("5m") > 1 )"#,
        Want::Err(25, "unexpected text"),
    );
    check(
        L,
        r#"logs("a").by("a" "b").last("5m") > 1"#,
        Want::Err(17, "expected \",\" or \")\""),
    );
    check(
        L,
        r#"logs("a").by().last("5m") > 1"#,
        Want::Err(10, "at least one facet"),
    );
}

#[test]
fn error_display_names_position() {
    let e = parse_monitor_query(M, "avg(last_5m):x{*}").unwrap_err();
    assert_eq!(e.to_string(), format!("at position 17: {}", e.message));
}

#[test]
fn comparator_holds() {
    assert!(Gt.holds(2.0, 1.0) && !Gt.holds(1.0, 1.0));
    assert!(Ge.holds(1.0, 1.0) && Le.holds(1.0, 1.0) && Lt.holds(0.0, 1.0));
    assert!(Eq.holds(1.0, 1.0) && Ne.holds(2.0, 1.0));
}

fn check_any(kind: &str, text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = parse_monitor_query(kind, text) {
        prop_assert!(e.position <= text.len(), "{:?}: {}", text, e);
        prop_assert!(text.is_char_boundary(e.position), "{:?}: {}", text, e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        for kind in [M, L, T] {
            check_any(kind, &text)?;
        }
    }

    #[test]
    fn syntax_heavy_metric_never_panics(
        text in "(avg|change|pct_change|percentile)?[a-z_0-9() ,:{}*<>=!.\"\\\\é-]{0,40}",
    ) {
        check_any(M, &text)?;
    }

    #[test]
    fn syntax_heavy_events_never_panic(
        text in "(logs|trace-analytics)?[a-z_0-9() ,:.\"\\\\@<>=é*-]{0,50}",
    ) {
        check_any(L, &text)?;
        check_any(T, &text)?;
    }
}
