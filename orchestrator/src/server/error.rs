//! The API's error type: every refusal is a status and a JSON body `{"error": "..."}` that says why.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::Role;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or unknown bearer token")]
    Unauthorized,
    #[error("a token with role {} cannot do this; it needs role {}", role.as_str(), required.as_str())]
    Forbidden { role: Role, required: Role },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}: method not allowed")]
    MethodNotAllowed(String),
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Conflict(String),
    #[error("state unavailable, nothing was stored: {0}")]
    Unavailable(String),
    #[error(
        "state did not answer in time, so this may have been stored; retrying is safe (a retry is recognised): {0}"
    )]
    MaybeStored(String),
    #[error("rootfix is starting: {0}")]
    Starting(String),
    #[error("the request took longer than {}s", .0.as_secs())]
    TimedOut(std::time::Duration),
    #[error("no part of the body arrived for {}s", .0.as_secs())]
    BodyTimedOut(std::time::Duration),
    #[error("more than {0} requests at once; retry shortly")]
    Overloaded(usize),
}

impl From<crate::autonomy::controller::AutonomyError> for ApiError {
    fn from(e: crate::autonomy::controller::AutonomyError) -> Self {
        use crate::autonomy::controller::AutonomyError as E;
        match e {
            E::State(s) => ApiError::from(s),
            E::NotFound(what) => ApiError::NotFound(what),
            E::Conflict(why) | E::Contended(why) => ApiError::Conflict(why),
            E::Invalid(why) => ApiError::BadRequest(why),
        }
    }
}

impl From<crate::state::StateError> for ApiError {
    fn from(e: crate::state::StateError) -> Self {
        match e {
            crate::state::StateError::OutcomeUnknown(why) => ApiError::MaybeStored(why),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_)
            | ApiError::MaybeStored(_)
            | ApiError::Starting(_)
            | ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TimedOut(_) | ApiError::BodyTimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_soon = matches!(self, ApiError::Overloaded(_) | ApiError::Starting(_));
        let mut response =
            (status, axum::Json(serde_json::json!({"error": self.to_string()}))).into_response();
        if retry_soon {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rootfix\""),
            );
        }
        response
    }
}
