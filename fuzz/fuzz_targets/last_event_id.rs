//! See `targets::last_event_id` (fuzz/targets.rs), which the test command also replays on the corpus.
#![no_main]

// Each binary uses one of the shared targets.
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::last_event_id(data));
