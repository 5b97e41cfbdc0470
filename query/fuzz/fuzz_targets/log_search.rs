//! Fuzz target: the log search parser never panics, keeps error positions and spans at char boundaries inside
//! the input, and a parsed search prints to text that parses back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_query::logsearch::{clear_spans, display, parse_search};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_search(text) {
        Ok(mut expr) => {
            let printed = display(&expr);
            let mut again = parse_search(&printed)
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}: {e}"));
            clear_spans(&mut expr);
            clear_spans(&mut again);
            assert_eq!(expr, again, "{text:?} printed as {printed:?}");
        }
        Err(e) => {
            assert!(
                e.position <= text.len(),
                "{text:?}: position {} past the end",
                e.position
            );
            assert!(
                text.is_char_boundary(e.position),
                "{text:?}: position {} inside a character",
                e.position
            );
        }
    }
});
