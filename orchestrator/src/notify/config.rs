//! The `notifications:` section of the serve config: the document as written, its checks, and
//! the validated [`NotificationsConfig`] the [`Notifier`](super::Notifier) is started with.
//!
//! ```yaml
//! notifications:
//!   queue: 1024        # per receiver; a full queue drops new notifications
//!   retries: 5         # after the first attempt
//!   backoff: 1s        # first retry delay, doubled each time, at most 60s
//!   timeout: 5s        # per request
//!   receivers:
//!     - {name: sre-slack, format: slack, url_env: ROOTFIX_SLACK_WEBHOOK}
//!     - {name: oncall-dingtalk, format: dingtalk, url_env: ROOTFIX_DINGTALK_WEBHOOK,
//!        events: [rollback_failed, approval_expired]}
//!     - {name: ops-wecom, format: wecom, url_env: ROOTFIX_WECOM_WEBHOOK}
//!     - {name: audit-sink, format: json, url: "http://127.0.0.1:9000/hook"}
//! ```
//! Webhook URLs hold their secret (a token in the path or query), so `url_env` reads one from
//! the environment and the file can be committed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::NotificationKind;
use crate::catalog::report::Reporter;
use crate::catalog::spans::join_index;
use crate::catalog::values::is_object_name;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct NotificationsDocument {
    #[serde(default)]
    queue: Option<usize>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    backoff: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    receivers: Vec<ReceiverDocument>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ReceiverDocument {
    name: String,
    format: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    url_env: Option<String>,
    #[serde(default)]
    events: Option<Vec<String>>,
}

/// The body a receiver expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Slack,
    DingTalk,
    WeCom,
    Json,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Slack, Format::DingTalk, Format::WeCom, Format::Json];

    /// The name in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Slack => "slack",
            Format::DingTalk => "dingtalk",
            Format::WeCom => "wecom",
            Format::Json => "json",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// One receiver, validated.
#[derive(Clone, PartialEq)]
pub struct ReceiverConfig {
    pub name: String,
    pub format: Format,
    /// http or https; holds the receiver's secret, so `Debug` shows only its origin.
    pub url: Url,
    /// The kinds this receiver gets.
    pub events: BTreeSet<NotificationKind>,
}

impl fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url", &self.url.origin().ascii_serialization())
            .field("events", &self.events)
            .finish()
    }
}

/// The `notifications:` section, validated. The default has no receivers (notifications off).
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationsConfig {
    /// Capacity of each receiver's queue.
    pub queue: usize,
    /// Retries after the first attempt of a delivery.
    pub retries: u32,
    /// Delay before the first retry; doubled for each next one.
    pub backoff: Duration,
    /// The longest delay between two attempts (not a config key: 60 s).
    pub max_backoff: Duration,
    /// Per request, connecting included.
    pub timeout: Duration,
    pub receivers: Vec<ReceiverConfig>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            queue: 1024,
            retries: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            receivers: Vec::new(),
        }
    }
}

const MAX_QUEUE: usize = 1 << 20;
const MAX_RETRIES: u32 = 20;

/// Checks the section, reporting each problem at its place under `notifications.`; returns the
/// config to use when there were none.
pub(crate) fn check(
    doc: &NotificationsDocument,
    r: &mut Reporter<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> NotificationsConfig {
    let defaults = NotificationsConfig::default();
    let queue = doc.queue.unwrap_or(defaults.queue);
    if queue == 0 || queue > MAX_QUEUE {
        r.at_value("notifications.queue", format!("must be in 1..={MAX_QUEUE}"));
    }
    let retries = doc.retries.unwrap_or(defaults.retries);
    if retries > MAX_RETRIES {
        r.at_value("notifications.retries", format!("must be at most {MAX_RETRIES}"));
    }
    let backoff = r.duration("notifications.backoff", doc.backoff.as_deref(), defaults.backoff);
    let timeout = r.duration("notifications.timeout", doc.timeout.as_deref(), defaults.timeout);

    let mut receivers = Vec::new();
    let mut names = BTreeMap::new();
    for (i, d) in doc.receivers.iter().enumerate() {
        let field = join_index("notifications.receivers", i);
        if !is_object_name(&d.name) {
            r.at_value(
                &format!("{field}.name"),
                "a receiver name is lowercase letters, digits and `-` (at most 63)",
            );
        } else if names.insert(d.name.clone(), i).is_some() {
            r.at_value(
                &format!("{field}.name"),
                format!("another receiver is named `{}`", d.name),
            );
        }
        let format = Format::from_name(&d.format);
        if format.is_none() {
            r.at_value(
                &format!("{field}.format"),
                format!(
                    "unknown format `{}`; expected slack, dingtalk, wecom or json",
                    d.format
                ),
            );
        }
        let url = receiver_url(d, &field, r, env);
        let events = match &d.events {
            None => NotificationKind::ALL.into_iter().collect(),
            Some(list) if list.is_empty() => {
                r.at_value(
                    &format!("{field}.events"),
                    "an empty list sends nothing; leave `events` out to send every kind",
                );
                BTreeSet::new()
            }
            Some(list) => {
                let mut kinds = BTreeSet::new();
                for (j, name) in list.iter().enumerate() {
                    match NotificationKind::from_name(name) {
                        Some(kind) => {
                            kinds.insert(kind);
                        }
                        None => r.at_value(
                            &join_index(&format!("{field}.events"), j),
                            format!(
                                "unknown event `{name}`; expected one of {}",
                                NotificationKind::ALL.map(NotificationKind::as_str).join(", ")
                            ),
                        ),
                    }
                }
                kinds
            }
        };
        if let (Some(format), Some(url)) = (format, url) {
            receivers.push(ReceiverConfig {
                name: d.name.clone(),
                format,
                url,
                events,
            });
        }
    }
    NotificationsConfig {
        queue,
        retries,
        backoff,
        max_backoff: defaults.max_backoff,
        timeout,
        receivers,
    }
}

/// The receiver's URL from `url` or `url_env` (exactly one), http or https. A URL from the
/// environment is never quoted in a message: it holds the secret.
fn receiver_url(
    d: &ReceiverDocument,
    field: &str,
    r: &mut Reporter<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Url> {
    let (text, at, quoted) = match (&d.url, &d.url_env) {
        (Some(url), None) => (url.clone(), format!("{field}.url"), true),
        (None, Some(var)) => {
            let at = format!("{field}.url_env");
            let Some(value) = env(var) else {
                r.at_value(&at, format!("environment variable {var} is not set"));
                return None;
            };
            (value, at, false)
        }
        _ => {
            r.at_key(field, "set exactly one of url and url_env");
            return None;
        }
    };
    let what = if quoted {
        format!("`{text}`")
    } else {
        "the environment variable's value".to_string()
    };
    match Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(_) => {
            r.at_value(&at, format!("{what}: only http and https URLs are supported"));
            None
        }
        Err(e) => {
            r.at_value(&at, format!("{what} is not a URL: {e}"));
            None
        }
    }
}
