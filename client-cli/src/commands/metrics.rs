//! `pharos metrics QUERY --since 1h --step 1m`: QueryRange for a series selector, printed
//! as one row per series with a unicode sparkline.

use std::collections::HashMap;

use pharos_proto::v1 as pb;
use serde_json::json;

use crate::client::Client;
use crate::error::CliError;
use crate::output::{Output, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A series selector: NAME or NAME{label="value",...} (every label must match)
    query: String,
    /// How far back to look
    #[arg(long, default_value = "1h", value_parser = super::parse_since)]
    since: std::time::Duration,
    /// Average points per step, such as 1m; every stored point when absent
    #[arg(long, value_parser = super::parse_since)]
    step: Option<std::time::Duration>,
}

pub async fn run(client: &Client, args: Args, out: Output) -> Result<(), CliError> {
    let selector = parse_selector(&args.query).map_err(CliError::Usage)?;
    let mut metrics = client.metrics().await?;
    let series = metrics
        .query_range(pb::QueryRangeRequest {
            selector: Some(selector),
            start: Some(super::timestamp_ago(args.since)),
            end: None,
            step: args
                .step
                .map(|d| prost_types::Duration::try_from(d).unwrap_or_default()),
        })
        .await
        .map_err(|status| client.error(&status))?
        .into_inner()
        .series;
    let value = json!({
        "series": series.iter().map(|s| json!({
            "name": s.name,
            "labels": s.labels,
            "source": match pb::SeriesSource::try_from(s.source) {
                Ok(pb::SeriesSource::Memory) => "memory",
                Ok(pb::SeriesSource::Rollups) => "rollups",
                _ => "unspecified",
            },
            "points": s.points.iter().map(|p| json!({
                "time_unix_ms": p.time_unix_ms,
                "value": p.value,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    out.emit(&value, |out| {
        if series.is_empty() {
            return format!(
                "no series match {} in the last {}\n",
                args.query,
                humantime::format_duration(args.since)
            );
        }
        let mut table = Table::new(&["SERIES", ">POINTS", ">MIN", ">MAX", ">LAST", "SPARKLINE"]);
        for s in &series {
            let values: Vec<f64> = s.points.iter().map(|p| p.value).collect();
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let number = |v: f64| {
                if v.is_finite() {
                    format!("{v:.3}")
                } else {
                    String::new()
                }
            };
            table.row(vec![
                series_name(s).into(),
                values.len().to_string().into(),
                number(min).into(),
                number(max).into(),
                values
                    .last()
                    .copied()
                    .map(number)
                    .unwrap_or_default()
                    .into(),
                sparkline(&values, 60).into(),
            ]);
        }
        table.render(out)
    });
    Ok(())
}

fn series_name(s: &pb::Series) -> String {
    if s.labels.is_empty() {
        return s.name.clone();
    }
    let mut labels: Vec<_> = s.labels.iter().collect();
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{}{{{}}}", s.name, inner.join(","))
}

/// `NAME` or `NAME{a="x",b=y}` into a selector.
pub fn parse_selector(text: &str) -> Result<pb::SeriesSelector, String> {
    let text = text.trim();
    let (name, rest) = match text.find('{') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!(
            "invalid query {text:?}: give a series name, optionally with labels: name{{label=\"value\"}}"
        ));
    }
    let mut labels = HashMap::new();
    if let Some(rest) = rest {
        let inner = rest
            .strip_suffix('}')
            .ok_or_else(|| format!("invalid query {text:?}: missing closing '}}'"))?;
        for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                format!("invalid label matcher {pair:?} in {text:?}: use label=\"value\"")
            })?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            labels.insert(key.trim().to_owned(), value.to_owned());
        }
    }
    Ok(pb::SeriesSelector {
        name: name.to_owned(),
        labels,
    })
}

/// The values as block characters ▁..█ scaled between their min and max, at most
/// `width` wide (averaging neighbours when there are more values).
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let buckets: Vec<f64> = if values.len() <= width {
        values.to_vec()
    } else {
        (0..width)
            .map(|i| {
                let from = i * values.len() / width;
                let to = ((i + 1) * values.len() / width).max(from + 1);
                values[from..to].iter().sum::<f64>() / (to - from) as f64
            })
            .collect()
    };
    let min = buckets.iter().copied().fold(f64::INFINITY, f64::min);
    let max = buckets.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    buckets
        .iter()
        .map(|v| {
            if max > min {
                let level = ((v - min) / (max - min) * 7.0).round() as usize;
                BLOCKS[level.min(7)]
            } else {
                BLOCKS[3]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_spans_min_to_max() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 7.0], 10), "▁▂▃█");
        assert_eq!(sparkline(&[5.0, 5.0], 10), "▄▄");
        assert_eq!(sparkline(&[0.0, 0.0, 7.0, 7.0], 2), "▁█");
    }

    #[test]
    fn selectors_parse_names_and_labels() {
        let s = parse_selector("up{job=\"node\", instance=a}").unwrap();
        assert_eq!(s.name, "up");
        assert_eq!(s.labels["job"], "node");
        assert_eq!(s.labels["instance"], "a");
        assert!(parse_selector("{a=b}").is_err());
        assert!(parse_selector("up{a=b").is_err());
    }
}
