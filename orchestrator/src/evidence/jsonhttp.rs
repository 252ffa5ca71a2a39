//! `jsonhttp` signals: GET a JSON API (a tracing backend, a status page) and read one value
//! through a JSON path.
//!
//! With `source`, the URL is a path under that configured backend, sent with its headers and
//! token; without, it is an absolute http(s) URL. The value is what the path selects, `null` when
//! the path does not exist. A non-2xx status or a body that is not JSON is a backend error: the
//! API did not answer the question.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use super::client::BackendClient;
use crate::engine::evidence::EvidenceError;
use crate::model::jsonpath::JsonPath;

/// GETs `url` through `backend` and selects `path`.
pub async fn fetch(
    backend: &BackendClient,
    url: Url,
    path: &JsonPath,
    timeout: Duration,
) -> Result<Value, EvidenceError> {
    let who = backend.describe();
    tracing::debug!(backend = who, url = %url, path = %path, "jsonhttp GET");
    let reply = backend.get(url.clone(), timeout).await?;
    let mut shown = url;
    shown.set_query(None);
    if !reply.status.is_success() {
        return Err(EvidenceError::Backend(format!(
            "{who}: HTTP {} from {shown}: {}",
            reply.status.as_u16(),
            reply.snippet()
        )));
    }
    let body: Value = serde_json::from_slice(&reply.body).map_err(|e| {
        EvidenceError::Backend(format!(
            "{who}: the answer from {shown} is not JSON ({e}): {}",
            reply.snippet()
        ))
    })?;
    Ok(path.select(&body).cloned().unwrap_or(Value::Null))
}
