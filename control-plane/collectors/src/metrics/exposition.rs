//! A bounded parser for the Prometheus text exposition format (0.0.4) and OpenMetrics
//! text (1.0): `# TYPE`, `# HELP`, `# UNIT`, `# EOF`, samples with labels, optional
//! timestamps, and OpenMetrics exemplars (skipped).
//!
//! Every input is untrusted: the parser never panics, rejects lines longer than
//! [`Limits::max_line_len`], keeps at most [`Limits::max_series`] samples and
//! [`Limits::max_labels`] labels per sample, drops non-finite values, and counts
//! everything it refused in [`Problems`], with the first problem spelled out. Memory is
//! bounded by `max_series` × `max_line_len` plus the family table (also capped).

use std::collections::HashMap;

/// What the parser accepts.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longer lines are skipped whole.
    pub max_line_len: usize,
    /// Samples kept per scrape; the rest are dropped and counted.
    pub max_series: usize,
    /// A sample with more labels is dropped and counted.
    pub max_labels: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line_len: 16 * 1024,
            max_series: 20_000,
            max_labels: 32,
        }
    }
}

/// The declared type of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// What the parser refused. `first` names the first problem with its line number.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Problems {
    pub malformed_lines: u64,
    pub long_lines: u64,
    pub too_many_labels: u64,
    pub non_finite: u64,
    pub over_series_limit: u64,
    pub first: Option<String>,
}

impl Problems {
    pub fn total(&self) -> u64 {
        self.malformed_lines
            + self.long_lines
            + self.too_many_labels
            + self.non_finite
            + self.over_series_limit
    }

    fn note(&mut self, line: usize, message: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some(format!("line {line}: {}", message()));
        }
    }
}

/// A parsed exposition.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Family name -> declared type.
    pub types: HashMap<String, MetricType>,
    pub problems: Problems,
}

impl Exposition {
    /// The type of the family a sample belongs to: its own name, or its name without a
    /// `_total`, `_bucket`, `_sum`, `_count` or `_created` suffix.
    pub fn family_of<'a>(&self, sample_name: &'a str) -> (&'a str, MetricType) {
        if let Some(kind) = self.types.get(sample_name) {
            return (sample_name, *kind);
        }
        for suffix in ["_total", "_bucket", "_sum", "_count", "_created"] {
            if let Some(family) = sample_name.strip_suffix(suffix)
                && let Some(kind) = self.types.get(family)
            {
                return (family, *kind);
            }
        }
        (sample_name, MetricType::Untyped)
    }
}

/// Parses `text`; never fails as a whole, only line by line.
pub fn parse(text: &str, limits: &Limits) -> Exposition {
    let mut out = Exposition::default();
    // Declared families are bounded like samples.
    let max_types = limits.max_series;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.len() > limits.max_line_len {
            out.problems.long_lines += 1;
            out.problems.note(number, || {
                format!(
                    "line of {} bytes exceeds the limit of {}",
                    line.len(),
                    limits.max_line_len
                )
            });
            continue;
        }
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            let mut words = comment.split_ascii_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("EOF"), None, _) => break,
                (Some("TYPE"), Some(name), Some(kind)) => {
                    let kind = match kind {
                        "counter" => MetricType::Counter,
                        "gauge" => MetricType::Gauge,
                        "histogram" => MetricType::Histogram,
                        "summary" => MetricType::Summary,
                        _ => MetricType::Untyped,
                    };
                    if out.types.len() < max_types || out.types.contains_key(name) {
                        out.types.insert(name.to_owned(), kind);
                    }
                }
                _ => {} // HELP, UNIT and free comments
            }
            continue;
        }
        match parse_sample(trimmed, limits) {
            Ok(sample) => {
                if !sample.value.is_finite() {
                    out.problems.non_finite += 1;
                    out.problems
                        .note(number, || format!("{} has a non-finite value", sample.name));
                } else if out.samples.len() >= limits.max_series {
                    out.problems.over_series_limit += 1;
                    out.problems.note(number, || {
                        format!("more than {} samples in one scrape", limits.max_series)
                    });
                } else {
                    out.samples.push(sample);
                }
            }
            Err(LineError::TooManyLabels) => {
                out.problems.too_many_labels += 1;
                out.problems
                    .note(number, || format!("more than {} labels", limits.max_labels));
            }
            Err(LineError::Malformed(reason)) => {
                out.problems.malformed_lines += 1;
                out.problems.note(number, || reason.to_owned());
            }
        }
    }
    out
}

enum LineError {
    Malformed(&'static str),
    TooManyLabels,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn parse_sample(line: &str, limits: &Limits) -> Result<Sample, LineError> {
    let bytes = line.as_bytes();
    let mut pos = 0;
    if bytes.is_empty() || !is_name_start(bytes[0]) {
        return Err(LineError::Malformed("expected a metric name"));
    }
    while pos < bytes.len() && is_name_char(bytes[pos]) {
        pos += 1;
    }
    let name = &line[..pos];
    let mut labels = Vec::new();
    if bytes.get(pos) == Some(&b'{') {
        pos += 1;
        loop {
            pos = skip_spaces(bytes, pos);
            match bytes.get(pos) {
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                Some(&c) if is_name_start(c) => {}
                _ => return Err(LineError::Malformed("expected a label name or `}`")),
            }
            let start = pos;
            while pos < bytes.len() && is_name_char(bytes[pos]) {
                pos += 1;
            }
            let label = &line[start..pos];
            pos = skip_spaces(bytes, pos);
            if bytes.get(pos) != Some(&b'=') {
                return Err(LineError::Malformed("expected `=` after a label name"));
            }
            pos = skip_spaces(bytes, pos + 1);
            if bytes.get(pos) != Some(&b'"') {
                return Err(LineError::Malformed("expected a quoted label value"));
            }
            pos += 1;
            let mut value = String::new();
            loop {
                // Find the next quote or backslash; copy the run before it whole, so
                // multi-byte characters stay intact.
                let rest = &line[pos..];
                let Some(offset) = rest.find(['"', '\\']) else {
                    return Err(LineError::Malformed("unterminated label value"));
                };
                value.push_str(&rest[..offset]);
                pos += offset;
                if bytes[pos] == b'"' {
                    pos += 1;
                    break;
                }
                match bytes.get(pos + 1) {
                    Some(b'n') => value.push('\n'),
                    Some(b'\\') => value.push('\\'),
                    Some(b'"') => value.push('"'),
                    _ => return Err(LineError::Malformed("bad escape in a label value")),
                }
                pos += 2;
            }
            if labels.len() >= limits.max_labels {
                return Err(LineError::TooManyLabels);
            }
            labels.push((label.to_owned(), value));
            pos = skip_spaces(bytes, pos);
            match bytes.get(pos) {
                Some(b',') => pos += 1,
                Some(b'}') => {}
                _ => return Err(LineError::Malformed("expected `,` or `}` after a label")),
            }
        }
    }
    let rest = &line[pos..];
    if !rest.starts_with([' ', '\t']) {
        return Err(LineError::Malformed("expected a space before the value"));
    }
    // An OpenMetrics exemplar follows ` # `; it is not part of the sample.
    let rest = match rest.find(" # ") {
        Some(at) => &rest[..at],
        None => rest,
    };
    let mut fields = rest.split_ascii_whitespace();
    let value = fields
        .next()
        .ok_or(LineError::Malformed("missing value"))
        .and_then(parse_value)?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(text) => Some(parse_timestamp(text)?),
    };
    if fields.next().is_some() {
        return Err(LineError::Malformed("unexpected text after the timestamp"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms,
    })
}

fn skip_spaces(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && (bytes[pos] == b' ' || bytes[pos] == b'\t') {
        pos += 1;
    }
    pos
}

fn parse_value(text: &str) -> Result<f64, LineError> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" => Ok(f64::INFINITY),
        "-Inf" | "-inf" => Ok(f64::NEG_INFINITY),
        "NaN" | "nan" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .ok()
            // Rust also accepts "infinity" and "nan" spelled out; the format does not.
            .filter(|_| {
                text.bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
            })
            .ok_or(LineError::Malformed("value is not a number")),
    }
}

/// Prometheus text has integer milliseconds; OpenMetrics has (fractional) seconds.
fn parse_timestamp(text: &str) -> Result<i64, LineError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds.abs() < 1e14 => Ok((seconds * 1000.0) as i64),
        _ => Err(LineError::Malformed("timestamp is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_prometheus_text() {
        let text = "# HELP http_requests_total Requests.\n\
            # TYPE http_requests_total counter\n\
            http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
            http_requests_total{method=\"get\", code=\"4\\\"0\\\\0\\n\"} 3\n\
            # TYPE rpc_duration_seconds histogram\n\
            rpc_duration_seconds_bucket{le=\"0.5\"} 10\n\
            rpc_duration_seconds_bucket{le=\"+Inf\"} 12\n\
            rpc_duration_seconds_sum 3.5e0\n\
            metric_without_labels -1.5\n";
        let parsed = parse(text, &Limits::default());
        assert_eq!(parsed.problems, Problems::default());
        assert_eq!(parsed.samples.len(), 6);
        assert_eq!(parsed.samples[0].timestamp_ms, Some(1395066363000));
        assert_eq!(parsed.samples[1].labels[1].1, "4\"0\\0\n");
        assert_eq!(
            parsed.family_of("rpc_duration_seconds_bucket"),
            ("rpc_duration_seconds", MetricType::Histogram)
        );
        assert_eq!(
            parsed.family_of("http_requests_total"),
            ("http_requests_total", MetricType::Counter)
        );
        assert_eq!(parsed.samples[5].value, -1.5);
    }

    #[test]
    fn parses_openmetrics_with_exemplars_and_eof() {
        let text = "# TYPE foo counter\n\
            # UNIT foo seconds\n\
            foo_total{a=\"b\"} 17 # {trace_id=\"abc\"} 1.0 1520879607.789\n\
            foo_created 1520872607.123\n\
            # EOF\n\
            after_eof 1\n";
        let parsed = parse(text, &Limits::default());
        assert_eq!(parsed.problems.total(), 0, "{:?}", parsed.problems);
        assert_eq!(parsed.samples.len(), 2);
        assert_eq!(parsed.samples[0].value, 17.0);
        assert_eq!(parsed.family_of("foo_total").1, MetricType::Counter);
    }

    #[test]
    fn malformed_lines_are_counted_and_the_first_is_named() {
        let text =
            "good 1\n{bad} 1\nname{a=\"x} 1\nname{a=x} 1\nname 1 2 3\nname notanumber\nok 2\n";
        let parsed = parse(text, &Limits::default());
        assert_eq!(parsed.samples.len(), 2);
        assert_eq!(parsed.problems.malformed_lines, 5);
        assert_eq!(
            parsed.problems.first.as_deref(),
            Some("line 2: expected a metric name")
        );
    }

    #[test]
    fn nan_flood_is_dropped_and_counted() {
        let mut text = String::new();
        for i in 0..50_000 {
            text.push_str(&format!("flood{{i=\"{i}\"}} NaN\n"));
        }
        text.push_str("kept 1\n");
        let parsed = parse(&text, &Limits::default());
        assert_eq!(parsed.samples.len(), 1);
        assert_eq!(parsed.problems.non_finite, 50_000);
    }

    #[test]
    fn cardinality_bomb_is_cut_at_the_series_limit() {
        let mut text = String::from("# TYPE bomb gauge\n");
        for i in 0..100_000 {
            text.push_str(&format!("bomb{{id=\"{i}\"}} 1\n"));
        }
        let limits = Limits::default();
        let parsed = parse(&text, &limits);
        assert_eq!(parsed.samples.len(), limits.max_series);
        assert_eq!(
            parsed.problems.over_series_limit,
            100_000 - limits.max_series as u64
        );
    }

    #[test]
    fn label_and_line_limits() {
        let many: Vec<String> = (0..100).map(|i| format!("l{i}=\"v\"")).collect();
        let text = format!("wide{{{}}} 1\n{} 1\n", many.join(","), "x".repeat(20_000));
        let parsed = parse(&text, &Limits::default());
        assert!(parsed.samples.is_empty());
        assert_eq!(parsed.problems.too_many_labels, 1);
        assert_eq!(parsed.problems.long_lines, 1);
    }

    fn exposition_like() -> impl Strategy<Value = String> {
        // Fragments of the grammar glued at random find more edge cases than bytes alone.
        let piece = prop_oneof![
            Just("# TYPE ".to_owned()),
            Just("# EOF".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("=\"".to_owned()),
            Just("\\".to_owned()),
            Just("\"".to_owned()),
            Just(",".to_owned()),
            Just(" ".to_owned()),
            Just("\n".to_owned()),
            Just(" # ".to_owned()),
            Just("NaN".to_owned()),
            Just("+Inf".to_owned()),
            "[a-z_:]{1,8}",
            "[0-9.eE+-]{1,12}",
            any::<String>(),
        ];
        prop::collection::vec(piece, 0..64).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let text = String::from_utf8_lossy(&bytes);
            let limits = Limits { max_line_len: 256, max_series: 16, max_labels: 4 };
            let parsed = parse(&text, &limits);
            prop_assert!(parsed.samples.len() <= 16);
            for sample in &parsed.samples {
                prop_assert!(sample.labels.len() <= 4);
                prop_assert!(sample.value.is_finite());
                prop_assert!(sample.name.len() <= 256);
            }
        }

        #[test]
        fn grammar_fragments_never_panic(text in exposition_like()) {
            let limits = Limits { max_line_len: 512, max_series: 32, max_labels: 4 };
            let parsed = parse(&text, &limits);
            prop_assert!(parsed.samples.len() <= 32);
            prop_assert!(parsed.types.len() <= 32);
        }

        #[test]
        fn written_samples_read_back(
            name in "[a-z_][a-z0-9_]{0,12}",
            labels in prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", any::<String>(), 0..4),
            value in -1e12f64..1e12,
        ) {
            let body: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!(
                    "{k}=\"{}\"",
                    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
                ))
                .collect();
            let text = format!("{name}{{{}}} {value:e}\n", body.join(","));
            let parsed = parse(&text, &Limits { max_line_len: 1 << 20, ..Limits::default() });
            prop_assert_eq!(parsed.problems.total(), 0, "{:?} for {}", parsed.problems, text);
            prop_assert_eq!(&parsed.samples[0].name, &name);
            let got: Vec<(String, String)> = parsed.samples[0].labels.clone();
            let want: Vec<(String, String)> = labels.into_iter().collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(parsed.samples[0].value, value);
        }
    }
}
