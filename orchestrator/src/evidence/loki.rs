//! `loki` signals: a LogQL instant query (`/loki/api/v1/query`) at the alert's start
//! (`time` in nanoseconds).
//!
//! Metric queries (`sum(count_over_time(...))`) answer a vector or a scalar: the value is shaped
//! as for Prometheus (one series → a number, several → an array, none → `null`). A log query
//! answers `streams`: the value is the number of log lines returned, across streams, at most
//! [`LINE_LIMIT`] (Loki's default `max_entries_limit_per_query`). For an exact count, write a
//! metric query.

use serde_json::Value;

use super::client::BackendClient;
use super::prometheus::{api_data, series, to_value};
use crate::engine::evidence::{EvidenceContext, EvidenceError};

/// The `limit` sent with every query.
pub const LINE_LIMIT: u32 = 5000;

/// The value of `query` (already rendered and escaped) for `ctx`.
pub async fn fetch(
    backend: &BackendClient,
    query: &str,
    ctx: &EvidenceContext,
) -> Result<Value, EvidenceError> {
    let nanos = ctx
        .at
        .timestamp_nanos_opt()
        .ok_or_else(|| EvidenceError::Request(format!("{} cannot be written in nanoseconds", ctx.at)))?;
    let mut url = backend.url("/loki/api/v1/query")?;
    url.query_pairs_mut()
        .append_pair("query", query)
        .append_pair("time", &nanos.to_string())
        .append_pair("limit", &LINE_LIMIT.to_string());
    tracing::debug!(backend = backend.describe(), query, at = %ctx.at, "loki query");
    let reply = backend.get(url, backend.timeout()).await?;
    let data = api_data(backend, &reply)?;
    let who = backend.describe();
    if data.get("resultType").and_then(Value::as_str) == Some("streams") {
        let streams = data
            .get("result")
            .and_then(Value::as_array)
            .ok_or_else(|| EvidenceError::Backend(format!("{who}: streams without a result array")))?;
        let lines: usize = streams
            .iter()
            .map(|s| s.get("values").and_then(Value::as_array).map_or(0, Vec::len))
            .sum();
        return Ok(Value::from(lines));
    }
    let at = ctx.at.timestamp_millis() as f64 / 1000.0;
    let series = series(&data, at).map_err(|m| EvidenceError::Backend(format!("{who}: {m}")))?;
    Ok(to_value(series))
}
