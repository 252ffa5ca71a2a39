//! A Feishu (Lark) app's card callbacks, as the open platform documents them ("将回调发送至开发者
//! 服务器", "接收回调", "卡片回传交互"):
//!
//! - With an **Encrypt Key** set, the body is `{"encrypt": base64(IV ‖ AES-256-CBC(SHA-256(key),
//!   IV, PKCS#7(JSON)))}`, and the request carries `X-Lark-Request-Timestamp` (Unix seconds),
//!   `X-Lark-Request-Nonce` and `X-Lark-Signature` = hex(SHA-256(timestamp ‖ nonce ‖ encrypt
//!   key ‖ raw body)). rootfix requires both: an unsigned or unencrypted callback is refused.
//! - The decrypted JSON is either the address check `{"type": "url_verification", "challenge",
//!   "token"}` (answered with the challenge when the token matches; it changes nothing) or a
//!   `schema: "2.0"` event whose `header.event_type` is `card.action.trigger`, `header.token`
//!   the app's **Verification Token**, `header.event_id` unique per event (Feishu's own retries
//!   keep it: it is the one-time key), `event.operator.open_id` who clicked and
//!   `event.action.value` the button's value (`{"rootfix", "target", "severity"}`).
//! - The answer (within 3 s) may carry `toast` and a new `card` that replaces the clicked one.

use std::time::Duration;

use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::digest;
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{ChatError, Choice, Click, Platform};

type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// What a verified callback asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    /// The address check: answer `{"challenge": …}`.
    Challenge(String),
    /// A button click.
    Click(Click),
}

/// The signature Feishu puts on a callback.
pub fn signature(timestamp: &str, nonce: &str, encrypt_key: &str, body: &[u8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(timestamp.as_bytes());
    ctx.update(nonce.as_bytes());
    ctx.update(encrypt_key.as_bytes());
    ctx.update(body);
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON inside `{"encrypt": …}`.
pub fn decrypt(encrypt_key: &str, encrypted: &str) -> Result<Value, ChatError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encrypted.trim())
        .map_err(|e| ChatError::Malformed(format!("`encrypt` is not base64: {e}")))?;
    if raw.len() < 32 || raw.len() % 16 != 0 {
        return Err(ChatError::Malformed(
            "`encrypt` is not an IV and AES blocks".into(),
        ));
    }
    let key = digest::digest(&digest::SHA256, encrypt_key.as_bytes());
    let (iv, blocks) = raw.split_at(16);
    let plain = Aes256CbcDec::new_from_slices(key.as_ref(), iv)
        .map_err(|e| ChatError::Malformed(format!("cannot start AES-256-CBC: {e}")))?
        .decrypt_padded_vec_mut::<Pkcs7>(blocks)
        .map_err(|_| ChatError::Malformed("`encrypt` does not decrypt with this app's encrypt key".into()))?;
    serde_json::from_slice(&plain)
        .map_err(|e| ChatError::Malformed(format!("the decrypted callback is not JSON: {e}")))
}

/// The signed request's headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signed<'a> {
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Decrypts, checks the signature, its age and the verification token, and reads the callback.
pub fn verify_and_parse(
    app: &super::FeishuApp,
    signed: Signed<'_>,
    body: &[u8],
    now: DateTime<Utc>,
    window: Duration,
) -> Result<Callback, ChatError> {
    let outer: Value = serde_json::from_slice(body)
        .map_err(|e| ChatError::Malformed(format!("the body is not JSON: {e}")))?;
    let encrypted = outer["encrypt"].as_str().ok_or_else(|| {
        ChatError::Malformed("the callback is not encrypted; set the app's Encrypt Key".into())
    })?;
    let inner = decrypt(&app.encrypt_key, encrypted)?;
    let token_matches = |t: &Value| {
        t.as_str()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(app.verification_token.as_bytes())))
    };
    if inner["type"] == "url_verification" {
        if !token_matches(&inner["token"]) {
            return Err(ChatError::WrongToken);
        }
        let challenge = inner["challenge"]
            .as_str()
            .ok_or_else(|| ChatError::Malformed("the address check has no challenge".into()))?;
        return Ok(Callback::Challenge(challenge.to_string()));
    }
    let timestamp = signed
        .timestamp
        .ok_or(ChatError::Unsigned("X-Lark-Request-Timestamp"))?;
    let nonce = signed.nonce.ok_or(ChatError::Unsigned("X-Lark-Request-Nonce"))?;
    let presented = signed.signature.ok_or(ChatError::Unsigned("X-Lark-Signature"))?;
    let expected = signature(timestamp, nonce, &app.encrypt_key, body);
    super::check_signed(
        Platform::Feishu,
        &expected,
        presented,
        "X-Lark-Request-Timestamp",
        timestamp,
        now,
        window,
    )?;
    if !token_matches(&inner["header"]["token"]) {
        return Err(ChatError::WrongToken);
    }
    if inner["header"]["event_type"] != "card.action.trigger" {
        return Err(ChatError::Malformed(format!(
            "event type {} is not a card click (card.action.trigger)",
            inner["header"]["event_type"]
        )));
    }
    let event_id = inner["header"]["event_id"]
        .as_str()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ChatError::Malformed("the callback has no event_id".into()))?;
    let user = inner["event"]["operator"]["open_id"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ChatError::Malformed("the callback names no operator open_id".into()))?;
    let value = &inner["event"]["action"]["value"];
    let choice = Choice::parse(
        value["rootfix"].as_str().unwrap_or_default(),
        value["target"].as_str().unwrap_or_default(),
        value["severity"].as_str(),
    )?;
    Ok(Callback::Click(Click {
        platform: Platform::Feishu,
        user: user.to_string(),
        choice,
        once_key: format!("feishu:{event_id}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feishus_documented_decryption_example_decrypts() {
        // The open platform's example: key `test key`, plaintext `hello world`.
        let encrypted = "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=";
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encrypted)
            .expect("base64");
        let key = digest::digest(&digest::SHA256, b"test key");
        let (iv, blocks) = raw.split_at(16);
        let plain = Aes256CbcDec::new_from_slices(key.as_ref(), iv)
            .expect("key and iv")
            .decrypt_padded_vec_mut::<Pkcs7>(blocks)
            .expect("decrypts");
        assert_eq!(plain, b"hello world");
        assert!(
            matches!(decrypt("test key", encrypted), Err(ChatError::Malformed(_))),
            "not JSON"
        );
        assert!(decrypt("other key", encrypted).is_err());
    }

    #[test]
    fn the_signature_is_sha256_of_timestamp_nonce_key_and_body() {
        let expected: String = digest::digest(&digest::SHA256, b"1700000000n0ncekey{\"a\":1}")
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(signature("1700000000", "n0nce", "key", b"{\"a\":1}"), expected);
    }
}
