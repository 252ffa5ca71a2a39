//! Decisions from chat: the callbacks of Slack and of a Feishu (Lark) app, which call rootfix
//! back when an on-call clicks Approve, Reject, Correct or Misfix on a message rootfix sent.
//!
//! This module owns the pure half: the `chat:` section of the serve config ([`ChatConfig`]:
//! each platform's secrets and the table that maps a chat user to a rootfix identity), checking
//! a callback's signature and age exactly as the platform documents it, and reading the click
//! out of the payload ([`Click`]). It does no I/O: `server::chat` takes a checked click, refuses
//! replays through the state store, and decides through the same `Autonomy` calls as the API.
//!
//! - `slack`: Slack's interactivity requests (`v0` HMAC-SHA256 signing secret, the timestamp
//!   window, `payload=` form body with `block_actions`).
//! - `feishu`: a Feishu app's `card.action.trigger` callbacks (AES-256-CBC encrypted body,
//!   `X-Lark-Signature` = SHA-256 of timestamp, nonce, encrypt key and body; the verification
//!   token inside), and its `url_verification` challenge.

pub mod config;
pub mod feishu;
pub mod slack;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;

pub use config::{ChatConfig, ChatDocument, FeishuApp, SlackApp, check_chat};

use crate::autonomy::outcome::Severity;

/// What a click asks rootfix to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Approve {
        approval: String,
    },
    Reject {
        approval: String,
    },
    Confirm {
        incident: String,
        correct: bool,
        severity: Option<Severity>,
    },
}

impl Choice {
    /// The choice named `choice` (a button's: `approve`, `reject`, `correct`, `misfix`) on
    /// `target`, with a misfix's `severity`.
    pub fn parse(choice: &str, target: &str, severity: Option<&str>) -> Result<Self, ChatError> {
        let target = target.trim();
        if target.is_empty() || target.len() > 128 {
            return Err(ChatError::Malformed(
                "the button names no approval or incident".into(),
            ));
        }
        let severity = match severity.map(str::trim) {
            None | Some("") | Some("-") => None,
            Some(s) => Some(
                Severity::parse(s)
                    .ok_or_else(|| ChatError::Malformed(format!("severity `{s}` is not P0..P3")))?,
            ),
        };
        let target = target.to_string();
        Ok(match choice {
            "approve" => Choice::Approve { approval: target },
            "reject" => Choice::Reject { approval: target },
            "correct" => Choice::Confirm {
                incident: target,
                correct: true,
                severity: None,
            },
            "misfix" => Choice::Confirm {
                incident: target,
                correct: false,
                severity,
            },
            other => return Err(ChatError::Malformed(format!("unknown button `{other}`"))),
        })
    }

    /// What the click asked, for the audit trail: `approve apr-1`, `misfix P2 of inc-9`.
    pub fn describe(&self) -> String {
        match self {
            Choice::Approve { approval } => format!("approve {approval}"),
            Choice::Reject { approval } => format!("reject {approval}"),
            Choice::Confirm {
                incident,
                correct: true,
                ..
            } => format!("correct for {incident}"),
            Choice::Confirm {
                incident, severity, ..
            } => match severity {
                Some(s) => format!("misfix {} of {incident}", s.as_str()),
                None => format!("misfix of {incident}"),
            },
        }
    }

    /// The past tense a message shows: "approved", "rejected", "confirmed correct", "marked a
    /// misfix (P2)".
    pub fn done(&self) -> String {
        match self {
            Choice::Approve { .. } => "approved".into(),
            Choice::Reject { .. } => "rejected".into(),
            Choice::Confirm { correct: true, .. } => "confirmed correct".into(),
            Choice::Confirm {
                correct: false,
                severity,
                ..
            } => match severity {
                Some(s) => format!("marked a misfix ({})", s.as_str()),
                None => "marked a misfix".into(),
            },
        }
    }
}

/// A chat platform rootfix takes callbacks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Slack,
    Feishu,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Feishu => "feishu",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One checked click: who (the platform's user id), what, and the key that makes it a one-time
/// use (a replay of the same request has the same key).
#[derive(Debug, Clone, PartialEq)]
pub struct Click {
    pub platform: Platform,
    pub user: String,
    pub choice: Choice,
    pub once_key: String,
}

impl Click {
    /// The identity recorded with the decision: the rootfix name, then the chat identity, e.g.
    /// `alice (slack U024BE7LH)`.
    pub fn identity(&self, name: &str) -> String {
        format!("{name} ({} {})", self.platform, self.user)
    }
}

/// Why a callback is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("the request is not signed (missing {0})")]
    Unsigned(&'static str),
    #[error("the signature does not match: the request is not from {0} or the signing secret is wrong")]
    BadSignature(Platform),
    #[error(
        "the request was signed {age_secs} s from now, outside the {window_secs} s window: refused as a possible replay"
    )]
    Stale { age_secs: i64, window_secs: u64 },
    #[error("this callback was already received: refused as a replay")]
    Replayed,
    #[error("{0}")]
    Malformed(String),
    #[error("the verification token does not match this Feishu app")]
    WrongToken,
}

/// Checks a signed request: `presented` equals `expected` (compared in constant time), then the
/// signed `timestamp` (Unix seconds, from header `header`) is within `window` of `now`.
pub(crate) fn check_signed(
    platform: Platform,
    expected: &str,
    presented: &str,
    header: &str,
    timestamp: &str,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<(), ChatError> {
    if !bool::from(expected.as_bytes().ct_eq(presented.trim().as_bytes())) {
        return Err(ChatError::BadSignature(platform));
    }
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| ChatError::Malformed(format!("{header} `{timestamp}` is not Unix seconds")))?;
    let age = now.timestamp() - at;
    if age.unsigned_abs() > window.as_secs() {
        return Err(ChatError::Stale {
            age_secs: -age,
            window_secs: window.as_secs(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_parse_into_choices_that_say_what_they_do() {
        let misfix = Choice::parse("misfix", "inc-9", Some("P2")).expect("a choice");
        assert_eq!(misfix.describe(), "misfix P2 of inc-9");
        assert_eq!(misfix.done(), "marked a misfix (P2)");
        let approve = Choice::parse("approve", " apr-1 ", Some("-")).expect("a choice");
        assert_eq!(
            approve,
            Choice::Approve {
                approval: "apr-1".into()
            }
        );
        assert_eq!(approve.describe(), "approve apr-1");
        assert_eq!(
            Choice::parse("correct", "inc-1", None).map(|c| c.done()),
            Ok("confirmed correct".into())
        );
        assert!(Choice::parse("delete", "inc-1", None).is_err());
        assert!(Choice::parse("approve", "", None).is_err());
        assert!(Choice::parse("misfix", "inc-1", Some("P9")).is_err());
        let click = Click {
            platform: Platform::Slack,
            user: "U1".into(),
            choice: approve,
            once_key: "slack:v0=1".into(),
        };
        assert_eq!(click.identity("alice"), "alice (slack U1)");
    }
}
