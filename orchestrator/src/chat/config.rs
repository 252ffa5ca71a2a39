//! The `chat:` section of the serve config: the platforms whose callbacks rootfix takes, their
//! secrets (from the environment only), and who each chat user is in rootfix.
//!
//! ```yaml
//! chat:
//!   replay_window: 5m     # a callback signed further from now is refused; each is taken once
//!   slack:
//!     signing_secret_env: ROOTFIX_SLACK_SIGNING_SECRET
//!     response_url_prefix: https://hooks.slack.com/   # where message updates may be posted
//!     users: {U024BE7LH: alice}                       # Slack user id → a token's name
//!   feishu:
//!     verification_token_env: ROOTFIX_FEISHU_VERIFICATION_TOKEN
//!     encrypt_key_env: ROOTFIX_FEISHU_ENCRYPT_KEY
//!     users: {ou_7d8a6e6df7621556ce0d21922b676706: alice}   # open_id → a token's name
//! ```
//! Every mapped name must be a token in `tokens:` with role `approver` or `admin`: a chat user
//! decides with that identity's rights and is recorded as `alice (slack U024BE7LH)`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::catalog::report::Reporter;
use crate::config::{Role, Token};

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatDocument {
    #[serde(default)]
    replay_window: Option<String>,
    #[serde(default)]
    slack: Option<SlackDocument>,
    #[serde(default)]
    feishu: Option<FeishuDocument>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlackDocument {
    signing_secret_env: String,
    #[serde(default)]
    response_url_prefix: Option<String>,
    #[serde(default)]
    users: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeishuDocument {
    verification_token_env: String,
    encrypt_key_env: String,
    #[serde(default)]
    users: BTreeMap<String, String>,
}

/// A Slack app's interactivity, validated.
#[derive(Clone, PartialEq)]
pub struct SlackApp {
    pub signing_secret: String,
    /// A click's `response_url` is posted to only when it starts with this.
    pub response_url_prefix: String,
    /// Slack user id → rootfix identity.
    pub users: BTreeMap<String, String>,
}

/// A Feishu app's card callbacks, validated.
#[derive(Clone, PartialEq)]
pub struct FeishuApp {
    pub verification_token: String,
    pub encrypt_key: String,
    /// open_id → rootfix identity.
    pub users: BTreeMap<String, String>,
}

impl fmt::Debug for SlackApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackApp")
            .field("response_url_prefix", &self.response_url_prefix)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for FeishuApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeishuApp")
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

/// The `chat:` section, validated. The default takes no callbacks.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatConfig {
    pub replay_window: Duration,
    pub slack: Option<SlackApp>,
    pub feishu: Option<FeishuApp>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            replay_window: Duration::from_secs(300),
            slack: None,
            feishu: None,
        }
    }
}

const SLACK_RESPONSE_URLS: &str = "https://hooks.slack.com/";

/// Checks the section against the tokens (each mapped name an approver or admin).
pub fn check_chat(
    doc: &ChatDocument,
    tokens: &[Token],
    env: &dyn Fn(&str) -> Option<String>,
    r: &mut Reporter<'_>,
) -> ChatConfig {
    let defaults = ChatConfig::default();
    let replay_window = r.duration(
        "chat.replay_window",
        doc.replay_window.as_deref(),
        defaults.replay_window,
    );
    if replay_window < Duration::from_secs(10) || replay_window > Duration::from_secs(3600) {
        r.at_value("chat.replay_window", "must be between 10s and 1h");
    }
    let mut secret = |field: &str, var: &str| match r.env_var(field, var, env) {
        Some(v) if v.trim().len() >= 8 => Some(v.trim().to_string()),
        Some(_) => {
            r.at_value(
                field,
                format!("environment variable {var} holds fewer than 8 characters"),
            );
            None
        }
        None => None,
    };
    let slack_secret = doc
        .slack
        .as_ref()
        .and_then(|s| secret("chat.slack.signing_secret_env", &s.signing_secret_env));
    let feishu_secrets = doc.feishu.as_ref().map(|f| {
        (
            secret("chat.feishu.verification_token_env", &f.verification_token_env),
            secret("chat.feishu.encrypt_key_env", &f.encrypt_key_env),
        )
    });
    let slack = doc.slack.as_ref().and_then(|s| {
        check_users("chat.slack.users", &s.users, tokens, r);
        let prefix = s
            .response_url_prefix
            .clone()
            .unwrap_or_else(|| SLACK_RESPONSE_URLS.to_string());
        match Url::parse(&prefix) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && prefix.ends_with('/') => {}
            _ => r.at_value(
                "chat.slack.response_url_prefix",
                format!("`{prefix}` must be an http(s) URL ending in `/`"),
            ),
        }
        Some(SlackApp {
            signing_secret: slack_secret?,
            response_url_prefix: prefix,
            users: s.users.clone(),
        })
    });
    let feishu = doc.feishu.as_ref().and_then(|f| {
        check_users("chat.feishu.users", &f.users, tokens, r);
        let (token, key) = feishu_secrets?;
        Some(FeishuApp {
            verification_token: token?,
            encrypt_key: key?,
            users: f.users.clone(),
        })
    });
    ChatConfig {
        replay_window,
        slack,
        feishu,
    }
}

/// Every mapped identity is a token that may approve.
fn check_users(field: &str, users: &BTreeMap<String, String>, tokens: &[Token], r: &mut Reporter<'_>) {
    if users.is_empty() {
        r.at_key(field, "no chat user is mapped: every click would be refused");
    }
    for (user, name) in users {
        let at = format!("{field}.{user}");
        match tokens.iter().find(|t| &t.name == name) {
            None => r.at_value(&at, format!("`{name}` is not the name of a token in `tokens:`")),
            Some(t) if !t.role.allows(Role::Approver) => r.at_value(
                &at,
                format!(
                    "`{name}` has role {}; deciding from chat needs approver or admin",
                    t.role.as_str()
                ),
            ),
            Some(_) => {}
        }
    }
}
