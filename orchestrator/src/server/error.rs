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
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Conflict(String),
    #[error("state unavailable, nothing was stored: {0}")]
    Unavailable(String),
}

impl From<crate::autonomy::controller::AutonomyError> for ApiError {
    fn from(e: crate::autonomy::controller::AutonomyError) -> Self {
        use crate::autonomy::controller::AutonomyError as E;
        match e {
            E::State(s) => ApiError::Unavailable(s.to_string()),
            E::NotFound(what) => ApiError::NotFound(what),
            E::Conflict(why) | E::Contended(why) => ApiError::Conflict(why),
            E::Invalid(why) => ApiError::BadRequest(why),
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
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response =
            (status, axum::Json(serde_json::json!({"error": self.to_string()}))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rootfix\""),
            );
        }
        response
    }
}
