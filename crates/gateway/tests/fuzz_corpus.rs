//! Replays every committed fuzz input (`fuzz/seeds/TARGET/*`) through its target, as a plain test:
//! cargo-fuzz's own build is too slow for every run, and an input that once crashed a target stays
//! here as a regression test. Running the fuzzers themselves: CONTRIBUTING.md#fuzzing.

#[allow(dead_code)]
#[path = "../../../fuzz/targets.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_committed_fuzz_input_is_handled() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    for (name, target) in targets::ALL {
        let directory = corpus.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
            .map(|entry| entry.expect("corpus entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "the {name} corpus is empty");
        for input in inputs {
            let data = std::fs::read(&input).expect("corpus input");
            // A panic names the input that caused it.
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} panicked on {}", input.display());
        }
    }
}
