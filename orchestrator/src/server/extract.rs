//! The API's own extractors for the query string and the path: axum's `Query` and `Path` answer
//! a malformed one with a text body, these answer 400 with the JSON `{"error": "..."}` every
//! other refusal has ([`ApiError::BadRequest`]). Every handler under `/api/v1/` uses them; and
//! [`body_error`], which turns a JSON body's rejection into the same errors (413 when the body is
//! over the limit, 408 when it stalled, 400 otherwise).

use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::guard::{HttpLimits, is_body_timeout};

/// The query string as `T`; a malformed one is 400 JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// The path's parameters as `T`; a malformed one (not UTF-8 once percent-decoded, not of the
/// expected type) is 400 JSON.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// A JSON body's rejection as the API's error: over `limits.max_body_bytes` is 413, a stalled
/// body 408, anything else (not JSON, not the expected shape) 400.
pub fn body_error(limits: &HttpLimits, rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::BytesRejection(e) => bytes_error(limits, e),
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// A raw body's rejection as the API's error (413, 408 or 400, as [`body_error`]).
pub fn bytes_error(limits: &HttpLimits, rejection: BytesRejection) -> ApiError {
    use std::error::Error as _;
    let stalled = rejection.source().is_some_and(is_body_timeout);
    if stalled {
        ApiError::BodyTimedOut(limits.body_timeout)
    } else if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge {
            limit: limits.max_body_bytes,
        }
    } else {
        ApiError::BadRequest(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::FromRequest;
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;

    #[derive(Debug, serde::Deserialize)]
    struct Limit {
        #[allow(dead_code)]
        limit: Option<usize>,
    }

    async fn error_of(response: axum::response::Response) -> (StatusCode, String, serde_json::Value) {
        let status = response.status();
        let content_type = response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        (
            status,
            content_type,
            serde_json::from_slice(&body).unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn a_malformed_query_string_is_400_json() {
        let (mut parts, ()) = Request::get("/x?limit=-1").body(()).unwrap().into_parts();
        let rejection = ApiQuery::<Limit>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        let (status, content_type, body) = error_of(rejection.into_response()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(content_type, "application/json");
        assert!(
            body["error"].as_str().unwrap_or_default().contains("limit"),
            "{body}"
        );
        let (mut parts, ()) = Request::get("/x?limit=7").body(()).unwrap().into_parts();
        let ApiQuery(q) = ApiQuery::<Limit>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(q.limit, Some(7));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_json() {
        let limits = HttpLimits {
            max_body_bytes: 8,
            ..HttpLimits::default()
        };
        let request = Request::post("/x")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"on": true, "reason": "far too long"}"#))
            .unwrap();
        let request = {
            let (parts, body) = request.into_parts();
            let body = Body::new(http_body_util::Limited::new(body, limits.max_body_bytes));
            Request::from_parts(parts, body)
        };
        let rejection = axum::Json::<serde_json::Value>::from_request(request, &())
            .await
            .unwrap_err();
        let (status, _, body) = error_of(body_error(&limits, rejection).into_response()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert!(body["error"].is_string());
    }
}
