//! Fuzzes the DogStatsD datagram parser: arbitrary bytes must never panic, and every error must have a
//! reason and a message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_ingest::statsd::parser::{parse_datagram, Line};

fuzz_target!(|data: &[u8]| {
    for line in parse_datagram(data) {
        match line {
            Ok(Line::Metric(m)) => {
                assert!(!m.name.is_empty());
                assert!(!m.values.is_empty());
                assert!(m.sample_rate > 0.0 && m.sample_rate <= 1.0);
                let _ = m.tag_set(100, 200);
            }
            Ok(Line::Event(e)) => assert!(!e.title.is_empty()),
            Ok(Line::ServiceCheck(sc)) => assert!(sc.status <= 3),
            Err(e) => {
                assert!(!e.reason().is_empty());
                let _ = e.to_string();
            }
        }
    }
});
