//! Slack's interactivity requests, as <https://api.slack.com/authentication/verifying-requests-from-slack>
//! and <https://api.slack.com/reference/interaction-payloads/block-actions> describe them.
//!
//! Slack POSTs `application/x-www-form-urlencoded` with one field, `payload`, holding JSON. It
//! signs each request: `X-Slack-Request-Timestamp` (Unix seconds) and `X-Slack-Signature` =
//! `v0=` + hex(HMAC-SHA256(signing secret, `v0:<timestamp>:<raw body>`)). A request signed
//! outside the replay window is refused; inside it, the signature is the one-time key (Slack
//! sends no nonce, and a replay is byte for byte the same request).
//!
//! The buttons rootfix draws (`notify::format`) carry `action_id` `rootfix.<choice>.<severity
//! or ->` and `value` `<approval or incident id>[ <severity>]`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ring::hmac;
use serde_json::Value;

use super::{ChatError, Choice, Click, Platform};

/// A click read from a verified request, with what is needed to answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackClick {
    pub click: Click,
    /// Where to post the message's update (or an answer only the clicker sees).
    pub response_url: Option<String>,
    /// The message's blocks as Slack sent them back (the update keeps them, without buttons).
    pub blocks: Vec<Value>,
    /// The message's fallback text.
    pub text: String,
}

/// The signature Slack puts on `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(b"v0:");
    ctx.update(timestamp.as_bytes());
    ctx.update(b":");
    ctx.update(body);
    let tag = ctx.sign();
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

/// Checks the signature and its age (`window` either side of `now`).
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    presented: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    window: Duration,
) -> Result<(), ChatError> {
    let timestamp = timestamp.ok_or(ChatError::Unsigned("X-Slack-Request-Timestamp"))?;
    let presented = presented.ok_or(ChatError::Unsigned("X-Slack-Signature"))?;
    let expected = signature(secret, timestamp, body);
    super::check_signed(
        Platform::Slack,
        &expected,
        presented,
        "X-Slack-Request-Timestamp",
        timestamp,
        now,
        window,
    )
}

/// Reads the click out of a verified body. `signature` becomes its one-time key.
pub fn parse(body: &[u8], signature: &str) -> Result<SlackClick, ChatError> {
    let payload = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ChatError::Malformed("the form has no `payload` field".into()))?;
    let p: Value = serde_json::from_str(&payload)
        .map_err(|e| ChatError::Malformed(format!("`payload` is not JSON: {e}")))?;
    if p["type"] != "block_actions" {
        return Err(ChatError::Malformed(format!(
            "payload type {} is not a button click (block_actions)",
            p["type"]
        )));
    }
    let user = p["user"]["id"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ChatError::Malformed("the payload names no user".into()))?;
    let action = p["actions"]
        .as_array()
        .and_then(|a| a.first())
        .ok_or_else(|| ChatError::Malformed("the payload has no action".into()))?;
    let action_id = action["action_id"].as_str().unwrap_or_default();
    let mut parts = action_id.split('.');
    let (Some("rootfix"), Some(choice)) = (parts.next(), parts.next()) else {
        return Err(ChatError::Malformed(format!(
            "`{action_id}` is not a rootfix button"
        )));
    };
    let value = action["value"].as_str().unwrap_or_default();
    let (target, severity) = match value.split_once(' ') {
        Some((t, s)) => (t, Some(s)),
        None => (value, None),
    };
    let choice = Choice::parse(choice, target, severity)?;
    Ok(SlackClick {
        click: Click {
            platform: Platform::Slack,
            user: user.to_string(),
            choice,
            once_key: format!("slack:{}", signature.trim()),
        },
        response_url: p["response_url"].as_str().map(str::to_string),
        blocks: p["message"]["blocks"].as_array().cloned().unwrap_or_default(),
        text: p["message"]["text"].as_str().unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    // Slack's documented example: signing secret, timestamp, body and signature.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().expect("a time")
    }

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(signature(SECRET, TS, BODY.as_bytes()), SIG);
        let now = at(1531420618 + 30);
        let w = Duration::from_secs(300);
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIG), BODY.as_bytes(), now, w),
            Ok(())
        );
        assert_eq!(
            verify("wrong-secret-0000", Some(TS), Some(SIG), BODY.as_bytes(), now, w),
            Err(ChatError::BadSignature(Platform::Slack))
        );
        let mut tampered = BODY.to_string();
        tampered.push('x');
        assert!(verify(SECRET, Some(TS), Some(SIG), tampered.as_bytes(), now, w).is_err());
        assert!(matches!(
            verify(
                SECRET,
                Some(TS),
                Some(SIG),
                BODY.as_bytes(),
                at(1531420618 + 301),
                w
            ),
            Err(ChatError::Stale { .. })
        ));
        assert_eq!(
            verify(SECRET, None, Some(SIG), BODY.as_bytes(), now, w),
            Err(ChatError::Unsigned("X-Slack-Request-Timestamp"))
        );
    }

    #[test]
    fn a_block_actions_payload_is_read_into_a_click() {
        let payload = serde_json::json!({
            "type": "block_actions",
            "user": {"id": "U024BE7LH", "username": "alice"},
            "actions": [{"action_id": "rootfix.misfix.P2", "value": "inc-42 P2", "type": "button"}],
            "response_url": "https://hooks.slack.com/actions/T1/2/3",
            "message": {"text": "fix", "blocks": [{"type": "section"}, {"type": "actions"}]},
        });
        let body = format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
        );
        let c = parse(body.as_bytes(), "v0=ab").expect("a click");
        assert_eq!(c.click.user, "U024BE7LH");
        assert_eq!(
            c.click.choice,
            Choice::Confirm {
                incident: "inc-42".into(),
                correct: false,
                severity: Some(crate::autonomy::outcome::Severity::P2)
            }
        );
        assert_eq!(c.click.once_key, "slack:v0=ab");
        assert_eq!(c.blocks.len(), 2);
        assert!(parse(b"payload=%7B%22type%22%3A%22view_submission%22%7D", "x").is_err());
        assert!(parse(b"nothing=1", "x").is_err());
    }
}
