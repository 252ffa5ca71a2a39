//! The page's session and CSRF defences: the session cookie, the CSRF field, the same-origin check
//! and the one-shot flash message (all cookies `HttpOnly; SameSite=Strict; Path=/ui`).

use axum::http::{HeaderMap, HeaderValue, header};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use subtle::ConstantTimeEq;

use crate::server::auth::{SESSION_COOKIE, cookie};

/// The one-shot message shown after a POST redirected back (`ok:` or `error:` + text).
pub const FLASH_COOKIE: &str = "rootfix_flash";

/// A session lasts 12 hours at most (then the browser drops the cookie and the page asks again).
const SESSION_MAX_AGE_SECS: u64 = 12 * 3600;

/// Characters kept as they are in a cookie value; everything else is percent-encoded, so a token
/// or a message with `;`, `,`, spaces or quotes cannot break the header.
const COOKIE_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What the CSRF field is derived from, so the MAC of the token means nothing anywhere else.
const CSRF_LABEL: &[u8] = b"rootfix ui csrf v1";

/// Whether the request reached us over TLS (behind a proxy that says so): then cookies are
/// `Secure` too. On plain `http://` a `Secure` cookie would never come back, so it is left off.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn cookie_header(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut c = format!(
        "{name}={}; Path=/ui; HttpOnly; SameSite=Strict",
        utf8_percent_encode(value, COOKIE_VALUE)
    );
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    // Every byte is ASCII after percent-encoding, so this cannot fail; fall back to an empty
    // (harmless) cookie rather than panic.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("rootfix_invalid=; Path=/ui"))
}

/// `Set-Cookie` for a new session holding `token`.
pub fn session_cookie(token: &str, secure: bool) -> HeaderValue {
    cookie_header(SESSION_COOKIE, token, Some(SESSION_MAX_AGE_SECS), secure)
}

/// `Set-Cookie` that ends the session.
pub fn clear_session_cookie(secure: bool) -> HeaderValue {
    cookie_header(SESSION_COOKIE, "", Some(0), secure)
}

/// The CSRF field of a session: HMAC-SHA256 keyed with the session's token, in hex. Only someone
/// who knows the token (the signed-in browser's page, never a cross-site page: the cookie is
/// HttpOnly and other origins cannot read our pages) can produce it, and every replica derives
/// the same one without shared state.
pub fn csrf_token(secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, CSRF_LABEL);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `presented` is the CSRF field of the session `secret` (constant time).
pub fn csrf_ok(secret: &str, presented: &str) -> bool {
    csrf_matches(&csrf_token(secret), presented)
}

/// Whether `presented` is `expected` (a session's [`csrf_token`]), in constant time.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Refuses a POST whose `Origin` (or, without it, `Referer`) names another host than `Host` (or
/// than `X-Forwarded-Host`, for a proxy that rewrites `Host`: a cross-site form cannot set that
/// header, so trusting it opens nothing). Browsers send `Origin` with every form POST; a request
/// with neither header is left to the CSRF field and SameSite.
pub fn check_origin(headers: &HeaderMap) -> Result<(), String> {
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|v| {
            v.to_str()
                .map_err(|_| "the Origin header is not text".to_string())
        })
        .transpose()?;
    let Some(source) = source else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| "the request has no Host header".to_string())?;
    let authority = source
        .strip_prefix("http://")
        .or_else(|| source.strip_prefix("https://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(rest))
        .ok_or_else(|| format!("cross-origin request refused (origin {source})"))?;
    let forwarded = headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    if authority.eq_ignore_ascii_case(host) || forwarded.is_some_and(|f| authority.eq_ignore_ascii_case(f)) {
        Ok(())
    } else {
        Err(format!(
            "cross-origin request refused: origin {source} is not this server ({host})"
        ))
    }
}

/// A message for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

/// `Set-Cookie` carrying a flash message (one minute at most, read once).
pub fn flash_cookie(ok: bool, text: &str, secure: bool) -> HeaderValue {
    let value = format!("{}:{text}", if ok { "ok" } else { "error" });
    cookie_header(FLASH_COOKIE, &value, Some(60), secure)
}

/// `Set-Cookie` that drops the flash once shown.
pub fn clear_flash_cookie(secure: bool) -> HeaderValue {
    cookie_header(FLASH_COOKIE, "", Some(0), secure)
}

/// The flash message the request carries, if any.
pub fn read_flash(headers: &HeaderMap) -> Option<Flash> {
    let raw = cookie(headers, FLASH_COOKIE)?;
    let value = percent_decode_str(raw).decode_utf8().ok()?;
    let (kind, text) = value.split_once(':')?;
    if text.is_empty() {
        return None;
    }
    Some(Flash {
        ok: kind == "ok",
        text: text.chars().take(2000).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_posts_pass_and_others_do_not() {
        assert!(
            check_origin(&headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080")
            ]))
            .is_ok()
        );
        assert!(
            check_origin(&headers(&[
                ("host", "rootfix.example"),
                ("referer", "https://rootfix.example/ui/")
            ]))
            .is_ok()
        );
        assert!(check_origin(&headers(&[("host", "127.0.0.1:8080")])).is_ok());
        assert!(
            check_origin(&headers(&[
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-host", "rootfix.example"),
                ("origin", "https://rootfix.example")
            ]))
            .is_ok()
        );
        for origin in [
            "http://evil.example",
            "http://127.0.0.1:8081",
            "null",
            "http://127.0.0.1:8080.evil",
        ] {
            let h = headers(&[("host", "127.0.0.1:8080"), ("origin", origin)]);
            assert!(check_origin(&h).is_err(), "{origin}");
        }
    }

    #[test]
    fn the_csrf_field_belongs_to_its_token() {
        let a = csrf_token("token-a");
        assert_eq!(a.len(), 64);
        assert!(csrf_ok("token-a", &a));
        assert!(!csrf_ok("token-b", &a));
        assert!(!csrf_ok("token-a", ""));
    }

    #[test]
    fn a_flash_round_trips_through_its_cookie() {
        let set = flash_cookie(false, "approval x; is \"expired\"", false);
        let set = set.to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/ui"));
        let value = set.split(';').next().unwrap();
        let h = headers(&[("cookie", value)]);
        assert_eq!(
            read_flash(&h),
            Some(Flash {
                ok: false,
                text: "approval x; is \"expired\"".into()
            })
        );
    }
}
