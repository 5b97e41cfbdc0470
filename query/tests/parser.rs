//! Parser table tests (one `check` helper, trees or errors with positions) and property tests (print a random
//! tree and re-parse it; arbitrary input never panics; random queries evaluate without panicking).

use proptest::prelude::*;
use sightline_query::ast::*;
use sightline_query::parse;

// ---- builders for expected trees (positions are cleared before comparing) ----

fn ex(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

fn num(n: f64) -> Expr {
    ex(ExprKind::Number(n))
}

fn metric(agg: Option<SpaceAgg>, name: &str, scope: Scope, by: &[&str], mods: &[Modifier]) -> Expr {
    ex(ExprKind::Metric(MetricQuery {
        space_agg: agg,
        metric: name.to_string(),
        metric_span: Span::default(),
        scope,
        group_by: by.iter().map(|s| s.to_string()).collect(),
        modifiers: mods.to_vec(),
    }))
}

/// `agg:name{*}` with no grouping or modifiers.
fn simple(agg: SpaceAgg, name: &str) -> Expr {
    metric(Some(agg), name, Scope::All, &[], &[])
}

fn f(tag: &str) -> ScopeExpr {
    ScopeExpr::Filter(Filter {
        negated: false,
        tag: tag.to_string(),
    })
}

fn nf(tag: &str) -> ScopeExpr {
    ScopeExpr::Filter(Filter {
        negated: true,
        tag: tag.to_string(),
    })
}

fn scope(e: ScopeExpr) -> Scope {
    Scope::Expr(e)
}

fn bin(op: BinOp, l: Expr, r: Expr) -> Expr {
    ex(ExprKind::Binary {
        op,
        lhs: Box::new(l),
        rhs: Box::new(r),
    })
}

fn call(func: Func, arg: Expr, params: Vec<Param>) -> Expr {
    ex(ExprKind::Call {
        func,
        arg: Box::new(arg),
        params,
    })
}

enum Want<'a> {
    Ast(Vec<Expr>),
    /// The error's position and its full Display text.
    Err(usize, &'a str),
}

fn check(input: &str, want: Want) {
    let got = parse(input);
    match want {
        Want::Ast(exprs) => {
            let mut q = got.unwrap_or_else(|e| panic!("{input:?}: {e}"));
            q.exprs.iter_mut().for_each(clear_spans);
            assert_eq!(q.exprs, exprs, "input {input:?}");
            // The printed form parses back to the same tree.
            let printed = q.to_string();
            let mut again = parse(&printed).unwrap_or_else(|e| panic!("reparse {printed:?}: {e}"));
            again.exprs.iter_mut().for_each(clear_spans);
            assert_eq!(again, q, "printed {printed:?}");
        }
        Want::Err(pos, text) => {
            let e = got.expect_err(input);
            assert_eq!(
                (e.pos, e.to_string().as_str()),
                (pos, text),
                "input {input:?}"
            );
        }
    }
}

use SpaceAgg::*;
use Want::{Ast, Err as Fails};

#[test]
fn table() {
    check(
        "avg:system.cpu.user{*}",
        Ast(vec![simple(Avg, "system.cpu.user")]),
    );
    check(
        "system.load.1{*}",
        Ast(vec![metric(None, "system.load.1", Scope::All, &[], &[])]),
    );
    check(
        "system.load.1",
        Ast(vec![metric(None, "system.load.1", Scope::All, &[], &[])]),
    );
    check(
        "sum:requests{env:prod} by {host}",
        Ast(vec![metric(
            Some(Sum),
            "requests",
            scope(f("env:prod")),
            &["host"],
            &[],
        )]),
    );
    check(
        "sum:requests{env:prod,!host:a} by {host, az}",
        Ast(vec![metric(
            Some(Sum),
            "requests",
            scope(ScopeExpr::And(vec![f("env:prod"), nf("host:a")])),
            &["host", "az"],
            &[],
        )]),
    );
    check(
        "max:m{-env:dev, host:web-*, role:*-db, bare}",
        Ast(vec![metric(
            Some(Max),
            "m",
            scope(ScopeExpr::And(vec![
                nf("env:dev"),
                f("host:web-*"),
                f("role:*-db"),
                f("bare"),
            ])),
            &[],
            &[],
        )]),
    );
    check(
        "p99.9:latency{*}",
        Ast(vec![simple(Percentile(99.9), "latency")]),
    );
    check(
        "p50:latency{*}",
        Ast(vec![simple(Percentile(50.0), "latency")]),
    );
    check(
        "p95:p50.latency{*}",
        Ast(vec![simple(Percentile(95.0), "p50.latency")]),
    );
    check("count:x{*}", Ast(vec![simple(Count, "x")]));
    check("min:x{ * }", Ast(vec![simple(Min, "x")]));
    check("min:x{*, *}", Ast(vec![simple(Min, "x")]));
    check(
        "min:x{*,env:a}",
        Ast(vec![metric(Some(Min), "x", scope(f("env:a")), &[], &[])]),
    );
    check(
        "sum:hits{*}.as_count()",
        Ast(vec![metric(
            Some(Sum),
            "hits",
            Scope::All,
            &[],
            &[Modifier::AsCount],
        )]),
    );
    check(
        "sum:hits{*} by {host}.as_rate().rollup(sum, 60).fill(zero)",
        Ast(vec![metric(
            Some(Sum),
            "hits",
            Scope::All,
            &["host"],
            &[
                Modifier::AsRate,
                Modifier::Rollup {
                    func: Some(RollupFn::Sum),
                    interval: Some(60),
                },
                Modifier::Fill {
                    mode: FillMode::Zero,
                    limit: None,
                },
            ],
        )]),
    );
    check(
        "avg:x{*}.rollup(120).fill(last, 300)",
        Ast(vec![metric(
            Some(Avg),
            "x",
            Scope::All,
            &[],
            &[
                Modifier::Rollup {
                    func: None,
                    interval: Some(120),
                },
                Modifier::Fill {
                    mode: FillMode::Last,
                    limit: Some(300),
                },
            ],
        )]),
    );
    check(
        "avg:x{*}.rollup(max)",
        Ast(vec![metric(
            Some(Avg),
            "x",
            Scope::All,
            &[],
            &[Modifier::Rollup {
                func: Some(RollupFn::Max),
                interval: None,
            }],
        )]),
    );
    check(
        "avg:x{env:prod AND (host:a OR host:b)}",
        Ast(vec![metric(
            Some(Avg),
            "x",
            scope(ScopeExpr::And(vec![
                f("env:prod"),
                ScopeExpr::Or(vec![f("host:a"), f("host:b")]),
            ])),
            &[],
            &[],
        )]),
    );
    check(
        "avg:x{a:1 OR b:2 AND c:3}",
        Ast(vec![metric(
            Some(Avg),
            "x",
            scope(ScopeExpr::Or(vec![
                f("a:1"),
                ScopeExpr::And(vec![f("b:2"), f("c:3")]),
            ])),
            &[],
            &[],
        )]),
    );
    check(
        "avg:x{NOT env:dev}",
        Ast(vec![metric(
            Some(Avg),
            "x",
            scope(ScopeExpr::Not(Box::new(f("env:dev")))),
            &[],
            &[],
        )]),
    );
    check(
        "avg:x{host IN (a, b,c) AND env NOT IN (dev)}",
        Ast(vec![metric(
            Some(Avg),
            "x",
            scope(ScopeExpr::And(vec![
                ScopeExpr::In {
                    key: "host".into(),
                    values: vec!["a".into(), "b".into(), "c".into()],
                    negated: false,
                },
                ScopeExpr::In {
                    key: "env".into(),
                    values: vec!["dev".into()],
                    negated: true,
                },
            ])),
            &[],
            &[],
        )]),
    );
    check(
        "avg:x{Env:Prod}",
        Ast(vec![metric(Some(Avg), "x", scope(f("env:Prod")), &[], &[])]),
    );
    check(
        "avg:x{url:http://a/b}",
        Ast(vec![metric(
            Some(Avg),
            "x",
            scope(f("url:http://a/b")),
            &[],
            &[],
        )]),
    );
    check(
        "avg:a{*} + avg:b{*} * 2",
        Ast(vec![bin(
            BinOp::Add,
            simple(Avg, "a"),
            bin(BinOp::Mul, simple(Avg, "b"), num(2.0)),
        )]),
    );
    check(
        "(avg:a{*} + avg:b{*}) / 2",
        Ast(vec![bin(
            BinOp::Div,
            bin(BinOp::Add, simple(Avg, "a"), simple(Avg, "b")),
            num(2.0),
        )]),
    );
    check(
        "1 - 2 - 3",
        Ast(vec![bin(
            BinOp::Sub,
            bin(BinOp::Sub, num(1.0), num(2.0)),
            num(3.0),
        )]),
    );
    check(
        "-1.5e3 * 2",
        Ast(vec![bin(BinOp::Mul, num(-1500.0), num(2.0))]),
    );
    check(
        "-avg:a{*}",
        Ast(vec![ex(ExprKind::Neg(Box::new(simple(Avg, "a"))))]),
    );
    check(
        "avg:a{*}, sum:b{*} by {host}",
        Ast(vec![
            simple(Avg, "a"),
            metric(Some(Sum), "b", Scope::All, &["host"], &[]),
        ]),
    );
    check(
        "abs(avg:a{*})",
        Ast(vec![call(Func::Abs, simple(Avg, "a"), vec![])]),
    );
    check(
        "timeshift(avg:a{*}, -3600)",
        Ast(vec![call(
            Func::Timeshift,
            simple(Avg, "a"),
            vec![Param::Number(-3600.0)],
        )]),
    );
    check(
        "top(avg:a{*} by {host}, 10, 'mean', 'desc')",
        Ast(vec![call(
            Func::Top,
            metric(Some(Avg), "a", Scope::All, &["host"], &[]),
            vec![
                Param::Number(10.0),
                Param::Str("mean".into()),
                Param::Str("desc".into()),
            ],
        )]),
    );
    check(
        "ewma_10(per_second(sum:c{*}.as_count())) * 60",
        Ast(vec![bin(
            BinOp::Mul,
            call(
                Func::Ewma10,
                call(
                    Func::PerSecond,
                    metric(Some(Sum), "c", Scope::All, &[], &[Modifier::AsCount]),
                    vec![],
                ),
                vec![],
            ),
            num(60.0),
        )]),
    );
    check(
        "default_zero(cumsum(diff(avg:a{*})))",
        Ast(vec![call(
            Func::DefaultZero,
            call(
                Func::Cumsum,
                call(Func::Diff, simple(Avg, "a"), vec![]),
                vec![],
            ),
            vec![],
        )]),
    );

    // ---- errors, with positions ----
    check(
        "avg:x{env:prod",
        Fails(
            14,
            "at position 14: expected \"}\" after scope, found end of query",
        ),
    );
    check(
        "avg:x{env:prod host:a}",
        Fails(
            15,
            "at position 15: expected \"}\" after scope, found \"host\"",
        ),
    );
    check(
        "foo:x{*}",
        Fails(0, "at position 0: unknown space aggregator \"foo\""),
    );
    check(
        "p101:x{*}",
        Fails(0, "at position 0: unknown space aggregator \"p101\""),
    );
    check(
        "frob(avg:x{*})",
        Fails(0, "at position 0: unknown function \"frob\""),
    );
    check(
        "avg:x{*}.rollup(median)",
        Fails(16, "at position 16: unknown rollup function \"median\"; expected avg, sum, min, max or count"),
    );
    check(
        "avg:x{*}.fill(previous)",
        Fails(
            14,
            "at position 14: unknown fill mode \"previous\"; expected null, zero, linear or last",
        ),
    );
    check(
        "avg:x{*}.rollup(sum, 0)",
        Fails(
            21,
            "at position 21: expected a positive number of seconds in .rollup(), found \"0\"",
        ),
    );
    check(
        "avg:x{*}.as_cnt()",
        Fails(9, "at position 9: unknown modifier \"as_cnt\"; expected as_count, as_rate, rollup or fill"),
    );
    check(
        "avg:x{*} by {host",
        Fails(
            17,
            "at position 17: expected \",\" or \"}\" in \"by {…}\", found end of query",
        ),
    );
    check(
        "avg:x{*} +",
        Fails(
            10,
            "at position 10: expected a metric query, a number or a function, found end of query",
        ),
    );
    check(
        "",
        Fails(
            0,
            "at position 0: expected a metric query, a number or a function, found end of query",
        ),
    );
    check(
        "(avg:x{*}",
        Fails(
            9,
            "at position 9: expected \")\" to close \"(\", found end of query",
        ),
    );
    check(
        "avg:x{*} avg:y{*}",
        Fails(
            9,
            "at position 9: expected an operator, \",\" or end of query, found \"avg\"",
        ),
    );
    check(
        "timeshift(avg:x{*})",
        Fails(0, "at position 0: timeshift() needs one whole number of seconds, as in timeshift(query, -3600)"),
    );
    check(
        "top(avg:x{*}, 10, 'median')",
        Fails(0, "at position 0: top() ranking must be one of mean, min, max, last, area, l2norm, norm, found 'median'"),
    );
    check(
        "abs(avg:x{*}, 3)",
        Fails(0, "at position 0: abs() takes only a query"),
    );
    check(
        "avg:x{host IN (a, b}",
        Fails(
            19,
            "at position 19: expected \",\" or \")\" in IN (…), found \"}\"",
        ),
    );
    check(
        "avg:x{(a OR b}",
        Fails(
            13,
            "at position 13: expected \")\" to close \"(\" in scope, found \"}\"",
        ),
    );
    check(
        "avg:x{}",
        Fails(
            6,
            "at position 6: expected a tag filter in scope, found \"}\"",
        ),
    );
    check(
        "avg:x.{*}",
        Fails(4, "at position 4: invalid metric name \"x.\""),
    );
    check(
        "avg:{*}",
        Fails(4, "at position 4: expected a metric name, found \"{\""),
    );
    check(
        "avg:x{*}.",
        Fails(
            9,
            "at position 9: expected a modifier after \".\", found end of query",
        ),
    );
    check(
        "avg:x{*} by",
        Fails(
            11,
            "at position 11: expected \"{\" after \"by\", found end of query",
        ),
    );
    check(
        "avg:x{:a}",
        Fails(6, "at position 6: tag filter \":a\" has an empty key"),
    );
    // At most 1000 nodes (operators, calls, metric terms, numbers) per query; the error points at the first
    // node over the budget. `1+1+…`: node k starts at byte k - 1, so node 1001 at byte 1000.
    check(
        &chain("1", 5000),
        Fails(
            1000,
            "at position 1000: query is too complex: more than 1000 terms and operators",
        ),
    );
    check(
        &chain("1", 501),
        Fails(
            1000,
            "at position 1000: query is too complex: more than 1000 terms and operators",
        ),
    );
    check(
        &chain("avg:a{*}", 5000),
        Fails(
            4500,
            "at position 4500: query is too complex: more than 1000 terms and operators",
        ),
    );
    // Calls count too: each `abs(1)` is two nodes, each `+` one; node 1001 is the `1` of the 334th call,
    // at 7 * 333 + 4.
    check(
        &chain("abs(1)", 400),
        Fails(
            2335,
            "at position 2335: query is too complex: more than 1000 terms and operators",
        ),
    );
    // The budget is per query, across its comma-separated expressions.
    check(
        &vec!["1"; 1001].join(","),
        Fails(
            2000,
            "at position 2000: query is too complex: more than 1000 terms and operators",
        ),
    );
    // The largest chains within the budget parse to the left-nested tree. (Not through `check`: the printed
    // form parenthesizes every level, deeper than the nesting limit.)
    for (term, tree, n) in [
        ("1", num(1.0), 500),
        ("avg:a{*}", simple(Avg, "a"), 500),
        ("1", num(1.0), 450),
    ] {
        let input = chain(term, n);
        let mut q = parse(&input).unwrap_or_else(|e| panic!("{n} x {term}: {e}"));
        q.exprs.iter_mut().for_each(clear_spans);
        let want = (1..n).fold(tree.clone(), |acc, _| bin(BinOp::Add, acc, tree.clone()));
        assert_eq!(q.exprs, vec![want], "{n} x {term}");
    }
}

/// `term+term+…`, `n` terms.
fn chain(term: &str, n: usize) -> String {
    vec![term; n].join("+")
}

#[test]
fn spans_point_into_the_query() {
    let q = parse("avg:a{*} + sum:bb{x:y}").unwrap();
    let ExprKind::Binary { rhs, .. } = &q.exprs[0].kind else {
        panic!("not binary")
    };
    assert_eq!(rhs.span, Span::new(11, 22));
    let ExprKind::Metric(m) = &rhs.kind else {
        panic!("not a metric")
    };
    assert_eq!(m.metric_span, Span::new(15, 17));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}avg:x{{*}}{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = parse(&deep).unwrap_err();
    assert!(e.message.contains("nests deeper"), "{e}");
    let deep_scope = format!("avg:x{{{}a{}}}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&deep_scope).is_err());
    let negs = format!("{}1", "-".repeat(10_000));
    assert!(parse(&negs).is_err());
}

#[test]
fn largest_queries_evaluate_print_and_drop_on_a_small_stack() {
    // The server evaluates on 2 MiB blocking threads; the deepest trees the budget admits (a long chain inside
    // the deepest nesting) must fit even in a debug build.
    let queries = [
        format!(
            "{}{}{}",
            "abs(".repeat(62),
            chain("avg:g{*}", 469),
            ")".repeat(62)
        ),
        format!("{}({})", "-".repeat(62), chain("1", 500)),
        chain("avg:g{*} by {a}", 500),
    ];
    for q in queries {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let parsed = parse(&q).unwrap_or_else(|e| panic!("{e}"));
                assert!(!parsed.to_string().is_empty());
                let opts = sightline_query::EvalOptions::default();
                let store = eval_store();
                let out =
                    sightline_query::evaluate(&parsed, 1_699_990_000, 1_700_010_000, &store, &opts)
                        .unwrap_or_else(|e| panic!("{e}"));
                assert!(!out.series.is_empty());
                drop(parsed);
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
    }
}

// ---- property tests ----

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,6}".prop_filter("not a keyword", |s| {
        !matches!(s.as_str(), "and" | "or" | "not" | "in" | "by")
    })
}

fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(ident(), 1..4).prop_map(|v| v.join(".")),
        prop::sample::select(vec![
            "g",
            "c",
            "r",
            "d",
            "h",
            "h.avg",
            "h.count",
            "h.95percentile"
        ])
        .prop_map(String::from),
    ]
}

fn filter() -> impl Strategy<Value = ScopeExpr> {
    (
        any::<bool>(),
        prop::option::of(ident()),
        "[a-z0-9][a-z0-9_./-]{0,5}\\*?",
    )
        .prop_map(|(negated, key, value)| {
            let tag = match key {
                Some(k) => format!("{k}:{value}"),
                None => value,
            };
            ScopeExpr::Filter(Filter { negated, tag })
        })
}

fn scope_expr() -> impl Strategy<Value = ScopeExpr> {
    let leaf = prop_oneof![
        4 => filter(),
        1 => (ident(), prop::collection::vec("[a-z0-9]{1,4}", 1..3), any::<bool>())
            .prop_map(|(key, values, negated)| ScopeExpr::In { key, values, negated }),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(ScopeExpr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(ScopeExpr::Or),
            inner.prop_map(|x| ScopeExpr::Not(Box::new(x))),
        ]
    })
}

fn modifier() -> impl Strategy<Value = Modifier> {
    let rollup_fn = prop_oneof![
        Just(RollupFn::Avg),
        Just(RollupFn::Sum),
        Just(RollupFn::Min),
        Just(RollupFn::Max),
        Just(RollupFn::Count)
    ];
    let fill = prop_oneof![
        Just(FillMode::Null),
        Just(FillMode::Zero),
        Just(FillMode::Linear),
        Just(FillMode::Last)
    ];
    prop_oneof![
        Just(Modifier::AsCount),
        Just(Modifier::AsRate),
        (prop::option::of(rollup_fn), prop::option::of(1u32..100_000))
            .prop_filter("rollup needs something", |(f, i)| f.is_some()
                || i.is_some())
            .prop_map(|(func, interval)| Modifier::Rollup { func, interval }),
        (fill, prop::option::of(1u32..10_000))
            .prop_map(|(mode, limit)| Modifier::Fill { mode, limit }),
    ]
}

fn space_agg() -> impl Strategy<Value = SpaceAgg> {
    prop_oneof![
        Just(Avg),
        Just(Sum),
        Just(Min),
        Just(Max),
        Just(Count),
        (0u32..=1000).prop_map(|t| Percentile(t as f64 / 10.0)),
    ]
}

fn metric_query() -> impl Strategy<Value = Expr> {
    (
        prop::option::of(space_agg()),
        metric_name(),
        prop::option::of(scope_expr()),
        prop::collection::vec(ident(), 0..3),
        prop::collection::vec(modifier(), 0..3),
    )
        .prop_map(|(agg, name, sc, by, mods)| {
            let by: Vec<&str> = by.iter().map(String::as_str).collect();
            metric(
                agg,
                &name,
                sc.map(Scope::Expr).unwrap_or(Scope::All),
                &by,
                &mods,
            )
        })
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        4 => metric_query(),
        1 => (-1e6f64..1e6).prop_map(num),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        let op = prop_oneof![
            Just(BinOp::Add),
            Just(BinOp::Sub),
            Just(BinOp::Mul),
            Just(BinOp::Div)
        ];
        let plain_func = prop::sample::select(
            ALL_FUNCS
                .iter()
                .copied()
                .filter(|f| !matches!(f, Func::Timeshift | Func::Top | Func::Bottom))
                .collect::<Vec<_>>(),
        );
        prop_oneof![
            (op, inner.clone(), inner.clone()).prop_map(|(op, l, r)| bin(op, l, r)),
            inner
                .clone()
                .prop_filter("neg of number folds", |e| !matches!(
                    e.kind,
                    ExprKind::Number(_)
                ))
                .prop_map(|e| ex(ExprKind::Neg(Box::new(e)))),
            (plain_func, inner.clone()).prop_map(|(func, e)| call(func, e, vec![])),
            (inner.clone(), -100_000i64..100_000).prop_map(|(e, s)| call(
                Func::Timeshift,
                e,
                vec![Param::Number(s as f64)]
            )),
            (
                prop_oneof![Just(Func::Top), Just(Func::Bottom)],
                inner,
                1u32..100,
                prop::sample::select(RANKERS.to_vec()),
                prop_oneof![Just("asc"), Just("desc")],
            )
                .prop_map(|(func, e, n, r, d)| call(
                    func,
                    e,
                    vec![
                        Param::Number(n as f64),
                        Param::Str(r.into()),
                        Param::Str(d.into())
                    ]
                )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_then_parse_is_identity(exprs in prop::collection::vec(expr(), 1..3)) {
        let q = Query { exprs };
        let printed = q.to_string();
        let mut back = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
        back.exprs.iter_mut().for_each(clear_spans);
        prop_assert_eq!(back, q, "printed {}", printed);
    }

    #[test]
    fn random_queries_evaluate_without_panic(
        exprs in prop::collection::vec(expr(), 1..3),
        from in 1_699_990_000i64..1_700_010_000,
        len in prop_oneof![1i64..100, 100i64..100_000, Just(400 * 86_400)],
    ) {
        let store = eval_store();
        let q = Query { exprs };
        let opts = sightline_query::EvalOptions::default();
        match sightline_query::evaluate(&q, from, from + len, &store, &opts) {
            Ok(out) => {
                for s in &out.series {
                    prop_assert!(s.points.len() <= opts.max_points + 1, "{} points", s.points.len());
                }
            }
            Err(e) => prop_assert!(e.kind().http_status() == 400, "{q}: {e}"),
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}") {
        if let Err(e) = parse(&s) {
            prop_assert!(e.pos <= s.len());
            prop_assert!(s.is_char_boundary(e.pos));
        }
    }

    #[test]
    fn query_like_strings_never_panic(s in "[a-z0-9:{}(),.*!\\- '_|]{0,60}") {
        if let Err(e) = parse(&s) {
            prop_assert!(e.pos <= s.len());
        }
    }
}

/// A store with one metric of every kind, tagged so random scopes sometimes match.
fn eval_store() -> sightline_storage::MemMetricStore {
    use sightline_model::{
        Limits, MetricBatch, MetricKind, MetricPoint, SeriesKey, Sketch, TagSet, Value,
    };
    let store = sightline_storage::MemMetricStore::new(Limits::default());
    let mut points = Vec::new();
    for (name, kind) in [
        ("g", MetricKind::Gauge),
        ("c", MetricKind::Count),
        ("r", MetricKind::Rate),
        ("d", MetricKind::Distribution),
        ("h", MetricKind::Histogram),
    ] {
        for (i, tags) in [vec!["a:1", "b"], vec!["a:2", "c:x"], vec![]]
            .into_iter()
            .enumerate()
        {
            for k in 0..40i64 {
                let ts = 1_699_990_000 + k * 500 + i as i64 * 10;
                let v = (k as f64 - 10.0) * (i as f64 + 0.5);
                let value = if kind.is_sketch() {
                    let mut s = Sketch::new();
                    s.add(v);
                    s.add(v * 2.0);
                    Value::Sketch(Box::new(s))
                } else {
                    Value::Scalar(v)
                };
                let series =
                    SeriesKey::new(name, TagSet::parse(tags.iter().copied(), 10, 200).unwrap());
                points.push(MetricPoint {
                    series,
                    kind,
                    timestamp: ts,
                    interval: 10,
                    value,
                });
            }
        }
    }
    store.apply(&MetricBatch { points });
    store
}
