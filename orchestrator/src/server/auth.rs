//! Bearer tokens with roles. A missing or unknown token answers 401; a token whose role is too
//! weak answers 403. Tokens are compared in constant time.
//!
//! The API reads the token from `Authorization: Bearer`; the web page (`server::ui`) reads the
//! same token from its session cookie ([`SESSION_COOKIE`]). Both go through [`identify`].

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

/// The web page's session cookie: its value is the token itself (HttpOnly, so no script reads it).
pub const SESSION_COOKIE: &str = "rootfix_session";

/// Checks the `Authorization: Bearer` header against the configured tokens and the route's role.
pub fn authorize(tokens: &[Token], headers: &HeaderMap, required: Role) -> Result<Identity, ApiError> {
    let presented = bearer(headers).ok_or(ApiError::Unauthorized)?;
    check(tokens, presented, required)
}

/// The token of the `Authorization: Bearer` header (the scheme in any case, RFC 7235), if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks the session cookie ([`SESSION_COOKIE`], the token percent-encoded) against the
/// configured tokens and the role.
pub fn authorize_cookie(tokens: &[Token], headers: &HeaderMap, required: Role) -> Result<Identity, ApiError> {
    let presented = session_secret(headers).ok_or(ApiError::Unauthorized)?;
    check(tokens, &presented, required)
}

/// The token in the session cookie, decoded (it may be unknown: check it).
pub fn session_secret(headers: &HeaderMap) -> Option<String> {
    let raw = cookie(headers, SESSION_COOKIE)?;
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8().ok()?;
    (!decoded.is_empty()).then(|| decoded.into_owned())
}

/// The token whose secret is `presented`, compared with every token in constant time so the time
/// taken does not say which one nearly matched.
pub fn identify<'a>(tokens: &'a [Token], presented: &str) -> Option<&'a Token> {
    let mut found: Option<&Token> = None;
    for token in tokens {
        if bool::from(token.secret.as_bytes().ct_eq(presented.as_bytes())) {
            found = Some(token);
        }
    }
    // An empty secret never signs anyone in (config refuses them; this is a second fence).
    found.filter(|t| !t.secret.is_empty())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn check(tokens: &[Token], presented: &str, required: Role) -> Result<Identity, ApiError> {
    let token = identify(tokens, presented).ok_or(ApiError::Unauthorized)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn tokens() -> Vec<Token> {
        vec![Token {
            name: "sre".into(),
            role: Role::Approver,
            secret: "s3cret".into(),
        }]
    }

    fn authorization(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER s3cret",
            "bEaReR  s3cret ",
            " Bearer s3cret",
        ] {
            assert_eq!(bearer(&authorization(value)), Some("s3cret"), "{value:?}");
        }
        for value in ["Basic s3cret", "Bearer", "Bearer ", "Bearers3cret", "s3cret"] {
            assert_eq!(bearer(&authorization(value)), None, "{value:?}");
        }
        assert_eq!(bearer(&HeaderMap::new()), None);
        let who = authorize(&tokens(), &authorization("bearer s3cret"), Role::Viewer);
        assert_eq!(who.map(|i| i.name).ok().as_deref(), Some("sre"));
    }

    #[test]
    fn the_session_cookie_carries_the_token() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("a=b; rootfix_session=s3cret; c=d"),
        );
        let who = authorize_cookie(&tokens(), &headers, Role::Approver).map_err(|e| e.to_string());
        assert_eq!(who.map(|i| i.name), Ok("sre".to_string()));
        assert!(matches!(
            authorize_cookie(&tokens(), &headers, Role::Admin),
            Err(ApiError::Forbidden { .. })
        ));
        // The cookie is not a bearer token, and a bearer token is not a cookie.
        assert!(matches!(
            authorize(&tokens(), &headers, Role::Viewer),
            Err(ApiError::Unauthorized)
        ));
        let mut wrong = HeaderMap::new();
        wrong.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("rootfix_session=s3cre"),
        );
        assert!(matches!(
            authorize_cookie(&tokens(), &wrong, Role::Viewer),
            Err(ApiError::Unauthorized)
        ));
    }
}
