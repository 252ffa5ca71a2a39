//! `prometheus` signals: a PromQL query evaluated at the alert's start.
//!
//! An instant query at exactly `startsAt` would miss a series whose sample lands a moment later
//! (rule evaluation and scrape jitter), so the query runs over `[at − window, at + window]` with
//! `/api/v1/query_range` and `step = window` (1 s when the window is 0), and each series gives
//! the sample nearest `at` (ties go to the earlier one: what was true when the alert fired).
//! Evaluation timestamps are `start + k·step`, so one of them is `at` itself.
//!
//! The value: one series (or a scalar expression) → a JSON number; several → an array of
//! `{"metric": {labels}, "value": n}`; no series → `null` (no data, not zero). NaN and ±Inf → `null`.
//! This file also owns that conversion for Loki, whose metric queries answer the same shapes.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::client::{BackendClient, Reply};
use crate::engine::evidence::{EvidenceContext, EvidenceError};

/// The value of `query` (already rendered and escaped) for `ctx`.
pub async fn fetch(
    backend: &BackendClient,
    query: &str,
    ctx: &EvidenceContext,
) -> Result<Value, EvidenceError> {
    let step = if ctx.window.is_zero() {
        std::time::Duration::from_secs(1)
    } else {
        ctx.window
    };
    let window = chrono::Duration::from_std(ctx.window)
        .map_err(|e| EvidenceError::Request(format!("window {:?}: {e}", ctx.window)))?;
    let mut url = backend.url("/api/v1/query_range")?;
    url.query_pairs_mut()
        .append_pair("query", query)
        .append_pair("start", &unix_seconds(ctx.at - window))
        .append_pair("end", &unix_seconds(ctx.at + window))
        .append_pair("step", &format!("{:.3}", step.as_secs_f64()))
        // Prometheus abandons the query itself instead of computing an answer nobody reads.
        .append_pair("timeout", &format!("{:.3}", backend.timeout().as_secs_f64()));
    tracing::debug!(backend = backend.describe(), query, at = %ctx.at, "prometheus query_range");
    let reply = backend.get(url, backend.timeout()).await?;
    let data = api_data(backend, &reply)?;
    Ok(to_value(series(&data, at_seconds(ctx.at)).map_err(|m| {
        EvidenceError::Backend(format!("{}: {m}", backend.describe()))
    })?))
}

/// `{"status": "success", "data": {...}}` or `{"status": "error", "errorType", "error"}`: the
/// envelope Prometheus and Loki share.
#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The `data` of a successful answer; an error answer or an unexpected body is a backend error
/// that quotes what the backend said.
pub fn api_data(backend: &BackendClient, reply: &Reply) -> Result<Value, EvidenceError> {
    let who = backend.describe();
    match serde_json::from_slice::<Envelope>(&reply.body) {
        Ok(envelope) if envelope.status == "success" && reply.status.is_success() => envelope
            .data
            .ok_or_else(|| EvidenceError::Backend(format!("{who}: a success answer without `data`"))),
        Ok(envelope) => {
            let kind = envelope.error_type.map(|t| format!("{t}: ")).unwrap_or_default();
            let message = envelope.error.unwrap_or_else(|| reply.snippet());
            Err(EvidenceError::Backend(format!(
                "{who}: HTTP {}: {kind}{message}",
                reply.status.as_u16()
            )))
        }
        Err(_) => Err(EvidenceError::Backend(format!(
            "{who}: HTTP {}: {}",
            reply.status.as_u16(),
            reply.snippet()
        ))),
    }
}

/// One series' value at the chosen instant; `None` for NaN or ±Inf.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub metric: Map<String, Value>,
    pub value: Option<f64>,
}

/// The series of a `matrix`, `vector` or `scalar` result, each reduced to the sample nearest
/// `at` (unix seconds). Series without samples are left out.
pub fn series(data: &Value, at: f64) -> Result<Vec<Series>, String> {
    let kind = data.get("resultType").and_then(Value::as_str).unwrap_or("");
    let result = data.get("result").unwrap_or(&Value::Null);
    let metric = |s: &Value| {
        s.get("metric")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    match kind {
        "matrix" => {
            let mut out = Vec::new();
            for s in result.as_array().ok_or("a matrix without a result array")? {
                let samples = s
                    .get("values")
                    .and_then(Value::as_array)
                    .ok_or("a series without values")?;
                let mut nearest: Option<(f64, Option<f64>)> = None;
                for sample in samples {
                    let (t, v) = sample_pair(sample)?;
                    if nearest.is_none_or(|(best, _)| (t - at).abs() < (best - at).abs()) {
                        nearest = Some((t, v));
                    }
                }
                if let Some((_, value)) = nearest {
                    out.push(Series {
                        metric: metric(s),
                        value,
                    });
                }
            }
            Ok(out)
        }
        "vector" => result
            .as_array()
            .ok_or("a vector without a result array")?
            .iter()
            .map(|s| {
                let (_, value) = sample_pair(s.get("value").unwrap_or(&Value::Null))?;
                Ok(Series {
                    metric: metric(s),
                    value,
                })
            })
            .collect(),
        "scalar" => {
            let (_, value) = sample_pair(result)?;
            Ok(vec![Series {
                metric: Map::new(),
                value,
            }])
        }
        other => Err(format!("unexpected result type `{other}`")),
    }
}

/// The evidence value of a set of series.
pub fn to_value(series: Vec<Series>) -> Value {
    let number = |v: Option<f64>| {
        v.and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    };
    match series.len() {
        0 => Value::Null,
        1 => number(series[0].value),
        _ => Value::Array(
            series
                .into_iter()
                .map(|s| json!({"metric": s.metric, "value": number(s.value)}))
                .collect(),
        ),
    }
}

/// `[<unix seconds>, "<value>"]`.
fn sample_pair(sample: &Value) -> Result<(f64, Option<f64>), String> {
    let pair = sample
        .as_array()
        .filter(|p| p.len() >= 2)
        .ok_or("a sample is not [time, value]")?;
    let time = match &pair[0] {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
    .ok_or("a sample's time is not a number")?;
    let value = pair[1]
        .as_str()
        .ok_or("a sample's value is not a string")?
        .parse::<f64>()
        .map_err(|_| format!("a sample's value `{}` is not a number", pair[1]))?;
    Ok((time, value.is_finite().then_some(value)))
}

/// Unix seconds with milliseconds, as Prometheus takes them.
fn unix_seconds(t: DateTime<Utc>) -> String {
    let ms = t.timestamp_millis();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn at_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_nearest_the_alert_wins_and_ties_go_earlier() {
        let data = json!({"resultType": "matrix", "result": [
            {"metric": {"a": "1"}, "values": [[97, "1"], [100.5, "2"], [103, "3"]]},
            {"metric": {"a": "2"}, "values": [[99, "4"], [101, "5"]]},
            {"metric": {"a": "3"}, "values": []},
        ]});
        let s = series(&data, 100.0).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].value, Some(2.0));
        assert_eq!(s[1].value, Some(4.0));
        assert_eq!(
            to_value(s),
            json!([{"metric": {"a": "1"}, "value": 2.0}, {"metric": {"a": "2"}, "value": 4.0}])
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(to_value(vec![]), Value::Null);
        let nan = series(&json!({"resultType": "scalar", "result": [1, "NaN"]}), 1.0).unwrap();
        assert_eq!(to_value(nan), Value::Null);
        let inf = series(
            &json!({"resultType": "vector", "result": [{"metric": {}, "value": [1, "+Inf"]}]}),
            1.0,
        )
        .unwrap();
        assert_eq!(to_value(inf), Value::Null);
        let one = series(&json!({"resultType": "scalar", "result": [1, "0.25"]}), 1.0).unwrap();
        assert_eq!(to_value(one), json!(0.25));
        assert!(series(&json!({"resultType": "string", "result": [1, "x"]}), 1.0).is_err());
    }

    #[test]
    fn times_keep_milliseconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T16:05:00.345Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(unix_seconds(t), "1795536300.345");
    }
}
