//! Arbitrary bytes through the exposition parser: no panic, and the limits hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pharos_control_plane::metrics::exposition::{Limits, parse};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let limits = Limits {
        max_line_len: 1024,
        max_series: 64,
        max_labels: 8,
    };
    let parsed = parse(&text, &limits);
    assert!(parsed.samples.len() <= limits.max_series);
    assert!(parsed.types.len() <= limits.max_series);
    for sample in &parsed.samples {
        assert!(sample.labels.len() <= limits.max_labels);
        assert!(sample.value.is_finite());
    }
});
