//! Fuzz target: the metric query parser never panics, keeps error positions inside the input, and a parsed
//! query prints to text that parses back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline_query::ast::clear_spans;
use sightline_query::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(mut q) => {
            let printed = q.to_string();
            let mut again =
                parse(&printed).unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}: {e}"));
            q.exprs.iter_mut().for_each(clear_spans);
            again.exprs.iter_mut().for_each(clear_spans);
            assert_eq!(q, again, "{text:?} printed as {printed:?}");
        }
        Err(e) => {
            assert!(
                e.pos <= text.len(),
                "{text:?}: position {} past the end",
                e.pos
            );
            assert!(
                text.is_char_boundary(e.pos),
                "{text:?}: position {} inside a character",
                e.pos
            );
        }
    }
});
