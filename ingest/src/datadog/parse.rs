//! Pure parsers from decoded Datadog intake JSON to a `MetricBatch`, keeping good series and describing bad ones.

use crate::error::IngestError;
use serde::Deserialize;
use serde_json::Value as Json;
use sightline_model::{
    Limits, MetricBatch, MetricKind, MetricPoint, SeriesKey, Sketch, TagSet, Value, MAX_UNIX_SECS,
};

/// Longest metric name accepted, in characters (Datadog's limit).
pub const MAX_METRIC_NAME_LEN: usize = 200;
/// Most per-series error messages reported for one request; the rest are summed up in one last message.
pub const MAX_ERROR_MESSAGES: usize = 100;

/// What a request body turned into: the points of every good series, and one message per rejected series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub batch: MetricBatch,
    /// Lowercase messages naming the metric (or the series' index when it has no name) and the problem.
    pub errors: Vec<String>,
    /// Points dropped with their series (a series without points counts as one).
    pub rejected_points: usize,
}

/// Parses a `POST /api/v2/series` body (what `datadog-api-client`'s `MetricsApi.submit_metrics` sends).
pub fn parse_series_v2(json: &[u8], limits: &Limits) -> Result<Parsed, IngestError> {
    parse_each(json, limits, series_v2)
}

/// Parses a `POST /api/v1/series` body.
pub fn parse_series_v1(json: &[u8], limits: &Limits) -> Result<Parsed, IngestError> {
    parse_each(json, limits, series_v1)
}

/// Parses a `POST /api/v1/distribution_points` body: one distribution sketch per point.
pub fn parse_distribution_points(json: &[u8], limits: &Limits) -> Result<Parsed, IngestError> {
    parse_each(json, limits, series_distribution)
}

#[derive(Deserialize)]
#[serde(expecting = "an object with a \"series\" array")]
struct Body {
    series: Vec<Json>,
}

/// Why one series was refused, and how many points went with it.
struct Rejection {
    problem: String,
    points: usize,
}

impl Rejection {
    fn new(problem: impl Into<String>, points: usize) -> Self {
        Rejection {
            problem: problem.into(),
            points: points.max(1),
        }
    }
}

type SeriesParser = fn(Json, &Limits, &mut Vec<MetricPoint>) -> Result<(), Rejection>;

/// Splits the body into series and runs `parse` on each; a series that fails adds nothing to the batch.
fn parse_each(json: &[u8], limits: &Limits, parse: SeriesParser) -> Result<Parsed, IngestError> {
    let body: Body = serde_json::from_slice(json).map_err(json_error)?;
    let mut parsed = Parsed::default();
    let mut unreported = 0usize;
    for (index, series) in body.series.into_iter().enumerate() {
        let name = series
            .get("metric")
            .and_then(Json::as_str)
            .map(display_name);
        let mut points = Vec::new();
        match parse(series, limits, &mut points) {
            Ok(()) => parsed.batch.points.append(&mut points),
            Err(r) => {
                parsed.rejected_points += r.points;
                if parsed.errors.len() < MAX_ERROR_MESSAGES {
                    parsed.errors.push(match name {
                        Some(name) => format!("metric {name:?}: {}", r.problem),
                        None => format!("series[{index}]: {}", r.problem),
                    });
                } else {
                    unreported += 1;
                }
            }
        }
    }
    if unreported > 0 {
        parsed
            .errors
            .push(format!("{unreported} more series rejected"));
    }
    Ok(parsed)
}

/// The whole-body JSON error, lowercase, keeping serde_json's line and column.
fn json_error(e: serde_json::Error) -> IngestError {
    IngestError::BadJson(e.to_string().replace("EOF", "end of input"))
}

/// A metric name as shown in messages: at most 60 characters.
fn display_name(name: &str) -> String {
    if name.chars().count() > 60 {
        format!("{}…", name.chars().take(60).collect::<String>())
    } else {
        name.to_string()
    }
}

/// Deserializes one series into its typed form; a type mismatch rejects only this series.
fn typed<T: for<'de> Deserialize<'de>>(series: Json) -> Result<T, Rejection> {
    let points = series
        .get("points")
        .and_then(Json::as_array)
        .map_or(1, Vec::len);
    serde_json::from_value(series).map_err(|e| Rejection::new(e.to_string(), points))
}

fn check_name(name: &str, points: usize) -> Result<(), Rejection> {
    let len = name.chars().count();
    if name.trim().is_empty() {
        return Err(Rejection::new("empty metric name", points));
    }
    if len > MAX_METRIC_NAME_LEN {
        return Err(Rejection::new(
            format!("name is {len} characters long; the limit is {MAX_METRIC_NAME_LEN}"),
            points,
        ));
    }
    Ok(())
}

fn check_timestamp(ts: f64, points: usize) -> Result<i64, Rejection> {
    if !ts.is_finite() || ts < 1.0 {
        return Err(Rejection::new(
            format!("timestamp {ts} is not a positive unix time in seconds"),
            points,
        ));
    }
    let secs = ts as i64;
    if secs >= MAX_UNIX_SECS {
        return Err(Rejection::new(
            format!("timestamp {secs} is not in seconds (milliseconds?)"),
            points,
        ));
    }
    Ok(secs)
}

fn check_value(value: Option<f64>, ts: i64, points: usize) -> Result<f64, Rejection> {
    match value {
        Some(v) if v.is_finite() => Ok(v),
        Some(v) => Err(Rejection::new(
            format!("value {v} at timestamp {ts} is not finite"),
            points,
        )),
        None => Err(Rejection::new(
            format!("point at timestamp {ts} has no value"),
            points,
        )),
    }
}

/// The interval in seconds (0 when not given), refusing negative and absurd ones.
fn check_interval(interval: Option<i64>, points: usize) -> Result<u32, Rejection> {
    match interval {
        None => Ok(0),
        Some(i) => u32::try_from(i).map_err(|_| {
            Rejection::new(format!("interval {i} is not a number of seconds"), points)
        }),
    }
}

fn tag_set(raw: Vec<String>, limits: &Limits, points: usize) -> Result<TagSet, Rejection> {
    TagSet::parse(raw, limits.max_tags_per_point, limits.max_tag_length)
        .map_err(|e| Rejection::new(e.to_string(), points))
}

/// For a rate, the per-second value becomes the count over the interval (a missing interval counts as 1 s),
/// and the interval stored is the one the count covers.
fn scale(kind: MetricKind, value: f64, interval: u32) -> (f64, u32) {
    match kind {
        MetricKind::Rate => {
            let secs = interval.max(1);
            (value * f64::from(secs), secs)
        }
        _ => (value, interval),
    }
}

// ----- /api/v2/series -----

#[derive(Deserialize)]
#[serde(expecting = "a series object")]
struct V2Series {
    metric: String,
    #[serde(default, rename = "type")]
    kind: Option<i64>,
    #[serde(default)]
    points: Vec<V2Point>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    resources: Option<Vec<V2Resource>>,
    #[serde(default)]
    interval: Option<i64>,
}

#[derive(Deserialize)]
struct V2Point {
    #[serde(default)]
    timestamp: Option<f64>,
    #[serde(default)]
    value: Option<f64>,
}

#[derive(Deserialize)]
struct V2Resource {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

fn series_v2(series: Json, limits: &Limits, out: &mut Vec<MetricPoint>) -> Result<(), Rejection> {
    let s: V2Series = typed(series)?;
    let n = s.points.len();
    check_name(&s.metric, n)?;
    let kind = match s.kind.unwrap_or(0) {
        0 | 3 => MetricKind::Gauge,
        1 => MetricKind::Count,
        2 => MetricKind::Rate,
        other => {
            return Err(Rejection::new(
                format!(
                    "unknown type {other}; use 0 (unspecified), 1 (count), 2 (rate) or 3 (gauge)"
                ),
                n,
            ))
        }
    };
    let interval = check_interval(s.interval, n)?;
    let mut raw_tags = s.tags.unwrap_or_default();
    for r in s.resources.unwrap_or_default() {
        let Some(name) = r.name.filter(|n| !n.trim().is_empty()) else {
            continue;
        };
        match r.kind.as_deref().map(str::trim) {
            None | Some("") => raw_tags.push(name),
            Some(kind) => raw_tags.push(format!("{kind}:{name}")),
        }
    }
    let tags = tag_set(raw_tags, limits, n)?;
    if n == 0 {
        return Err(Rejection::new("no points", 1));
    }
    let key = SeriesKey::new(s.metric, tags);
    out.reserve(n);
    for p in s.points {
        let ts = match p.timestamp {
            Some(ts) => check_timestamp(ts, n)?,
            None => return Err(Rejection::new("a point has no timestamp", n)),
        };
        let (value, interval) = scale(kind, check_value(p.value, ts, n)?, interval);
        out.push(MetricPoint {
            series: key.clone(),
            kind,
            timestamp: ts,
            interval,
            value: Value::Scalar(value),
        });
    }
    Ok(())
}

// ----- /api/v1/series -----

#[derive(Deserialize)]
#[serde(expecting = "a series object")]
struct V1Series {
    metric: String,
    #[serde(default)]
    points: Vec<(f64, Option<f64>)>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    interval: Option<i64>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    device: Option<String>,
}

/// Adds `host:` and `device:` tags when those fields are given.
fn host_device_tags(
    tags: Option<Vec<String>>,
    host: Option<String>,
    device: Option<String>,
) -> Vec<String> {
    let mut raw = tags.unwrap_or_default();
    raw.extend(
        host.filter(|h| !h.trim().is_empty())
            .map(|h| format!("host:{h}")),
    );
    raw.extend(
        device
            .filter(|d| !d.trim().is_empty())
            .map(|d| format!("device:{d}")),
    );
    raw
}

fn series_v1(series: Json, limits: &Limits, out: &mut Vec<MetricPoint>) -> Result<(), Rejection> {
    let s: V1Series = typed(series)?;
    let n = s.points.len();
    check_name(&s.metric, n)?;
    let kind = match s
        .kind
        .as_deref()
        .map(|k| k.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("gauge") => MetricKind::Gauge,
        Some("count") => MetricKind::Count,
        Some("rate") => MetricKind::Rate,
        Some(other) => {
            return Err(Rejection::new(
                format!("unknown type {other:?}; use gauge, count or rate"),
                n,
            ))
        }
    };
    let interval = check_interval(s.interval, n)?;
    let tags = tag_set(host_device_tags(s.tags, s.host, s.device), limits, n)?;
    if n == 0 {
        return Err(Rejection::new("no points", 1));
    }
    let key = SeriesKey::new(s.metric, tags);
    out.reserve(n);
    for (ts, value) in s.points {
        let ts = check_timestamp(ts, n)?;
        let (value, interval) = scale(kind, check_value(value, ts, n)?, interval);
        out.push(MetricPoint {
            series: key.clone(),
            kind,
            timestamp: ts,
            interval,
            value: Value::Scalar(value),
        });
    }
    Ok(())
}

// ----- /api/v1/distribution_points -----

#[derive(Deserialize)]
#[serde(expecting = "a series object")]
struct DistributionSeries {
    metric: String,
    #[serde(default)]
    points: Vec<(f64, Vec<Option<f64>>)>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    device: Option<String>,
}

fn series_distribution(
    series: Json,
    limits: &Limits,
    out: &mut Vec<MetricPoint>,
) -> Result<(), Rejection> {
    let s: DistributionSeries = typed(series)?;
    let n = s.points.len();
    check_name(&s.metric, n)?;
    let tags = tag_set(host_device_tags(s.tags, s.host, s.device), limits, n)?;
    if n == 0 {
        return Err(Rejection::new("no points", 1));
    }
    let key = SeriesKey::new(s.metric, tags);
    out.reserve(n);
    for (ts, values) in s.points {
        let ts = check_timestamp(ts, n)?;
        if values.is_empty() {
            return Err(Rejection::new(
                format!("point at timestamp {ts} has no values"),
                n,
            ));
        }
        let mut sketch = Sketch::new();
        for v in values {
            sketch.add(check_value(v, ts, n)?);
        }
        out.push(MetricPoint {
            series: key.clone(),
            kind: MetricKind::Distribution,
            timestamp: ts,
            interval: 0,
            value: Value::Sketch(Box::new(sketch)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One expected point: name, sorted tags, kind, timestamp, interval, scalar value (or sketch count).
    type P = (
        &'static str,
        &'static [&'static str],
        MetricKind,
        i64,
        u32,
        f64,
    );

    fn point_summary(p: &MetricPoint) -> (String, Vec<String>, MetricKind, i64, u32, f64) {
        let v = match &p.value {
            Value::Scalar(v) => *v,
            Value::Sketch(s) => s.count() as f64,
        };
        (
            p.series.name.clone(),
            p.series.tags.as_slice().to_vec(),
            p.kind,
            p.timestamp,
            p.interval,
            v,
        )
    }

    /// Parses `json` with `parser` under small limits (3 tags of at most 20 characters) and compares the
    /// points kept and the messages of the rejected series, or the error for the whole body.
    fn check(
        parser: fn(&[u8], &Limits) -> Result<Parsed, IngestError>,
        json: &str,
        expected: Result<(&[P], &[&str]), &str>,
    ) {
        let limits = Limits {
            max_tags_per_point: 3,
            max_tag_length: 20,
            ..Limits::default()
        };
        let got = parser(json.as_bytes(), &limits);
        match (got, expected) {
            (Ok(parsed), Ok((points, errors))) => {
                let got: Vec<_> = parsed.batch.points.iter().map(point_summary).collect();
                let want: Vec<_> = points
                    .iter()
                    .map(|(n, t, k, ts, i, v)| {
                        (
                            n.to_string(),
                            t.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                            *k,
                            *ts,
                            *i,
                            *v,
                        )
                    })
                    .collect();
                assert_eq!(got, want, "points of {json}");
                assert_eq!(parsed.errors, errors, "errors of {json}");
                for e in &parsed.errors {
                    assert_eq!(e, &e.to_lowercase(), "lowercase message");
                }
            }
            (Err(e), Err(want)) => {
                let text = e.to_string();
                assert!(
                    text.contains(want),
                    "{json}: {text:?} does not contain {want:?}"
                );
                assert_eq!(e.kind().http_status(), 400);
            }
            (got, want) => panic!("{json}: got {got:?}, expected {want:?}"),
        }
    }

    use MetricKind::{Count, Distribution, Gauge, Rate};

    #[test]
    fn v2_table() {
        let v2 = parse_series_v2;
        check(
            v2,
            r#"{"series":[{"metric":"a.b","type":0,"points":[{"timestamp":1700000000,"value":1.5}],"tags":["Env:prod"]}]}"#,
            Ok((&[("a.b", &["env:prod"], Gauge, 1_700_000_000, 0, 1.5)], &[])),
        );
        // Missing type is a gauge; type 3 too; type 1 a count with its interval kept.
        check(
            v2,
            r#"{"series":[{"metric":"g","points":[{"timestamp":10,"value":2}]},
                          {"metric":"g3","type":3,"points":[{"timestamp":10,"value":3}]},
                          {"metric":"c","type":1,"interval":10,"points":[{"timestamp":10,"value":4}]}]}"#,
            Ok((
                &[
                    ("g", &[], Gauge, 10, 0, 2.0),
                    ("g3", &[], Gauge, 10, 0, 3.0),
                    ("c", &[], Count, 10, 10, 4.0),
                ],
                &[],
            )),
        );
        // Rates: per-second value × interval; a missing or zero interval counts as one second.
        check(
            v2,
            r#"{"series":[{"metric":"r","type":2,"interval":10,"points":[{"timestamp":10,"value":0.5},{"timestamp":20,"value":2}]},
                          {"metric":"r1","type":2,"points":[{"timestamp":10,"value":7}]},
                          {"metric":"r0","type":2,"interval":0,"points":[{"timestamp":10,"value":7}]}]}"#,
            Ok((
                &[
                    ("r", &[], Rate, 10, 10, 5.0),
                    ("r", &[], Rate, 20, 10, 20.0),
                    ("r1", &[], Rate, 10, 1, 7.0),
                    ("r0", &[], Rate, 10, 1, 7.0),
                ],
                &[],
            )),
        );
        // Resources become tags; unknown fields are ignored.
        check(
            v2,
            r#"{"series":[{"metric":"m","points":[{"timestamp":5,"value":1}],"resources":[{"name":"web1","type":"host"},{"name":"eu","type":"region"}],
                "unit":"byte","source_type_name":"x","metadata":{"origin":{"origin_product":1}},"whatever":[1]}],"extra":true}"#,
            Ok((&[("m", &["host:web1", "region:eu"], Gauge, 5, 0, 1.0)], &[])),
        );
        // One bad series among good ones: the good ones are kept, the bad one named.
        check(
            v2,
            r#"{"series":[{"metric":"ok","points":[{"timestamp":5,"value":1}]},
                          {"metric":"a.b","points":[{"timestamp":5,"value":1}],"tags":["a","b","c","d"]},
                          {"metric":"long","points":[{"timestamp":5,"value":1}],"tags":["k:0123456789012345678901"]},
                          {"metric":"ok2","points":[{"timestamp":6,"value":2}]}]}"#,
            Ok((
                &[
                    ("ok", &[], Gauge, 5, 0, 1.0),
                    ("ok2", &[], Gauge, 6, 0, 2.0),
                ],
                &[
                    r#"metric "a.b": 4 tags on one point; the limit is 3"#,
                    r#"metric "long": tag "k:0123456789012345678901" is 24 characters long; the limit is 20"#,
                ],
            )),
        );
        check(
            v2,
            r#"{"series":[{"metric":"","points":[{"timestamp":5,"value":1}]},
                          {"points":[{"timestamp":5,"value":1}]},
                          {"metric":"t0","points":[{"timestamp":0,"value":1}]},
                          {"metric":"tneg","points":[{"timestamp":-5,"value":1}]},
                          {"metric":"tms","points":[{"timestamp":1700000000000,"value":1}]},
                          {"metric":"nov","points":[{"timestamp":5}]},
                          {"metric":"nots","points":[{"value":5}]},
                          {"metric":"nop","points":[]},
                          {"metric":"ty","type":7,"points":[{"timestamp":5,"value":1}]},
                          {"metric":"tystr","type":"gauge","points":[{"timestamp":5,"value":1}]},
                          {"metric":"iv","interval":-1,"points":[{"timestamp":5,"value":1}]}]}"#,
            Ok((
                &[],
                &[
                    r#"metric "": empty metric name"#,
                    "series[1]: missing field `metric`",
                    r#"metric "t0": timestamp 0 is not a positive unix time in seconds"#,
                    r#"metric "tneg": timestamp -5 is not a positive unix time in seconds"#,
                    r#"metric "tms": timestamp 1700000000000 is not in seconds (milliseconds?)"#,
                    r#"metric "nov": point at timestamp 5 has no value"#,
                    r#"metric "nots": a point has no timestamp"#,
                    r#"metric "nop": no points"#,
                    r#"metric "ty": unknown type 7; use 0 (unspecified), 1 (count), 2 (rate) or 3 (gauge)"#,
                    r#"metric "tystr": invalid type: string "gauge", expected i64"#,
                    r#"metric "iv": interval -1 is not a number of seconds"#,
                ],
            )),
        );
        let long = "x".repeat(201);
        let json = format!(
            r#"{{"series":[{{"metric":"{long}","points":[{{"timestamp":5,"value":1}}]}}]}}"#
        );
        let got = parse_series_v2(json.as_bytes(), &Limits::default()).unwrap();
        assert!(got.batch.is_empty());
        assert!(
            got.errors[0].ends_with("…\": name is 201 characters long; the limit is 200"),
            "{:?}",
            got.errors
        );
        // Malformed JSON as a whole names the position.
        check(
            v2,
            r#"{"series":[{"metric":"a",}]}"#,
            Err("malformed json: trailing comma at line 1 column 26"),
        );
        check(
            v2,
            "",
            Err("malformed json: end of input while parsing a value at line 1 column 0"),
        );
        check(v2, r#"{"data":[]}"#, Err("missing field `series`"));
        check(v2, r#"{"series":[]}"#, Ok((&[], &[])));
    }

    #[test]
    fn non_finite_values_are_refused() {
        // JSON has no NaN literal; a value too large for f64 is how infinity reaches us.
        check(
            parse_series_v2,
            r#"{"series":[{"metric":"inf","points":[{"timestamp":5,"value":1e400}]}]}"#,
            Err("malformed json: number out of range"),
        );
        assert!(check_value(Some(f64::NAN), 5, 1).is_err());
        assert!(check_value(Some(f64::INFINITY), 5, 1).is_err());
    }

    #[test]
    fn v1_table() {
        let v1 = parse_series_v1;
        check(
            v1,
            r#"{"series":[{"metric":"cpu","points":[[1700000000,0.5],[1700000010.7,0.25]],"host":"web1","device":"sda","tags":["env:prod"]}]}"#,
            Ok((
                &[
                    (
                        "cpu",
                        &["device:sda", "env:prod", "host:web1"],
                        Gauge,
                        1_700_000_000,
                        0,
                        0.5,
                    ),
                    (
                        "cpu",
                        &["device:sda", "env:prod", "host:web1"],
                        Gauge,
                        1_700_000_010,
                        0,
                        0.25,
                    ),
                ],
                &[],
            )),
        );
        check(
            v1,
            r#"{"series":[{"metric":"c","type":"count","interval":10,"points":[[10,3]]},
                          {"metric":"r","type":"rate","interval":10,"points":[[10,0.5]]},
                          {"metric":"r1","type":"Rate","points":[[10,4]]},
                          {"metric":"g","type":"gauge","points":[[10,4]],"host":null}]}"#,
            Ok((
                &[
                    ("c", &[], Count, 10, 10, 3.0),
                    ("r", &[], Rate, 10, 10, 5.0),
                    ("r1", &[], Rate, 10, 1, 4.0),
                    ("g", &[], Gauge, 10, 0, 4.0),
                ],
                &[],
            )),
        );
        check(
            v1,
            r#"{"series":[{"metric":"x","type":"histogram","points":[[10,1]]},
                          {"metric":"y","points":[[10]]},
                          {"metric":"z","points":[[10,null]]},
                          {"metric":"h","points":[[10,1]],"host":"a","tags":["b","c","d"]},
                          {"metric":"ok","points":[[10,1]]}]}"#,
            Ok((
                &[("ok", &[], Gauge, 10, 0, 1.0)],
                &[
                    r#"metric "x": unknown type "histogram"; use gauge, count or rate"#,
                    r#"metric "y": invalid length 1, expected a tuple of size 2"#,
                    r#"metric "z": point at timestamp 10 has no value"#,
                    r#"metric "h": 4 tags on one point; the limit is 3"#,
                ],
            )),
        );
        check(v1, "42", Err("malformed json: invalid type: integer `42`, expected an object with a \"series\" array"));
        check(
            v1,
            r#"{"series":[1]}"#,
            Ok((
                &[],
                &["series[0]: invalid type: integer `1`, expected a series object"],
            )),
        );
    }

    #[test]
    fn distribution_table() {
        let d = parse_distribution_points;
        check(
            d,
            r#"{"series":[{"metric":"lat","points":[[100,[1,2,3]],[110,[4.5]]],"host":"h","tags":["svc:a"],"type":"distribution"}]}"#,
            Ok((
                &[
                    ("lat", &["host:h", "svc:a"], Distribution, 100, 0, 3.0),
                    ("lat", &["host:h", "svc:a"], Distribution, 110, 0, 1.0),
                ],
                &[],
            )),
        );
        check(
            d,
            r#"{"series":[{"metric":"e","points":[[100,[]]]},{"metric":"n","points":[[100,[1,null]]]},{"metric":"s","points":[[100,"x"]]}]}"#,
            Ok((
                &[],
                &[
                    r#"metric "e": point at timestamp 100 has no values"#,
                    r#"metric "n": point at timestamp 100 has no value"#,
                    r#"metric "s": invalid type: string "x", expected a sequence"#,
                ],
            )),
        );
        let parsed = d(
            br#"{"series":[{"metric":"lat","points":[[100,[1,2,3,4,100]]]}]}"#,
            &Limits::default(),
        )
        .unwrap();
        let Value::Sketch(sk) = &parsed.batch.points[0].value else {
            panic!("not a sketch")
        };
        assert_eq!(
            (sk.count(), sk.min(), sk.max(), sk.sum()),
            (5, Some(1.0), Some(100.0), Some(110.0))
        );
    }

    #[test]
    fn error_messages_are_capped() {
        let series: Vec<String> = (0..150)
            .map(|i| format!(r#"{{"metric":"m{i}","points":[]}}"#))
            .collect();
        let json = format!(r#"{{"series":[{}]}}"#, series.join(","));
        let parsed = parse_series_v2(json.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(parsed.errors.len(), MAX_ERROR_MESSAGES + 1);
        assert_eq!(parsed.errors.last().unwrap(), "50 more series rejected");
        assert_eq!(parsed.rejected_points, 150);
    }
}
