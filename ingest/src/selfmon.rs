//! Self-monitoring: Sightline's own `/metrics` text (Prometheus / OpenMetrics exposition, parsed with the
//! `prometheus-parse` crate) turned into metric points for its own store, Datadog-style (issue #6).
//!
//! | Prometheus family (`sightline_<rest>`) | Sightline series                                  | kind    | value                          |
//! |----------------------------------------|---------------------------------------------------|---------|--------------------------------|
//! | counter `sightline_<rest>_total`       | `sightline.<rest>.count`                          | `Count` | delta since the previous scrape |
//! | gauge (and untyped, info)              | `sightline.<rest>`                                | `Gauge` | the value                      |
//! | histogram `_count` / `_sum`            | `sightline.<rest>.count` / `sightline.<rest>.sum` | `Count` | delta since the previous scrape |
//! | histogram `_bucket`                    | `sightline.<rest>.p50` / `sightline.<rest>.p99`   | `Gauge` | quantile of the bucket deltas  |
//! | summary quantiles                      | `sightline.<rest>.quantile` + `quantile:<q>`      | `Gauge` | the value                      |
//! | summary `_count` / `_sum`              | as for histograms                                 | `Count` | delta since the previous scrape |
//!
//! A family without the `sightline_` prefix keeps its whole name after `sightline.`. `_created` samples are
//! dropped. Labels become `key:value` tags (keys lower-cased by the model's tag rules; a label named `host`
//! or `service` becomes `exported_host` / `exported_service`, as Prometheus does on conflicts; empty values
//! are dropped), plus `service:sightline` and `host:<hostname>` on every point. Points carry the scrape time
//! (unix seconds) and the scrape interval.
//!
//! **Deltas.** The previous value of every counter and histogram series (name + labels) is kept between
//! scrapes. The first scrape of a series emits nothing (no baseline); a value lower than the previous one is a
//! reset and emits the new value whole; zero deltas are emitted (a flat line, not a gap). A series missing
//! from a scrape is forgotten and starts again from a baseline. A histogram whose bucket bounds changed emits
//! its count and sum deltas but no quantiles for that interval.
//!
//! **Quantiles** are estimated like PromQL's `histogram_quantile` over the interval's bucket deltas: linear
//! interpolation inside the bucket holding the rank (the first bucket's lower bound is 0 when its upper bound
//! is positive); a rank in the `+Inf` bucket answers the highest finite bound. No observation in the
//! interval: no quantile point.
//!
//! **Malformed text** is refused whole, before any state changes, with an error naming the line: a line that
//! is neither a comment nor a sample, a value that is not a number, a malformed label, a histogram bucket
//! without a numeric `le`. `prometheus-parse` silently skips such lines, so each line goes through its
//! `LineInfo::parse` first. Its regular expressions also cannot read `{`, `}`, `,` or `=` inside label values
//! (axum route templates such as `/api/v1/dashboard/{dashboard_id}`), so before parsing those characters
//! (and escaped quotes) inside quoted label values are swapped for private-use placeholders, which are
//! swapped back in the tag values.

use crate::error::IngestError;
use prometheus_parse::{HistogramCount, LineInfo, SampleType, Scrape, SummaryCount};
use sightline_model::{MetricBatch, MetricKind, MetricPoint, SeriesKey, TagSet, Value};
use std::collections::{BTreeMap, HashMap};

/// The `service` tag of every self-monitoring point.
pub const SERVICE: &str = "sightline";
/// The quantiles estimated from histogram buckets, with their name suffixes.
const QUANTILES: [(f64, &str); 2] = [(0.5, "p50"), (0.99, "p99")];
/// The model's default tag limits (SPEC §9).
const MAX_TAGS: usize = 100;
const MAX_TAG_LEN: usize = 200;
/// Characters the crate cannot read inside label values, and the placeholders standing for them.
const PROTECTED: [(char, char); 6] = [
    ('{', '\u{E000}'),
    ('}', '\u{E001}'),
    (',', '\u{E002}'),
    ('=', '\u{E003}'),
    ('"', '\u{E004}'),
    ('\n', '\u{E005}'),
];

/// The host name for the `host:` tag: `/proc/sys/kernel/hostname`, else `localhost`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Converts successive scrapes of `/metrics` into metric batches, remembering counter and histogram values.
#[derive(Debug)]
pub struct SelfMonitor {
    base_tags: Vec<String>,
    interval_secs: u32,
    previous: HashMap<String, Previous>,
}

/// What the previous scrape held for one series.
#[derive(Debug, Clone, PartialEq)]
enum Previous {
    Counter(f64),
    Histogram(Hist),
}

/// One histogram (or summary) series of a scrape: cumulative count, sum and buckets `(le, cumulative count)`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Hist {
    count: Option<f64>,
    sum: Option<f64>,
    buckets: Vec<(f64, f64)>,
    quantiles: Vec<(f64, f64)>,
}

/// The points of one scrape being built.
struct Out {
    points: Vec<MetricPoint>,
    now: i64,
    interval: u32,
}

impl Out {
    fn push(&mut self, name: String, tags: &TagSet, kind: MetricKind, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.points.push(MetricPoint {
            series: SeriesKey::new(name, tags.clone()),
            kind,
            timestamp: self.now,
            interval: self.interval,
            value: Value::Scalar(value),
        });
    }
}

impl SelfMonitor {
    /// A converter tagging points `host:<host>` and `service:sightline`, for scrapes every `interval_secs`.
    pub fn new(host: &str, interval_secs: u32) -> Self {
        SelfMonitor {
            base_tags: vec![format!("service:{SERVICE}"), format!("host:{host}")],
            interval_secs,
            previous: HashMap::new(),
        }
    }

    /// Converts one scrape taken at `now` (unix seconds). On error nothing is remembered from this scrape.
    pub fn convert(&mut self, text: &str, now: i64) -> Result<MetricBatch, IngestError> {
        let (lines, types) = prepare(text)?;
        let scrape =
            Scrape::parse(lines.into_iter().map(Ok)).map_err(|e| IngestError::SelfMonitoring {
                line: 0,
                problem: format!("cannot parse: {e}"),
                text: String::new(),
            })?;
        let type_of = |name: &str| types.get(name).copied();
        let mut out = Out {
            points: Vec::new(),
            now,
            interval: self.interval_secs,
        };
        let mut next: HashMap<String, Previous> = HashMap::new();
        // Histogram and summary series, by (family, labels), assembled from their samples.
        let mut hists: BTreeMap<(String, String), (prometheus_parse::Labels, Hist)> =
            BTreeMap::new();
        for sample in scrape.samples {
            let metric = sample.metric.as_str();
            match &sample.value {
                prometheus_parse::Value::Counter(v) => {
                    let base = metric.strip_suffix("_total").unwrap_or(metric);
                    self.counter(&mut out, &mut next, base, &sample.labels, *v)?;
                }
                prometheus_parse::Value::Gauge(v) => {
                    let tags = self.tags(metric, &sample.labels)?;
                    out.push(out_name(metric), &tags, MetricKind::Gauge, *v);
                }
                prometheus_parse::Value::Untyped(v) => {
                    let family = |suffix: &str, want: &[SampleType]| {
                        metric
                            .strip_suffix(suffix)
                            .filter(|b| type_of(b).is_some_and(|t| want.contains(&t)))
                    };
                    const HS: [SampleType; 2] = [SampleType::Histogram, SampleType::Summary];
                    if let Some(base) = family("_total", &[SampleType::Counter]) {
                        self.counter(&mut out, &mut next, base, &sample.labels, *v)?;
                    } else if family(
                        "_created",
                        &[
                            SampleType::Counter,
                            SampleType::Histogram,
                            SampleType::Summary,
                        ],
                    )
                    .is_some()
                    {
                        // Creation times are not data.
                    } else if let Some(base) = family("_count", &HS) {
                        entry(&mut hists, base, &sample.labels).count = Some(*v);
                    } else if let Some(base) = family("_sum", &HS) {
                        entry(&mut hists, base, &sample.labels).sum = Some(*v);
                    } else {
                        let tags = self.tags(metric, &sample.labels)?;
                        out.push(out_name(metric), &tags, MetricKind::Gauge, *v);
                    }
                }
                prometheus_parse::Value::Histogram(buckets) => {
                    let h = entry(&mut hists, metric, &sample.labels);
                    h.buckets = buckets
                        .iter()
                        .map(|HistogramCount { less_than, count }| (*less_than, *count))
                        .collect();
                    h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                }
                prometheus_parse::Value::Summary(qs) => {
                    entry(&mut hists, metric, &sample.labels).quantiles = qs
                        .iter()
                        .map(|SummaryCount { quantile, count }| (*quantile, *count))
                        .collect();
                }
            }
        }
        for ((family, key), (labels, h)) in hists {
            self.histogram(&mut out, &mut next, &family, &key, &labels, h)?;
        }
        self.previous = next;
        Ok(MetricBatch { points: out.points })
    }

    /// The tags of a series: its labels, then `service:` and `host:`.
    fn tags(&self, metric: &str, labels: &prometheus_parse::Labels) -> Result<TagSet, IngestError> {
        let mut sorted: Vec<(&String, &String)> = labels.iter().collect();
        sorted.sort();
        let label_tags = sorted.into_iter().filter_map(|(k, v)| {
            let v = restore(v);
            if v.is_empty() {
                return None;
            }
            let k = restore(k);
            Some(match k.as_str() {
                "host" | "service" => format!("exported_{k}:{v}"),
                _ => format!("{k}:{v}"),
            })
        });
        let all: Vec<String> = label_tags.chain(self.base_tags.iter().cloned()).collect();
        TagSet::parse(all, MAX_TAGS, MAX_TAG_LEN).map_err(|source| IngestError::Tags {
            metric: metric.to_string(),
            source,
        })
    }

    fn counter(
        &self,
        out: &mut Out,
        next: &mut HashMap<String, Previous>,
        base: &str,
        labels: &prometheus_parse::Labels,
        value: f64,
    ) -> Result<(), IngestError> {
        if !value.is_finite() {
            return Ok(());
        }
        let key = format!("{base}{{{labels}}}");
        let prev = match self.previous.get(&key) {
            Some(Previous::Counter(p)) => Some(*p),
            _ => None,
        };
        next.insert(key, Previous::Counter(value));
        if let Some(d) = delta(prev, value) {
            let tags = self.tags(base, labels)?;
            out.push(
                format!("{}.count", out_name(base)),
                &tags,
                MetricKind::Count,
                d,
            );
        }
        Ok(())
    }

    fn histogram(
        &self,
        out: &mut Out,
        next: &mut HashMap<String, Previous>,
        family: &str,
        labels_key: &str,
        labels: &prometheus_parse::Labels,
        mut cur: Hist,
    ) -> Result<(), IngestError> {
        let name = out_name(family);
        let tags = self.tags(family, labels)?;
        for (q, v) in std::mem::take(&mut cur.quantiles) {
            let mut qtags = tags.clone();
            qtags.extend([format!("quantile:{q}")]);
            out.push(format!("{name}.quantile"), &qtags, MetricKind::Gauge, v);
        }
        if cur.count.is_none() {
            cur.count = cur.buckets.last().map(|b| b.1);
        }
        let key = format!("{family}{{{labels_key}}}");
        let prev = match self.previous.get(&key) {
            Some(Previous::Histogram(p)) => Some(p.clone()),
            _ => None,
        };
        next.insert(key, Previous::Histogram(cur.clone()));
        let Some(prev) = prev else {
            return Ok(());
        };
        let same_layout = prev.buckets.len() == cur.buckets.len()
            && prev
                .buckets
                .iter()
                .zip(&cur.buckets)
                .all(|(a, b)| a.0 == b.0);
        let went_down =
            |a: Option<f64>, b: Option<f64>| matches!((a, b), (Some(p), Some(c)) if c < p);
        let reset = went_down(prev.count, cur.count)
            || (same_layout
                && prev
                    .buckets
                    .iter()
                    .zip(&cur.buckets)
                    .any(|(p, c)| c.1 < p.1));
        let diff = |p: Option<f64>, c: Option<f64>| match (p, c) {
            (_, None) => None,
            (Some(p), Some(c)) if !reset => Some(c - p),
            (None, Some(_)) if !reset => None,
            (_, Some(c)) => Some(c),
        };
        if let Some(d) = diff(prev.count, cur.count) {
            out.push(format!("{name}.count"), &tags, MetricKind::Count, d);
        }
        if let Some(d) = diff(prev.sum, cur.sum) {
            out.push(format!("{name}.sum"), &tags, MetricKind::Count, d);
        }
        let deltas: Option<Vec<(f64, f64)>> = if reset {
            Some(cur.buckets.clone())
        } else if same_layout {
            Some(
                prev.buckets
                    .iter()
                    .zip(&cur.buckets)
                    .map(|(p, c)| (c.0, c.1 - p.1))
                    .collect(),
            )
        } else {
            None
        };
        if let Some(deltas) = deltas {
            for (q, suffix) in QUANTILES {
                if let Some(v) = quantile(q, &deltas) {
                    out.push(format!("{name}.{suffix}"), &tags, MetricKind::Gauge, v);
                }
            }
        }
        Ok(())
    }
}

/// The histogram or summary being assembled for `family` and these labels.
fn entry<'a>(
    hists: &'a mut BTreeMap<(String, String), (prometheus_parse::Labels, Hist)>,
    family: &str,
    labels: &prometheus_parse::Labels,
) -> &'a mut Hist {
    &mut hists
        .entry((family.to_string(), labels.to_string()))
        .or_insert_with(|| (labels.clone(), Hist::default()))
        .1
}

/// `sightline_storage_series` → `sightline.storage_series`.
fn out_name(prom: &str) -> String {
    format!(
        "sightline.{}",
        prom.strip_prefix("sightline_").unwrap_or(prom)
    )
}

/// A counter's increase since `prev`: nothing without a baseline, the value whole after a reset.
fn delta(prev: Option<f64>, now: f64) -> Option<f64> {
    match prev {
        None => None,
        Some(p) if now >= p => Some(now - p),
        Some(_) => Some(now),
    }
}

/// The `q` quantile of cumulative bucket counts `(le, count)` sorted by bound, as PromQL's `histogram_quantile`.
fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (i, &(le, count)) in buckets.iter().enumerate() {
        if count >= rank {
            if le == f64::INFINITY {
                return (i > 0).then_some(lower);
            }
            if i == 0 && le <= 0.0 {
                return Some(le);
            }
            let width = count - below;
            if width <= 0.0 {
                return Some(le);
            }
            return Some(lower + (le - lower) * (rank - below) / width);
        }
        lower = le;
        below = count;
    }
    None
}

/// Checks every line with the crate's line parser and protects label values; returns the lines to parse and
/// the declared type of every family (histograms under their base name).
fn prepare(text: &str) -> Result<(Vec<String>, HashMap<String, SampleType>), IngestError> {
    let mut lines = Vec::new();
    let mut types = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let fail = |problem: String| IngestError::SelfMonitoring {
            line: i + 1,
            problem,
            text: raw.chars().take(120).collect(),
        };
        let line = raw.trim();
        let clean = if line.starts_with('#') {
            line.to_string()
        } else {
            protect(line).map_err(|p| fail(p.to_string()))?
        };
        match LineInfo::parse(&clean) {
            LineInfo::Type {
                metric_name,
                metric_alias,
                sample_type,
            } => {
                types.insert(metric_alias.unwrap_or(metric_name), sample_type);
            }
            LineInfo::Sample {
                metric_name,
                labels,
                value,
                ..
            } => {
                if value.parse::<f64>().is_err() {
                    return Err(fail(format!("value {value:?} is not a number")));
                }
                let mut le = None;
                for part in labels.unwrap_or("").split(',') {
                    let part = part.trim();
                    if part.is_empty() {
                        continue;
                    }
                    let Some((k, v)) = part.split_once('=') else {
                        return Err(fail(format!("malformed label {:?}", restore(part))));
                    };
                    let quoted = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
                    if k.trim().is_empty() || !quoted {
                        return Err(fail(format!("malformed label {:?}", restore(part))));
                    }
                    if k.trim() == "le" {
                        le = Some(restore(v.trim_matches('"')));
                    }
                }
                let bucket_of = metric_name
                    .strip_suffix("_bucket")
                    .and_then(|b| types.get(b));
                if bucket_of == Some(&SampleType::Histogram)
                    && le.as_deref().is_none_or(|v| v.parse::<f64>().is_err())
                {
                    return Err(fail("histogram bucket without a numeric le label".into()));
                }
            }
            LineInfo::Ignored if !line.starts_with('#') => {
                return Err(fail("not a sample, type or comment line".into()));
            }
            _ => {}
        }
        lines.push(clean);
    }
    Ok((lines, types))
}

/// Swaps the characters the crate cannot read inside quoted label values (and escaped characters) for
/// placeholders; refuses an unterminated label set or value.
fn protect(line: &str) -> Result<String, &'static str> {
    let Some(open) = line.find('{') else {
        return Ok(line.to_string());
    };
    let mut out = String::with_capacity(line.len());
    out.push_str(&line[..=open]);
    let mut chars = line[open + 1..].char_indices();
    let mut in_quotes = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                out.push(c);
            }
            '\\' if in_quotes => match chars.next() {
                Some((_, 'n')) => out.push(placeholder('\n')),
                Some((_, '"')) => out.push(placeholder('"')),
                Some((_, e)) => out.push(e),
                None => return Err("unterminated label value"),
            },
            '}' if !in_quotes => {
                out.push(c);
                out.push_str(&line[open + 1 + i + 1..]);
                return Ok(out);
            }
            c if in_quotes => out.push(placeholder(c)),
            c => out.push(c),
        }
    }
    Err(if in_quotes {
        "unterminated label value"
    } else {
        "unterminated label set"
    })
}

fn placeholder(c: char) -> char {
    PROTECTED
        .iter()
        .find(|(from, _)| *from == c)
        .map_or(c, |(_, to)| *to)
}

/// Undoes [`protect`] in a label value.
fn restore(s: &str) -> String {
    s.chars()
        .map(|c| {
            PROTECTED
                .iter()
                .find(|(_, to)| *to == c)
                .map_or(c, |(from, _)| *from)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One point as text: `kind name{tags without service/host} value`.
    fn show(p: &MetricPoint) -> String {
        let tags: Vec<&str> = p
            .series
            .tags
            .iter()
            .filter(|t| *t != "service:sightline" && *t != "host:h")
            .collect();
        let Value::Scalar(v) = p.value else {
            panic!("a sketch")
        };
        format!(
            "{} {}{{{}}} {v}",
            p.kind.as_str(),
            p.series.name,
            tags.join(",")
        )
    }

    /// Feeds the scrapes in order to one converter; each expects its points (any order) or an error fragment.
    fn check(steps: &[(&str, Result<&[&str], &str>)]) {
        let mut m = SelfMonitor::new("h", 10);
        for (i, (text, expected)) in steps.iter().enumerate() {
            let now = 1_700_000_000 + 10 * i as i64;
            match (m.convert(text, now), expected) {
                (Ok(batch), Ok(want)) => {
                    for p in &batch.points {
                        assert!(p.series.tags.contains("service:sightline"), "{p:?}");
                        assert!(p.series.tags.contains("host:h"), "{p:?}");
                        assert_eq!((p.timestamp, p.interval), (now, 10));
                    }
                    let mut got: Vec<String> = batch.points.iter().map(show).collect();
                    got.sort();
                    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
                    want.sort();
                    assert_eq!(got, want, "step {i}: {text}");
                }
                (Err(e), Err(frag)) => {
                    assert!(e.to_string().contains(frag), "step {i}: {e}");
                }
                (got, want) => panic!("step {i}: got {got:?}, want {want:?}"),
            }
        }
    }

    const COUNTER: &str = "# HELP sightline_storage_points_written Points.\n\
        # TYPE sightline_storage_points_written counter\n\
        sightline_storage_points_written_total {v}\n# EOF\n";

    fn counter(v: &str) -> String {
        COUNTER.replace("{v}", v)
    }

    #[test]
    fn counters_become_deltas() {
        let (a, b, c, d) = (counter("5"), counter("12"), counter("12"), counter("3"));
        check(&[
            // First scrape: baseline only.
            (&a, Ok(&[])),
            (
                &b,
                Ok(&["count sightline.storage_points_written.count{} 7"]),
            ),
            (
                &c,
                Ok(&["count sightline.storage_points_written.count{} 0"]),
            ),
            // Reset: the new value whole.
            (
                &d,
                Ok(&["count sightline.storage_points_written.count{} 3"]),
            ),
        ]);
    }

    #[test]
    fn classic_counter_names_and_missing_prefix() {
        let t1 = "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n";
        let t2 = "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 2\n";
        check(&[
            (t1, Ok(&[])),
            (t2, Ok(&["count sightline.process_cpu_seconds.count{} 0.5"])),
        ]);
    }

    #[test]
    fn gauges_and_untyped() {
        let t = "# TYPE sightline_storage_series gauge\nsightline_storage_series 42\n\
                 sightline_build_info{version=\"0.1.0\"} 1\n\
                 # TYPE sightline_temp gauge\nsightline_temp NaN\n";
        check(&[
            (
                t,
                Ok(&[
                    "gauge sightline.storage_series{} 42",
                    "gauge sightline.build_info{version:0.1.0} 1",
                ]),
            ),
            (
                t,
                Ok(&[
                    "gauge sightline.storage_series{} 42",
                    "gauge sightline.build_info{version:0.1.0} 1",
                ]),
            ),
        ]);
    }

    #[test]
    fn labels_become_tags() {
        let t = |v: &str| {
            format!(
                "# TYPE sightline_ingest_requests counter\n\
                 sightline_ingest_requests_total{{Endpoint=\"/api/v2/series\",status=\"202\",service=\"x\",empty=\"\"}} {v}\n\
                 sightline_ingest_requests_total{{Endpoint=\"/api/v1/dashboard/{{id}}\",status=\"a,b=c \\\"q\\\"\"}} {v}\n"
            )
        };
        let (a, b) = (t("1"), t("4"));
        check(&[
            (&a, Ok(&[])),
            (
                &b,
                Ok(&[
                    "count sightline.ingest_requests.count{endpoint:/api/v2/series,exported_service:x,status:202} 3",
                    "count sightline.ingest_requests.count{endpoint:/api/v1/dashboard/{id},status:a,b=c \"q\"} 3",
                ]),
            ),
        ]);
    }

    const HIST: &str = "# TYPE sightline_wal_fsync_seconds histogram\n\
        sightline_wal_fsync_seconds_sum{wal=\"m\"} {sum}\n\
        sightline_wal_fsync_seconds_count{wal=\"m\"} {count}\n\
        sightline_wal_fsync_seconds_bucket{le=\"0.1\",wal=\"m\"} {b1}\n\
        sightline_wal_fsync_seconds_bucket{le=\"0.2\",wal=\"m\"} {b2}\n\
        sightline_wal_fsync_seconds_bucket{le=\"0.4\",wal=\"m\"} {b3}\n\
        sightline_wal_fsync_seconds_bucket{le=\"+Inf\",wal=\"m\"} {count}\n";

    fn hist(sum: &str, count: &str, b1: &str, b2: &str, b3: &str) -> String {
        HIST.replace("{sum}", sum)
            .replace("{count}", count)
            .replace("{b1}", b1)
            .replace("{b2}", b2)
            .replace("{b3}", b3)
    }

    #[test]
    fn histograms() {
        let s0 = hist("1", "10", "5", "8", "10");
        // +10 observations: 0 in (0, 0.1], 10 in (0.1, 0.2]. p50: 0.1 + 0.1 * 5/10; p99: 0.1 + 0.1 * 9.9/10.
        let s1 = hist("2.5", "20", "5", "18", "20");
        // Nothing observed: zero deltas, no quantiles.
        let s2 = s1.clone();
        // +2 observations above 0.4: both quantiles answer the highest finite bound.
        let s3 = hist("4.5", "22", "5", "18", "20");
        // Reset: the whole histogram is new; 2 observations in (0, 0.1]: p50 = 0.05, p99 = 0.099.
        let s4 = hist("0.1", "2", "2", "2", "2");
        check(&[
            (&s0, Ok(&[])),
            (
                &s1,
                Ok(&[
                    "count sightline.wal_fsync_seconds.count{wal:m} 10",
                    "count sightline.wal_fsync_seconds.sum{wal:m} 1.5",
                    "gauge sightline.wal_fsync_seconds.p50{wal:m} 0.15000000000000002",
                    "gauge sightline.wal_fsync_seconds.p99{wal:m} 0.199",
                ]),
            ),
            (
                &s2,
                Ok(&[
                    "count sightline.wal_fsync_seconds.count{wal:m} 0",
                    "count sightline.wal_fsync_seconds.sum{wal:m} 0",
                ]),
            ),
            (
                &s3,
                Ok(&[
                    "count sightline.wal_fsync_seconds.count{wal:m} 2",
                    "count sightline.wal_fsync_seconds.sum{wal:m} 2",
                    "gauge sightline.wal_fsync_seconds.p50{wal:m} 0.4",
                    "gauge sightline.wal_fsync_seconds.p99{wal:m} 0.4",
                ]),
            ),
            (
                &s4,
                Ok(&[
                    "count sightline.wal_fsync_seconds.count{wal:m} 2",
                    "count sightline.wal_fsync_seconds.sum{wal:m} 0.1",
                    "gauge sightline.wal_fsync_seconds.p50{wal:m} 0.05",
                    "gauge sightline.wal_fsync_seconds.p99{wal:m} 0.099",
                ]),
            ),
        ]);
    }

    #[test]
    fn summaries() {
        let t = |c: &str| {
            format!(
                "# TYPE rpc_seconds summary\nrpc_seconds{{quantile=\"0.5\"}} 0.2\n\
                 rpc_seconds_sum 3\nrpc_seconds_count {c}\n"
            )
        };
        let (a, b) = (t("4"), t("6"));
        check(&[
            (
                &a,
                Ok(&["gauge sightline.rpc_seconds.quantile{quantile:0.5} 0.2"]),
            ),
            (
                &b,
                Ok(&[
                    "gauge sightline.rpc_seconds.quantile{quantile:0.5} 0.2",
                    "count sightline.rpc_seconds.count{} 2",
                    "count sightline.rpc_seconds.sum{} 0",
                ]),
            ),
        ]);
    }

    #[test]
    fn a_series_missing_from_a_scrape_starts_again_from_a_baseline() {
        let (a, c) = (counter("5"), counter("9"));
        check(&[(&a, Ok(&[])), ("# EOF\n", Ok(&[])), (&c, Ok(&[]))]);
    }

    #[test]
    fn malformed_text_is_an_error_naming_the_problem() {
        check(&[(
            "# TYPE a counter\na_total abc\n",
            Err("line 2: value \"abc\" is not a number: \"a_total abc\""),
        )]);
        check(&[("a{b=\"c\" 1\n", Err("line 1: unterminated label set"))]);
        check(&[("a{b=\"c} 1\n", Err("line 1: unterminated label value"))]);
        check(&[("a{b} 1\n", Err("line 1: malformed label \"b\""))]);
        check(&[("a{b=c} 1\n", Err("malformed label \"b=c\""))]);
        check(&[("=== 1\n", Err("line 1: not a sample, type or comment line"))]);
        check(&[(
            "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
            Err("line 2: histogram bucket without a numeric le label"),
        )]);
        check(&[(
            "# TYPE h histogram\nh_bucket 1\n",
            Err("histogram bucket without a numeric le label"),
        )]);
        // A failed scrape leaves the previous values alone.
        let (a, b) = (counter("5"), counter("8"));
        check(&[
            (&a, Ok(&[])),
            ("garbage here\n", Err("value \"here\" is not a number")),
            (
                &b,
                Ok(&["count sightline.storage_points_written.count{} 3"]),
            ),
        ]);
    }

    #[test]
    fn quantile_edges() {
        assert_eq!(quantile(0.5, &[]), None);
        assert_eq!(quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(quantile(0.5, &[(f64::INFINITY, 3.0)]), None);
        assert_eq!(
            quantile(0.5, &[(-1.0, 2.0), (f64::INFINITY, 2.0)]),
            Some(-1.0)
        );
        assert_eq!(
            quantile(0.5, &[(2.0, 4.0), (f64::INFINITY, 4.0)]),
            Some(1.0)
        );
    }

    #[test]
    fn hostname_is_never_empty() {
        assert!(!hostname().is_empty());
    }
}
