//! Bearer tokens with roles. A missing or unknown token answers 401; a token whose role is too
//! weak answers 403. Tokens are compared in constant time.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::{Role, Token};

/// Who made a request: recorded with every decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
}

/// Checks the `Authorization: Bearer` header against the configured tokens and the route's role.
pub fn authorize(tokens: &[Token], headers: &HeaderMap, required: Role) -> Result<Identity, ApiError> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    // Compare with every token, so the time taken does not say which one nearly matched.
    let mut found: Option<&Token> = None;
    for token in tokens {
        if bool::from(token.secret.as_bytes().ct_eq(presented.as_bytes())) {
            found = Some(token);
        }
    }
    let token = found.ok_or(ApiError::Unauthorized)?;
    if !token.role.allows(required) {
        return Err(ApiError::Forbidden {
            role: token.role,
            required,
        });
    }
    Ok(Identity {
        name: token.name.clone(),
        role: token.role,
    })
}
