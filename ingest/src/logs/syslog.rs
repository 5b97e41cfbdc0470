//! Syslog frames, RFC 5424 and RFC 3164 (BSD), as pure functions from one frame's bytes to a `LogRecord`.
//!
//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`, each header field `-`
//! when absent; structured data `[id param="value" …]…` becomes the attributes `syslog.sd.<id>.<param>`; a
//! UTF-8 BOM at the start of MSG is stripped.
//!
//! RFC 3164: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`, also without HOSTNAME (what util-linux `logger`
//! sends to a local socket), with an RFC 3339 timestamp instead (rsyslog's forwarding format), with
//! `Mmm dd yyyy hh:mm:ss`, or without any timestamp (then everything after PRI is the content). A 3164
//! timestamp has no year and no zone: it is taken as UTC in the year of `received_ns`, or the year before when
//! that would put it more than a day after `received_ns`.
//!
//! Mapping: severity → `status`; `syslog.facility` and `syslog.severity` (numbers), `syslog.appname`,
//! `syslog.procid`, `syslog.msgid` (strings) as nested attributes; APP-NAME / TAG → `service`; HOSTNAME →
//! `host`; `source` = `syslog`; the frame's timestamp, else `received_ns`.

use super::time;
use jiff::tz::Offset;
use serde_json::{Map, Value as Json};
use sightline_model::{normalize_status, LogRecord};

const NS_PER_DAY: i64 = 86_400 * 1_000_000_000;
/// Longest TAG (program name) recognised in an RFC 3164 frame.
const MAX_TAG_LEN: usize = 64;

/// Whether `line` starts with a syslog `<PRI>` (one to three digits, at most 191): the test the line
/// detector uses before calling [`parse_syslog`].
pub fn looks_like_syslog(line: &[u8]) -> bool {
    pri(line).is_some()
}

/// Parses one syslog frame (RFC 5424 or RFC 3164, trailing CR/LF/NUL ignored). `None` when the frame has no
/// valid `<PRI>` or is a malformed RFC 5424 frame.
pub fn parse_syslog(line: &[u8], received_ns: i64) -> Option<LogRecord> {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | 0) {
        end -= 1;
    }
    let line = &line[..end];
    let (pri, rest) = pri(line)?;
    let header = Header {
        facility: pri / 8,
        severity: pri % 8,
        ..Header::default()
    };
    match rest.strip_prefix(b"1 ") {
        Some(body) => parse_5424(header, body, received_ns),
        None => Some(parse_3164(header, rest, received_ns)),
    }
}

/// `<PRI>` at the start of `line`: the value and what follows the `>`.
fn pri(line: &[u8]) -> Option<(u8, &[u8])> {
    let rest = line.strip_prefix(b"<")?;
    let close = rest.iter().take(4).position(|&b| b == b'>')?;
    if close == 0 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in &rest[..close] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    if v > 191 {
        return None;
    }
    Some((v as u8, &rest[close + 1..]))
}

/// What a frame's header says, before it becomes a record.
#[derive(Default)]
struct Header {
    facility: u8,
    severity: u8,
    ts_ns: Option<i64>,
    host: Option<String>,
    appname: Option<String>,
    procid: Option<String>,
    msgid: Option<String>,
    sd: Map<String, Json>,
}

impl Header {
    fn into_record(self, message: &[u8], received_ns: i64) -> LogRecord {
        let mut r = LogRecord::new(
            self.ts_ns.unwrap_or(received_ns),
            String::from_utf8_lossy(message),
        );
        r.status = normalize_status(&self.severity.to_string())
            .unwrap_or("info")
            .to_string();
        let mut sys = Map::new();
        sys.insert("facility".into(), Json::from(self.facility));
        sys.insert("severity".into(), Json::from(self.severity));
        if let Some(a) = &self.appname {
            sys.insert("appname".into(), Json::from(a.as_str()));
        }
        if let Some(p) = self.procid {
            sys.insert("procid".into(), Json::from(p));
        }
        if let Some(m) = self.msgid {
            sys.insert("msgid".into(), Json::from(m));
        }
        if !self.sd.is_empty() {
            sys.insert("sd".into(), Json::Object(self.sd));
        }
        r.attributes.insert("syslog".into(), Json::Object(sys));
        r.service = self.appname;
        r.host = self.host;
        r.source = Some("syslog".to_string());
        r
    }
}

/// A space-delimited header field of RFC 5424 at `*pos` (`-` = absent), advancing past the field and the
/// space after it. `None` when the field is empty.
fn field<'a>(b: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let start = *pos;
    let len = b[start..]
        .iter()
        .position(|&c| c == b' ')
        .unwrap_or(b.len() - start);
    if len == 0 {
        return None;
    }
    let f = &b[start..start + len];
    *pos = (start + len + 1).min(b.len());
    Some(if f == b"-" { None } else { Some(f) })
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_5424(mut h: Header, b: &[u8], received_ns: i64) -> Option<LogRecord> {
    let mut pos = 0;
    if let Some(ts) = field(b, &mut pos)? {
        h.ts_ns = Some(time::parse_rfc3339_bytes(ts)?);
    }
    h.host = field(b, &mut pos)?.map(lossy);
    h.appname = field(b, &mut pos)?.map(lossy);
    h.procid = field(b, &mut pos)?.map(lossy);
    // Some senders stop after MSGID; that is taken as no structured data and an empty message.
    if pos >= b.len() {
        return Some(h.into_record(b"", received_ns));
    }
    h.msgid = field(b, &mut pos)?.map(lossy);
    if pos >= b.len() {
        return Some(h.into_record(b"", received_ns));
    }
    match b[pos] {
        b'-' => pos += 1,
        b'[' => pos = structured_data(b, pos, &mut h.sd)?,
        _ => return None,
    }
    let msg: &[u8] = match b.get(pos) {
        None => b"",
        Some(b' ') => &b[pos + 1..],
        Some(_) => return None,
    };
    let msg = msg.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(msg);
    Some(h.into_record(msg, received_ns))
}

/// Parses `[id name="value" …]…` at `pos` into `sd[id][name] = value`; returns the position after it.
fn structured_data(b: &[u8], mut pos: usize, sd: &mut Map<String, Json>) -> Option<usize> {
    while b.get(pos) == Some(&b'[') {
        pos += 1;
        let id_len = b[pos..]
            .iter()
            .position(|&c| matches!(c, b' ' | b']' | b'=' | b'"'))?;
        if id_len == 0 {
            return None;
        }
        let id = lossy(&b[pos..pos + id_len]);
        pos += id_len;
        let mut params = Map::new();
        loop {
            match b.get(pos)? {
                b']' => {
                    pos += 1;
                    break;
                }
                b' ' => {
                    pos += 1;
                    let name_len = b[pos..]
                        .iter()
                        .position(|&c| matches!(c, b'=' | b' ' | b']' | b'"'))?;
                    if name_len == 0 || b[pos + name_len] != b'=' {
                        return None;
                    }
                    let name = lossy(&b[pos..pos + name_len]);
                    pos += name_len + 1;
                    if b.get(pos) != Some(&b'"') {
                        return None;
                    }
                    pos += 1;
                    let mut value = Vec::new();
                    loop {
                        match *b.get(pos)? {
                            b'\\' if matches!(b.get(pos + 1), Some(b'"' | b'\\' | b']')) => {
                                value.push(b[pos + 1]);
                                pos += 2;
                            }
                            b'"' => {
                                pos += 1;
                                break;
                            }
                            c => {
                                value.push(c);
                                pos += 1;
                            }
                        }
                    }
                    params.insert(name, Json::String(lossy(&value)));
                }
                _ => return None,
            }
        }
        match sd.get_mut(&id) {
            Some(Json::Object(existing)) => existing.extend(params),
            _ => {
                sd.insert(id, Json::Object(params));
            }
        }
    }
    Some(pos)
}

fn parse_3164(mut h: Header, b: &[u8], received_ns: i64) -> LogRecord {
    let (ts, mut pos) = match timestamp_3164(b, received_ns) {
        Some((ts, n)) => (Some(ts), n),
        None => (None, 0),
    };
    h.ts_ns = ts;
    if ts.is_some() {
        while b.get(pos) == Some(&b' ') {
            pos += 1;
        }
        // HOSTNAME, unless the first word is already the TAG (no host, as in local `logger` frames).
        if tag(&b[pos..]).is_none() {
            let host_len = b[pos..]
                .iter()
                .position(|&c| c == b' ')
                .unwrap_or(b.len() - pos);
            // A single word after the timestamp is the message, not a host.
            if host_len > 0 && host_len < b.len() - pos {
                h.host = Some(lossy(&b[pos..pos + host_len]));
                pos += host_len + 1;
            }
        }
    }
    if let Some((name, pid, n)) = tag(&b[pos..]) {
        h.appname = Some(lossy(name));
        h.procid = pid.map(lossy);
        pos += n;
    }
    h.into_record(&b[pos..], received_ns)
}

/// A TAG's name, pid and length (see [`tag`]).
type Tag<'a> = (&'a [u8], Option<&'a [u8]>, usize);

/// A TAG at the start of `b`: `name:`, `name[pid]:` or `name[pid]`, followed by a space or the end. Returns
/// the name, the pid and the length consumed including one following space.
fn tag(b: &[u8]) -> Option<Tag<'_>> {
    let name_len = b
        .iter()
        .take(MAX_TAG_LEN + 1)
        .position(|&c| matches!(c, b':' | b'[' | b' ' | b']'))?;
    if name_len == 0 || name_len > MAX_TAG_LEN {
        return None;
    }
    let name = &b[..name_len];
    let mut pos = name_len;
    let mut pid = None;
    if b[pos] == b'[' {
        let close = b[pos + 1..].iter().take(130).position(|&c| c == b']')?;
        let p = &b[pos + 1..pos + 1 + close];
        if p.is_empty() || p.contains(&b' ') {
            return None;
        }
        pid = Some(p);
        pos += close + 2;
        if b.get(pos) == Some(&b':') {
            pos += 1;
        }
    } else if b[pos] == b':' {
        pos += 1;
    } else {
        return None;
    }
    match b.get(pos) {
        None => Some((name, pid, pos)),
        Some(b' ') => Some((name, pid, pos + 1)),
        Some(_) => None,
    }
}

/// An RFC 3164 timestamp at the start of `b` (or an RFC 3339 one), as ns and bytes read.
fn timestamp_3164(b: &[u8], received_ns: i64) -> Option<(i64, usize)> {
    if b.first().is_some_and(u8::is_ascii_digit) {
        return time::parse_rfc3339_prefix(b);
    }
    // `Mmm dd yyyy hh:mm:ss` (some network devices) carries its year.
    let (mut tm, n) = time::strptime_prefix("%b %e %Y %H:%M:%S", b)
        .or_else(|| time::strptime_prefix("%b %e %H:%M:%S", b))?;
    if !matches!(b.get(n), None | Some(b' ')) {
        return None;
    }
    let year = tm.year();
    let mut in_year = |year: i16| {
        tm.set_year(Some(year)).ok()?;
        time::to_ns(tm.to_datetime().ok()?, Offset::UTC)
    };
    let ns = match year {
        Some(y) => in_year(y)?,
        None => {
            let this_year = time::year_of(received_ns)?;
            match in_year(this_year) {
                Some(ns) if ns <= received_ns.saturating_add(NS_PER_DAY) => ns,
                _ => in_year(this_year.checked_sub(1)?)?,
            }
        }
    };
    Some((ns, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2026-11-29T04:35:00Z, shortly after the `logger` frames below were captured.
    const NOW: i64 = 1_795_926_900_000_000_000;

    /// What a test expects of a parsed frame.
    struct Want {
        ts_ns: i64,
        status: &'static str,
        host: Option<&'static str>,
        service: Option<&'static str>,
        message: &'static str,
        syslog: serde_json::Value,
    }

    fn check(input: &[u8], expected: Option<Want>) {
        let got = parse_syslog(input, NOW);
        let name = String::from_utf8_lossy(input);
        match (got, expected) {
            (None, None) => {}
            (Some(r), Some(w)) => {
                assert_eq!(r.message, w.message, "message of {name:?}");
                assert_eq!(r.ts_ns, w.ts_ns, "timestamp of {name:?}");
                assert_eq!(r.status, w.status, "status of {name:?}");
                assert_eq!(r.host.as_deref(), w.host, "host of {name:?}");
                assert_eq!(r.service.as_deref(), w.service, "service of {name:?}");
                assert_eq!(r.source.as_deref(), Some("syslog"), "{name:?}");
                assert_eq!(r.attributes["syslog"], w.syslog, "attributes of {name:?}");
            }
            (got, w) => panic!(
                "{name:?}: got {got:?}, expected {}",
                if w.is_some() { "a record" } else { "none" }
            ),
        }
    }

    fn ts(s: &str) -> i64 {
        time::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn syslog_table() {
        // util-linux 2.38 `logger --rfc5424 --octet-count --tcp -t myapp hello world` (octet count stripped
        // by the framer).
        check(
            b"<13>1 2026-11-29T04:34:48.716298+00:00 vm myapp - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello world",
            Some(Want {
                ts_ns: ts("2026-11-29T04:34:48.716298Z"),
                status: "notice",
                host: Some("vm"),
                service: Some("myapp"),
                message: "hello world",
                syslog: json!({"facility": 1, "severity": 5, "appname": "myapp",
                    "sd": {"timeQuality": {"tzKnown": "1", "isSynced": "0"}}}),
            }),
        );
        // `logger --rfc5424 --octet-count --tcp -t myapp --sd-id zoo@123 --sd-param tiger="hungry" --msgid ID47
        // -i -p local0.err hello world`
        check(
            b"<131>1 2026-11-29T04:34:49.233768+00:00 vm myapp 10581 ID47 [timeQuality tzKnown=\"1\" isSynced=\"0\"][zoo@123 tiger=\"hungry\"] hello world",
            Some(Want {
                ts_ns: ts("2026-11-29T04:34:49.233768Z"),
                status: "error",
                host: Some("vm"),
                service: Some("myapp"),
                message: "hello world",
                syslog: json!({"facility": 16, "severity": 3, "appname": "myapp", "procid": "10581",
                    "msgid": "ID47", "sd": {"timeQuality": {"tzKnown": "1", "isSynced": "0"},
                    "zoo@123": {"tiger": "hungry"}}}),
            }),
        );
        // `logger --rfc5424=notq,notime,nohost --octet-count -t myapp hello world`
        check(
            b"<13>1 - - myapp - - - hello world",
            Some(Want {
                ts_ns: NOW,
                status: "notice",
                host: None,
                service: Some("myapp"),
                message: "hello world",
                syslog: json!({"facility": 1, "severity": 5, "appname": "myapp"}),
            }),
        );
        // `logger --rfc5424 --tcp` newline-framed: the framer leaves the LF, the parser ignores it.
        check(
            b"<13>1 2026-11-29T04:34:55.840246+00:00 vm myapp - - - hello world\n",
            Some(Want {
                ts_ns: ts("2026-11-29T04:34:55.840246Z"),
                status: "notice",
                host: Some("vm"),
                service: Some("myapp"),
                message: "hello world",
                syslog: json!({"facility": 1, "severity": 5, "appname": "myapp"}),
            }),
        );
        // RFC 5424 §6.5 examples.
        check(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
            Some(Want {
                ts_ns: ts("2003-10-11T22:14:15.003Z"),
                status: "critical",
                host: Some("mymachine.example.com"),
                service: Some("su"),
                message: "'su root' failed for lonvick on /dev/pts/8",
                syslog: json!({"facility": 4, "severity": 2, "appname": "su", "msgid": "ID47"}),
            }),
        );
        check(
            b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
            Some(Want {
                ts_ns: ts("2003-08-24T12:14:15.000003Z"),
                status: "notice",
                host: Some("192.0.2.1"),
                service: Some("myproc"),
                message: "%% It's time to make the do-nuts.",
                syslog: json!({"facility": 20, "severity": 5, "appname": "myproc", "procid": "8710"}),
            }),
        );
        check(
            br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#,
            Some(Want {
                ts_ns: ts("2003-10-11T22:14:15.003Z"),
                status: "notice",
                host: Some("mymachine.example.com"),
                service: Some("evntslog"),
                message: "",
                syslog: json!({"facility": 20, "severity": 5, "appname": "evntslog", "msgid": "ID47",
                    "sd": {"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
                    "examplePriority@32473": {"class": "high"}}}),
            }),
        );
        // Escapes in structured data values.
        check(
            br#"<14>1 - h a - - [x@1 q="say \"hi\" \\ \]" p="a\b"] m"#,
            Some(Want {
                ts_ns: NOW,
                status: "info",
                host: Some("h"),
                service: Some("a"),
                message: "m",
                syslog: json!({"facility": 1, "severity": 6, "appname": "a",
                    "sd": {"x@1": {"q": "say \"hi\" \\ ]", "p": "a\\b"}}}),
            }),
        );
        // util-linux `logger --rfc3164 --tcp -t myapp hello world`
        check(
            b"<13>Nov 29 04:34:49 vm myapp: hello world\n",
            Some(Want {
                ts_ns: ts("2026-11-29T04:34:49Z"),
                status: "notice",
                host: Some("vm"),
                service: Some("myapp"),
                message: "hello world",
                syslog: json!({"facility": 1, "severity": 5, "appname": "myapp"}),
            }),
        );
        // `logger --rfc3164 --tcp -t myapp -i -p user.warning hello world`
        check(
            b"<12>Nov 29 04:34:50 vm myapp[10673]: hello world\n",
            Some(Want {
                ts_ns: ts("2026-11-29T04:34:50Z"),
                status: "warning",
                host: Some("vm"),
                service: Some("myapp"),
                message: "hello world",
                syslog: json!({"facility": 1, "severity": 4, "appname": "myapp", "procid": "10673"}),
            }),
        );
        // `logger -u <socket> -t myapp hello local`: the local format has no hostname.
        check(
            b"<13>Nov 29 04:34:59 myapp: hello local",
            Some(Want {
                ts_ns: ts("2026-11-29T04:34:59Z"),
                status: "notice",
                host: None,
                service: Some("myapp"),
                message: "hello local",
                syslog: json!({"facility": 1, "severity": 5, "appname": "myapp"}),
            }),
        );
        // RFC 3164 §5.4 example, day padded with a space; December is in the past year when received in
        // late November.
        check(
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            Some(Want {
                ts_ns: ts("2026-10-11T22:14:15Z"),
                status: "critical",
                host: Some("mymachine"),
                service: Some("su"),
                message: "'su root' failed for lonvick on /dev/pts/8",
                syslog: json!({"facility": 4, "severity": 2, "appname": "su"}),
            }),
        );
        check(
            b"<30>Dec  5 01:02:03 host cron[42]: job done",
            Some(Want {
                ts_ns: ts("2025-12-05T01:02:03Z"),
                status: "info",
                host: Some("host"),
                service: Some("cron"),
                message: "job done",
                syslog: json!({"facility": 3, "severity": 6, "appname": "cron", "procid": "42"}),
            }),
        );
        // Tomorrow (within a day) stays in this year.
        check(
            b"<30>Nov 30 01:00:00 host app: early clock",
            Some(Want {
                ts_ns: ts("2026-11-30T01:00:00Z"),
                status: "info",
                host: Some("host"),
                service: Some("app"),
                message: "early clock",
                syslog: json!({"facility": 3, "severity": 6, "appname": "app"}),
            }),
        );
        // Host without a tag: the rest is the message.
        check(
            b"<0>Nov 29 04:00:00 router link down on eth0",
            Some(Want {
                ts_ns: ts("2026-11-29T04:00:00Z"),
                status: "emergency",
                host: Some("router"),
                service: None,
                message: "link down on eth0",
                syslog: json!({"facility": 0, "severity": 0}),
            }),
        );
        // rsyslog forwarding format: RFC 3339 timestamp in a BSD frame.
        check(
            b"<86>2026-11-29T04:00:00.5+01:00 web sshd[7]: accepted publickey",
            Some(Want {
                ts_ns: ts("2026-11-29T03:00:00.5Z"),
                status: "info",
                host: Some("web"),
                service: Some("sshd"),
                message: "accepted publickey",
                syslog: json!({"facility": 10, "severity": 6, "appname": "sshd", "procid": "7"}),
            }),
        );
        // Year in the timestamp, fractional seconds.
        check(
            b"<187>Mar  1 2024 18:46:11.123 sw1 %LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
            Some(Want {
                ts_ns: ts("2024-03-01T18:46:11.123Z"),
                status: "error",
                host: Some("sw1"),
                service: Some("%LINK-3-UPDOWN"),
                message: "Interface Gi0/1, changed state to down",
                syslog: json!({"facility": 23, "severity": 3, "appname": "%LINK-3-UPDOWN"}),
            }),
        );
        // No timestamp at all: everything after PRI is the content, a leading tag still recognised.
        check(
            b"<13>myapp: no timestamp here",
            Some(Want {
                ts_ns: NOW,
                status: "notice",
                host: None,
                service: Some("myapp"),
                message: "no timestamp here",
                syslog: json!({"facility": 1, "severity": 5, "appname": "myapp"}),
            }),
        );
        check(
            b"<13>just text",
            Some(Want {
                ts_ns: NOW,
                status: "notice",
                host: None,
                service: None,
                message: "just text",
                syslog: json!({"facility": 1, "severity": 5}),
            }),
        );
        // Invalid UTF-8 is replaced, not refused.
        check(
            b"<14>Nov 29 04:00:00 h app: caf\xE9",
            Some(Want {
                ts_ns: ts("2026-11-29T04:00:00Z"),
                status: "info",
                host: Some("h"),
                service: Some("app"),
                message: "caf\u{FFFD}",
                syslog: json!({"facility": 1, "severity": 6, "appname": "app"}),
            }),
        );
        // Not syslog, or malformed RFC 5424.
        check(b"", None);
        check(b"hello", None);
        check(b"<>1 - - - - - -", None);
        check(b"<192>Nov 29 04:00:00 h a: m", None);
        check(b"<1a>x", None);
        check(b"<13>1 2026-13-01T00:00:00Z h a - - - m", None);
        check(b"<13>1 - h a - - [unterminated x=\"1\"", None);
        check(b"<13>1 - h a - - [id x=unquoted] m", None);
        check(b"<13>1 - h a - - nosd m", None);
        check(b"<13>1  h a - - - m", None);
    }

    #[test]
    fn looks_like() {
        assert!(looks_like_syslog(b"<0>x"));
        assert!(looks_like_syslog(b"<191>x"));
        assert!(!looks_like_syslog(b"<b>bold</b>"));
        assert!(!looks_like_syslog(b"<1234>x"));
    }

    #[test]
    fn never_panics_on_prefixes() {
        let frames: [&[u8]; 3] = [
            b"<131>1 2026-11-29T04:34:49.233768+00:00 vm myapp 10581 ID47 [a b=\"c\\\"\"][d e=\"f\"] msg",
            b"<12>Nov 29 04:34:50 vm myapp[10673]: hello world",
            b"<12>Mar  1 2024 18:46:11.123 sw1 x[1] y",
        ];
        for f in frames {
            for n in 0..=f.len() {
                let _ = parse_syslog(&f[..n], NOW);
            }
        }
    }
}
