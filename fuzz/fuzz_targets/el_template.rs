//! Any text given as a template: parsing must fail cleanly or succeed, and a compiled template must
//! evaluate without panicking, even against a context where every root is null.
#![no_main]

use kafka_edge_el::{MapContext, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::parse(source) else {
        return;
    };
    let context = MapContext::default();
    let _ = template.evaluate(&context);
    let _ = template.evaluate_string(&context);
    let _ = template.evaluate_condition(&context);
});
