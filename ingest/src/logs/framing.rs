//! An incremental framer for log streams over TCP: cuts a byte stream, fed in arbitrary chunks, into frames.
//!
//! Two framings are recognised, per frame (RFC 6587): octet counting, `<len> <frame>` where the frame is a
//! syslog message (it must start with `<`, so a line such as `200 OK` is never mistaken for a length), and
//! newline framing, where a frame ends at LF, CRLF or NUL. Empty frames are skipped.
//!
//! Memory is bounded: a frame longer than `max_line_bytes` is cut to its first `max_line_bytes` bytes and
//! emitted flagged `truncated` as soon as the overflow is seen; the rest of it is skipped up to the next frame
//! boundary without being buffered. So a framer never holds more than `max_line_bytes + 12` bytes.

/// One frame cut from the stream, without its delimiter or length prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub data: Vec<u8>,
    /// The frame was longer than `max_line_bytes` (or the stream ended inside an octet-counted frame), and
    /// `data` holds only its beginning.
    pub truncated: bool,
}

/// Longest octet-count length prefix, in digits.
const MAX_LEN_DIGITS: u8 = 10;

/// Where the octet-counting check stands at the start of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    /// Nothing read yet in this frame.
    Start,
    /// Digits read so far: their value and count.
    Digits(u64, u8),
    /// Digits and a space read: the length, if a `<` follows.
    Space(u64),
    /// Not octet-counted: a newline-delimited frame.
    Line,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a frame or inside a newline-delimited one.
    Line(Prefix),
    /// Skipping the rest of an over-long newline-delimited frame.
    Discard,
    /// Inside an octet-counted frame, `remaining` bytes still to come.
    Counted { remaining: u64, truncated: bool },
}

/// The incremental framer. Feed it with [`Framer::push`]; call [`Framer::finish`] at the end of the stream.
#[derive(Debug, Clone)]
pub struct Framer {
    max: usize,
    buf: Vec<u8>,
    state: State,
}

impl Framer {
    /// A framer keeping at most `max_line_bytes` (at least 1) of each frame.
    pub fn new(max_line_bytes: usize) -> Framer {
        Framer {
            max: max_line_bytes.max(1),
            buf: Vec::new(),
            state: State::Line(Prefix::Start),
        }
    }

    /// Bytes held for the frame in progress.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Consumes `chunk`, appending every frame it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Frame>) {
        let mut i = 0;
        while i < chunk.len() {
            match self.state {
                State::Line(Prefix::Line) => i = self.line_bytes(chunk, i, out),
                State::Line(prefix) => i = self.prefix_byte(prefix, chunk, i, out),
                State::Discard => match delimiter(&chunk[i..]) {
                    Some(d) => {
                        i += d + 1;
                        self.state = State::Line(Prefix::Start);
                    }
                    None => i = chunk.len(),
                },
                State::Counted {
                    remaining,
                    truncated,
                } => {
                    let n = remaining.min((chunk.len() - i) as u64) as usize;
                    let keep = n.min(self.max - self.buf.len().min(self.max));
                    self.buf.extend_from_slice(&chunk[i..i + keep]);
                    i += n;
                    self.state = State::Counted {
                        remaining: remaining - n as u64,
                        truncated: truncated || keep < n,
                    };
                    self.end_counted_if_done(out);
                }
            }
        }
    }

    /// Ends the stream: emits the frame in progress, if any (an incomplete octet-counted frame flagged
    /// `truncated`), and resets the framer.
    pub fn finish(&mut self, out: &mut Vec<Frame>) {
        match self.state {
            State::Line(_) => self.emit_line(out),
            State::Counted { .. } => {
                if !self.buf.is_empty() {
                    out.push(Frame {
                        data: std::mem::take(&mut self.buf),
                        truncated: true,
                    });
                }
            }
            State::Discard => {}
        }
        self.buf.clear();
        self.state = State::Line(Prefix::Start);
    }

    /// One byte at a frame start while it may still be an octet-count prefix. Returns the next position.
    fn prefix_byte(
        &mut self,
        prefix: Prefix,
        chunk: &[u8],
        i: usize,
        out: &mut Vec<Frame>,
    ) -> usize {
        let c = chunk[i];
        let next = match (prefix, c) {
            // Empty frames (and a CR or NUL left over after an octet-counted frame) are skipped.
            (Prefix::Start, b'\n' | b'\r' | 0) => return i + 1,
            (Prefix::Start, b'1'..=b'9') => Prefix::Digits(u64::from(c - b'0'), 1),
            (Prefix::Digits(v, n), b'0'..=b'9') if n < MAX_LEN_DIGITS => {
                Prefix::Digits(v * 10 + u64::from(c - b'0'), n + 1)
            }
            (Prefix::Digits(v, _), b' ') => Prefix::Space(v),
            (Prefix::Space(len), b'<') => {
                self.buf.clear();
                self.buf.push(b'<');
                self.state = State::Counted {
                    remaining: len - 1,
                    truncated: false,
                };
                self.end_counted_if_done(out);
                return i + 1;
            }
            _ => {
                // Not octet-counted: the bytes read so far start a line; this one is handled as such.
                self.state = State::Line(Prefix::Line);
                return i;
            }
        };
        self.buf.push(c);
        self.state = State::Line(next);
        i + 1
    }

    /// Bytes of a newline-delimited frame from `i`. Returns the next position.
    fn line_bytes(&mut self, chunk: &[u8], i: usize, out: &mut Vec<Frame>) -> usize {
        let rest = &chunk[i..];
        let (seg, next, ends) = match delimiter(rest) {
            Some(d) => (&rest[..d], i + d + 1, true),
            None => (rest, chunk.len(), false),
        };
        // One byte beyond the limit is allowed while it may be the CR of a CRLF.
        if self.buf.len() + seg.len() <= self.max + 1 {
            self.buf.extend_from_slice(seg);
            if ends {
                self.emit_line(out);
                self.state = State::Line(Prefix::Start);
            }
        } else {
            let room = self.max.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&seg[..room.min(seg.len())]);
            self.buf.truncate(self.max);
            out.push(Frame {
                data: std::mem::take(&mut self.buf),
                truncated: true,
            });
            self.state = if ends {
                State::Line(Prefix::Start)
            } else {
                State::Discard
            };
        }
        next
    }

    /// Emits the buffered newline-delimited frame (without a trailing CR), unless it is empty.
    fn emit_line(&mut self, out: &mut Vec<Frame>) {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let truncated = self.buf.len() > self.max;
        self.buf.truncate(self.max);
        if !self.buf.is_empty() {
            out.push(Frame {
                data: std::mem::take(&mut self.buf),
                truncated,
            });
        }
    }

    fn end_counted_if_done(&mut self, out: &mut Vec<Frame>) {
        if let State::Counted {
            remaining: 0,
            truncated,
        } = self.state
        {
            out.push(Frame {
                data: std::mem::take(&mut self.buf),
                truncated,
            });
            self.state = State::Line(Prefix::Start);
        }
    }
}

/// Position of the first frame delimiter (LF or NUL).
fn delimiter(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n' || c == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out);
            assert!(
                f.buffered_len() <= max + 12,
                "framer holds {} bytes",
                f.buffered_len()
            );
        }
        f.finish(&mut out);
        out.into_iter()
            .map(|fr| (String::from_utf8_lossy(&fr.data).into_owned(), fr.truncated))
            .collect()
    }

    fn check(max: usize, input: &[u8], expected: &[(&str, bool)]) {
        let want: Vec<(String, bool)> = expected.iter().map(|(s, t)| (s.to_string(), *t)).collect();
        assert_eq!(
            frames(max, &[input]),
            want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        // Byte by byte gives the same frames.
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            frames(max, &bytes),
            want,
            "{:?} byte by byte",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn framing_table() {
        check(
            100,
            b"a\nb\r\nc\0d",
            &[("a", false), ("b", false), ("c", false), ("d", false)],
        );
        check(100, b"\n\n\r\n\0x\n\n", &[("x", false)]);
        // util-linux `logger --rfc5424 --octet-count` sends no delimiter between frames.
        check(
            100,
            b"33 <13>1 - - myapp - - - hello world33 <13>1 - - myapp - - - hello again",
            &[
                ("<13>1 - - myapp - - - hello world", false),
                ("<13>1 - - myapp - - - hello again", false),
            ],
        );
        // An octet-counted frame may hold newlines; mixed framings; a trailing LF after a counted frame.
        check(
            100,
            b"12 <13>a\nb\0cdefplain line\n4 <1>x\n200 OK\n",
            &[
                ("<13>a\nb\0cdef", false),
                ("plain line", false),
                ("<1>x", false),
                ("200 OK", false),
            ],
        );
        check(100, b"1 <", &[("<", false)]);
        // Digits that are not a length prefix stay in the line.
        check(
            100,
            b"12 apples\n0 <x\n12345678901 <y\n",
            &[
                ("12 apples", false),
                ("0 <x", false),
                ("12345678901 <y", false),
            ],
        );
        check(100, b"42", &[("42", false)]);
        // Truncation of newline frames: exactly max is fine (also with CRLF), one more is cut.
        check(
            4,
            b"abcd\nabcd\r\nabcde\nab",
            &[
                ("abcd", false),
                ("abcd", false),
                ("abcd", true),
                ("ab", false),
            ],
        );
        check(4, b"abcdefghijkl\r\nxy\n", &[("abcd", true), ("xy", false)]);
        check(4, b"abcd\r", &[("abcd", false)]);
        check(4, b"abcd\rx\n", &[("abcd", true)]);
        // Truncation of octet-counted frames; the remainder is skipped, not read as lines.
        check(4, b"10 <123456789ok\n", &[("<123", true), ("ok", false)]);
        // The stream ends inside an octet-counted frame.
        check(100, b"50 <13>partial", &[("<13>partial", true)]);
        check(100, b"", &[]);
    }

    #[test]
    fn long_line_is_not_buffered() {
        let mut f = Framer::new(1024);
        let mut out = Vec::new();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..100 {
            f.push(&chunk, &mut out);
            assert!(f.buffered_len() <= 1025);
        }
        f.push(b"\nnext\n", &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data.len(), 1024);
        assert!(out[0].truncated);
        assert_eq!(out[1].data, b"next");
    }

    /// One frame of a generated stream: octet-counted or a line with its terminator.
    #[derive(Debug, Clone)]
    enum Gen {
        Counted(Vec<u8>),
        Line(Vec<u8>, &'static [u8]),
    }

    fn gen_frame() -> impl Strategy<Value = Gen> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..60).prop_map(|mut v| {
                v.insert(0, b'<');
                Gen::Counted(v)
            }),
            (
                "[a-z<>=\"][a-z0-9 <>=\"]{0,59}",
                prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\0"[..])]
            )
                .prop_map(|(s, t)| Gen::Line(s.into_bytes(), t)),
        ]
    }

    proptest! {
        #[test]
        fn any_chunking_yields_the_same_frames(
            gens in proptest::collection::vec(gen_frame(), 0..20),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..30),
            max in 8usize..80,
        ) {
            let mut stream = Vec::new();
            let mut want = Vec::new();
            for g in &gens {
                let data = match g {
                    Gen::Counted(d) => {
                        stream.extend_from_slice(format!("{} ", d.len()).as_bytes());
                        stream.extend_from_slice(d);
                        d
                    }
                    Gen::Line(d, t) => {
                        stream.extend_from_slice(d);
                        stream.extend_from_slice(t);
                        d
                    }
                };
                want.push(Frame { data: data[..data.len().min(max)].to_vec(), truncated: data.len() > max });
            }
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            points.sort_unstable();
            let mut f = Framer::new(max);
            let mut got = Vec::new();
            let mut last = 0;
            for p in points.into_iter().chain([stream.len()]) {
                f.push(&stream[last..p], &mut got);
                prop_assert!(f.buffered_len() <= max + 12);
                last = p;
            }
            f.finish(&mut got);
            prop_assert_eq!(got, want);
        }
    }
}
