//! Reading series from an existing Prometheus (the catalog's `prometheus_backends`)
//! through its HTTP API, so a large installation keeps its TSDB and QueryRange still
//! answers for those series.

use serde::Deserialize;

use super::store::{Labels, Point, SeriesId, SeriesPoints, SeriesSelector, Source};
use pharos_core::domain::PrometheusBackend;

/// A Prometheus answer is cut at this size (and refused as too large).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Prometheus refuses more than 11,000 points per series; with no step given, the step
/// is chosen so a range gives at most this many.
const DEFAULT_POINTS: i64 = 10_000;

/// The PromQL selector for `selector`: `name{k="v",...}`.
pub fn promql(selector: &SeriesSelector) -> String {
    SeriesId {
        name: selector.name.clone(),
        labels: selector.labels.clone(),
    }
    .key()
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Matrix>,
}

#[derive(Deserialize)]
struct Matrix {
    metric: Labels,
    values: Vec<(f64, String)>,
}

/// `/api/v1/query_range` for `selector` over `[start_ms, end_ms]`; `step_ms` 0 picks a
/// step giving at most 10,000 points (at least one second).
pub async fn query_range(
    backend: &PrometheusBackend,
    selector: &SeriesSelector,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Result<Vec<SeriesPoints>, String> {
    let step_ms = if step_ms > 0 {
        step_ms
    } else {
        ((end_ms - start_ms) / DEFAULT_POINTS).max(1000)
    };
    let seconds = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("query", &promql(selector))
        .append_pair("start", &seconds(start_ms))
        .append_pair("end", &seconds(end_ms))
        .append_pair("step", &seconds(step_ms))
        .finish();
    let url = format!("{}/api/v1/query_range?{query}", backend.url);
    let failed = |e: String| format!("prometheus {} ({}): {e}", backend.name, backend.url);
    let tls = super::http::tls_for(backend.ca_file.as_deref()).map_err(failed)?;
    let call = super::http::Call {
        method: "GET",
        url: &url,
        headers: &[("accept", "application/json".to_owned())],
        body: Vec::new(),
    };
    let response = super::http::send(call, &tls, backend.timeout, MAX_BODY)
        .await
        .map_err(failed)?;
    if response.truncated {
        return Err(format!(
            "prometheus {} answered more than {} MiB; narrow the range or set a larger step",
            backend.name,
            MAX_BODY >> 20
        ));
    }
    decode(&backend.name, response.status, &response.body)
}

fn decode(backend: &str, status: u16, body: &[u8]) -> Result<Vec<SeriesPoints>, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        format!(
            "prometheus {backend} answered HTTP {status} with a body that is not its API's JSON: {e}"
        )
    })?;
    if answer.status != "success" {
        return Err(format!(
            "prometheus {backend} refused the query ({}): {}",
            answer.error_type.unwrap_or_default(),
            answer.error.unwrap_or_default()
        ));
    }
    let data = answer
        .data
        .ok_or_else(|| format!("prometheus {backend} answered success without data"))?;
    if data.result_type != "matrix" {
        return Err(format!(
            "prometheus {backend} answered a {} instead of a matrix",
            data.result_type
        ));
    }
    let mut out: Vec<SeriesPoints> = data
        .result
        .into_iter()
        .map(|mut matrix| {
            let name = matrix.metric.remove("__name__").unwrap_or_default();
            SeriesPoints {
                id: SeriesId {
                    name,
                    labels: matrix.metric,
                },
                points: matrix
                    .values
                    .into_iter()
                    .filter_map(|(seconds, value)| {
                        let value: f64 = value.parse().ok()?;
                        value.is_finite().then_some(Point {
                            ms: (seconds * 1000.0).round() as i64,
                            value,
                        })
                    })
                    .collect(),
                source: Source::Prometheus,
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_decode_and_errors_are_told() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","job":"node"},"values":[[1700000000.5,"1"],[1700000015,"NaN"],[1700000030,"0"]]}]}}"#;
        let series = decode("main", 200, body).unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].id.name, "up");
        assert_eq!(series[0].id.labels["job"], "node");
        assert_eq!(
            series[0].points,
            vec![
                Point {
                    ms: 1_700_000_000_500,
                    value: 1.0
                },
                Point {
                    ms: 1_700_000_030_000,
                    value: 0.0
                }
            ]
        );
        let refused = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        let err = decode("main", 400, refused).unwrap_err();
        assert!(
            err.contains("bad_data") && err.contains("parse error"),
            "{err}"
        );
        assert!(
            decode("main", 502, b"<html>")
                .unwrap_err()
                .contains("HTTP 502")
        );
    }

    #[test]
    fn selectors_become_promql() {
        let selector = SeriesSelector {
            name: "node_cpu_seconds_total".to_owned(),
            labels: Labels::from([("mode".to_owned(), "idle".to_owned())]),
        };
        assert_eq!(promql(&selector), r#"node_cpu_seconds_total{mode="idle"}"#);
    }
}
