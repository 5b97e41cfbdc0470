//! The syntax tree of the Datadog metric query language: schema-free, with byte positions, printable back to
//! query text (`Display`) so that printing and re-parsing gives the same tree.

use std::fmt;

/// A byte range `[start, end)` of the query text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

/// A whole query: one or more comma-separated expressions, each giving its own series group.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub exprs: Vec<Expr>,
}

/// An expression with its position in the query text.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// What an expression is.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A number literal (negative when written with a leading `-`).
    Number(f64),
    /// `space_agg:metric{scope} by {keys}.modifiers`.
    Metric(MetricQuery),
    /// Arithmetic between two expressions.
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `-expr` on anything but a number literal.
    Neg(Box<Expr>),
    /// `func(expr, params…)`.
    Call {
        func: Func,
        arg: Box<Expr>,
        params: Vec<Param>,
    },
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }

    /// Binding strength: `*` and `/` bind tighter than `+` and `-`.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Add | BinOp::Sub => 1,
            BinOp::Mul | BinOp::Div => 2,
        }
    }
}

/// One metric query term.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    /// The space aggregator, if written (`avg` is used when absent).
    pub space_agg: Option<SpaceAgg>,
    pub metric: String,
    /// Where the metric name is in the query text.
    pub metric_span: Span,
    pub scope: Scope,
    /// The `by {…}` tag keys, in the order written.
    pub group_by: Vec<String>,
    pub modifiers: Vec<Modifier>,
}

impl MetricQuery {
    /// The `.rollup(…)` modifier, the last one if several were written.
    pub fn rollup(&self) -> Option<(Option<RollupFn>, Option<u32>)> {
        self.modifiers.iter().rev().find_map(|m| match m {
            Modifier::Rollup { func, interval } => Some((*func, *interval)),
            _ => None,
        })
    }

    /// The `.fill(…)` modifier, the last one if several were written.
    pub fn fill(&self) -> Option<(FillMode, Option<u32>)> {
        self.modifiers.iter().rev().find_map(|m| match m {
            Modifier::Fill { mode, limit } => Some((*mode, *limit)),
            _ => None,
        })
    }

    /// `Some(true)` for `.as_count()`, `Some(false)` for `.as_rate()` (the last one written), else None.
    pub fn as_count(&self) -> Option<bool> {
        self.modifiers.iter().rev().find_map(|m| match m {
            Modifier::AsCount => Some(true),
            Modifier::AsRate => Some(false),
            _ => None,
        })
    }
}

/// A space aggregator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpaceAgg {
    Avg,
    Sum,
    Min,
    Max,
    Count,
    /// `pNN(.N)`: the percentile, in percent (99.9 for `p99.9`).
    Percentile(f64),
}

impl fmt::Display for SpaceAgg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpaceAgg::Avg => f.write_str("avg"),
            SpaceAgg::Sum => f.write_str("sum"),
            SpaceAgg::Min => f.write_str("min"),
            SpaceAgg::Max => f.write_str("max"),
            SpaceAgg::Count => f.write_str("count"),
            SpaceAgg::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

/// Which series of the metric a query reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// `*`: every series.
    All,
    Expr(ScopeExpr),
}

/// A boolean expression over tags. A comma list of filters is an `And`.
#[derive(Debug, Clone, PartialEq)]
pub enum ScopeExpr {
    Filter(Filter),
    /// `key IN (v1, v2)` or `key NOT IN (…)`.
    In {
        key: String,
        values: Vec<String>,
        negated: bool,
    },
    And(Vec<ScopeExpr>),
    Or(Vec<ScopeExpr>),
    Not(Box<ScopeExpr>),
}

/// One tag filter: `key:value`, `key:prefix*`, `key:*suffix`, bare `value`, negated by `!` or `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub negated: bool,
    /// The tag pattern as written (without the negation); `*` is a wildcard in the value.
    pub tag: String,
}

impl Filter {
    /// Whether a series with these tags passes the filter.
    pub fn matches<'a>(&self, mut tags: impl Iterator<Item = &'a str>) -> bool {
        let hit = match self.tag.split_once(':') {
            Some((key, pat)) => tags.any(|t| match t.split_once(':') {
                Some((k, v)) => k == key && wildcard_match(pat, v),
                None => false,
            }),
            None => tags.any(|t| !t.contains(':') && wildcard_match(&self.tag, t)),
        };
        hit != self.negated
    }
}

/// Glob match where `*` stands for any run of characters (and nothing else is special).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl ScopeExpr {
    /// Whether a series with these tags is in the scope.
    pub fn matches(&self, tags: &[&str]) -> bool {
        match self {
            ScopeExpr::Filter(f) => f.matches(tags.iter().copied()),
            ScopeExpr::In {
                key,
                values,
                negated,
            } => {
                let hit = tags.iter().any(|t| match t.split_once(':') {
                    Some((k, v)) => k == key && values.iter().any(|p| wildcard_match(p, v)),
                    None => false,
                });
                hit != *negated
            }
            ScopeExpr::And(xs) => xs.iter().all(|x| x.matches(tags)),
            ScopeExpr::Or(xs) => xs.iter().any(|x| x.matches(tags)),
            ScopeExpr::Not(x) => !x.matches(tags),
        }
    }
}

/// A metric query modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modifier {
    AsCount,
    AsRate,
    /// `.rollup(fn[, seconds])` or `.rollup(seconds)`; at least one of the two is set.
    Rollup {
        func: Option<RollupFn>,
        interval: Option<u32>,
    },
    /// `.fill(mode[, seconds])`.
    Fill {
        mode: FillMode,
        limit: Option<u32>,
    },
}

/// A time aggregator for `.rollup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RollupFn {
    Avg,
    Sum,
    Min,
    Max,
    Count,
}

impl RollupFn {
    pub fn name(self) -> &'static str {
        match self {
            RollupFn::Avg => "avg",
            RollupFn::Sum => "sum",
            RollupFn::Min => "min",
            RollupFn::Max => "max",
            RollupFn::Count => "count",
        }
    }

    pub fn from_name(s: &str) -> Option<RollupFn> {
        Some(match s {
            "avg" => RollupFn::Avg,
            "sum" => RollupFn::Sum,
            "min" => RollupFn::Min,
            "max" => RollupFn::Max,
            "count" => RollupFn::Count,
            _ => return None,
        })
    }
}

/// How `.fill` fills empty intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FillMode {
    Null,
    Zero,
    Linear,
    Last,
}

impl FillMode {
    pub fn name(self) -> &'static str {
        match self {
            FillMode::Null => "null",
            FillMode::Zero => "zero",
            FillMode::Linear => "linear",
            FillMode::Last => "last",
        }
    }

    pub fn from_name(s: &str) -> Option<FillMode> {
        Some(match s {
            "null" => FillMode::Null,
            "zero" => FillMode::Zero,
            "linear" => FillMode::Linear,
            "last" => FillMode::Last,
            _ => return None,
        })
    }
}

/// A function applied to an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    Abs,
    Log2,
    Log10,
    Cumsum,
    Diff,
    Derivative,
    PerSecond,
    PerMinute,
    PerHour,
    Timeshift,
    HourBefore,
    DayBefore,
    WeekBefore,
    MonthBefore,
    Top,
    Bottom,
    Ewma3,
    Ewma5,
    Ewma10,
    Ewma20,
    DefaultZero,
}

/// Every function, for the parser and for tests.
pub const ALL_FUNCS: [Func; 21] = [
    Func::Abs,
    Func::Log2,
    Func::Log10,
    Func::Cumsum,
    Func::Diff,
    Func::Derivative,
    Func::PerSecond,
    Func::PerMinute,
    Func::PerHour,
    Func::Timeshift,
    Func::HourBefore,
    Func::DayBefore,
    Func::WeekBefore,
    Func::MonthBefore,
    Func::Top,
    Func::Bottom,
    Func::Ewma3,
    Func::Ewma5,
    Func::Ewma10,
    Func::Ewma20,
    Func::DefaultZero,
];

impl Func {
    pub fn name(self) -> &'static str {
        match self {
            Func::Abs => "abs",
            Func::Log2 => "log2",
            Func::Log10 => "log10",
            Func::Cumsum => "cumsum",
            Func::Diff => "diff",
            Func::Derivative => "derivative",
            Func::PerSecond => "per_second",
            Func::PerMinute => "per_minute",
            Func::PerHour => "per_hour",
            Func::Timeshift => "timeshift",
            Func::HourBefore => "hour_before",
            Func::DayBefore => "day_before",
            Func::WeekBefore => "week_before",
            Func::MonthBefore => "month_before",
            Func::Top => "top",
            Func::Bottom => "bottom",
            Func::Ewma3 => "ewma_3",
            Func::Ewma5 => "ewma_5",
            Func::Ewma10 => "ewma_10",
            Func::Ewma20 => "ewma_20",
            Func::DefaultZero => "default_zero",
        }
    }

    pub fn from_name(s: &str) -> Option<Func> {
        ALL_FUNCS.iter().copied().find(|f| f.name() == s)
    }
}

/// How `top()` and `bottom()` may rank series.
pub const RANKERS: [&str; 7] = ["mean", "min", "max", "last", "area", "l2norm", "norm"];

/// A parameter of a function after its expression: a number or a quoted string.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Number(f64),
    Str(String),
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Number(n) => write!(f, "{n}"),
            Param::Str(s) => write!(f, "'{s}'"),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.exprs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Number(n) => write!(f, "{n}"),
            ExprKind::Metric(m) => write!(f, "{m}"),
            ExprKind::Binary { op, lhs, rhs } => {
                write_operand(f, lhs)?;
                write!(f, " {} ", op.symbol())?;
                write_operand(f, rhs)
            }
            ExprKind::Neg(e) => {
                f.write_str("-")?;
                write_operand(f, e)
            }
            ExprKind::Call { func, arg, params } => {
                write!(f, "{}({arg}", func.name())?;
                for p in params {
                    write!(f, ", {p}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Operands that are themselves arithmetic (or negative numbers) are parenthesized, so printing never
/// depends on precedence.
fn write_operand(f: &mut fmt::Formatter<'_>, e: &Expr) -> fmt::Result {
    match &e.kind {
        ExprKind::Binary { .. } | ExprKind::Neg(_) => write!(f, "({e})"),
        ExprKind::Number(n) if n.is_sign_negative() => write!(f, "({e})"),
        _ => write!(f, "{e}"),
    }
}

impl fmt::Display for MetricQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(agg) = &self.space_agg {
            write!(f, "{agg}:")?;
        }
        write!(f, "{}{{{}}}", self.metric, self.scope)?;
        if !self.group_by.is_empty() {
            write!(f, " by {{{}}}", self.group_by.join(","))?;
        }
        for m in &self.modifiers {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("*"),
            Scope::Expr(ScopeExpr::And(xs)) => {
                // The top-level AND prints as a comma list, Datadog's usual form.
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_scope_operand(f, x, true)?;
                }
                Ok(())
            }
            Scope::Expr(e) => write!(f, "{e}"),
        }
    }
}

fn write_scope_operand(
    f: &mut fmt::Formatter<'_>,
    e: &ScopeExpr,
    paren_compound: bool,
) -> fmt::Result {
    match e {
        ScopeExpr::And(_) | ScopeExpr::Or(_) if paren_compound => write!(f, "({e})"),
        _ => write!(f, "{e}"),
    }
}

impl fmt::Display for ScopeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeExpr::Filter(flt) => write!(f, "{flt}"),
            ScopeExpr::In {
                key,
                values,
                negated,
            } => {
                write!(
                    f,
                    "{key} {}IN ({})",
                    if *negated { "NOT " } else { "" },
                    values.join(",")
                )
            }
            ScopeExpr::And(xs) | ScopeExpr::Or(xs) => {
                let word = if matches!(self, ScopeExpr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(word)?;
                    }
                    write_scope_operand(f, x, true)?;
                }
                Ok(())
            }
            ScopeExpr::Not(x) => {
                f.write_str("NOT ")?;
                write_scope_operand(f, x, true)
            }
        }
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_str("!")?;
        }
        f.write_str(&self.tag)
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Modifier::AsCount => f.write_str(".as_count()"),
            Modifier::AsRate => f.write_str(".as_rate()"),
            Modifier::Rollup { func, interval } => match (func, interval) {
                (Some(func), Some(i)) => write!(f, ".rollup({}, {i})", func.name()),
                (Some(func), None) => write!(f, ".rollup({})", func.name()),
                (None, Some(i)) => write!(f, ".rollup({i})"),
                (None, None) => f.write_str(".rollup()"),
            },
            Modifier::Fill { mode, limit } => match limit {
                Some(l) => write!(f, ".fill({}, {l})", mode.name()),
                None => write!(f, ".fill({})", mode.name()),
            },
        }
    }
}

/// Resets every position to zero, so trees parsed from differently spaced text compare equal.
pub fn clear_spans(e: &mut Expr) {
    e.span = Span::default();
    match &mut e.kind {
        ExprKind::Number(_) => {}
        ExprKind::Metric(m) => m.metric_span = Span::default(),
        ExprKind::Binary { lhs, rhs, .. } => {
            clear_spans(lhs);
            clear_spans(rhs);
        }
        ExprKind::Neg(x) | ExprKind::Call { arg: x, .. } => clear_spans(x),
    }
}
