//! The `notifications:` section of the serve config: the document as written, its checks, and
//! the validated [`NotificationsConfig`] the [`Notifier`](super::Notifier) is started with.
//!
//! ```yaml
//! notifications:
//!   queue: 1024        # per receiver; a full queue drops new notifications
//!   retries: 5         # after the first attempt
//!   backoff: 1s        # first retry delay, doubled each time, at most 60s
//!   timeout: 5s        # per request
//!   public_url: https://rootfix.example.com   # messages link to <public_url>/ui/incidents/<id>
//!   receivers:
//!     - {name: sre-slack, format: slack, url_env: ROOTFIX_SLACK_WEBHOOK}
//!     - {name: oncall-dingtalk, format: dingtalk, url_env: ROOTFIX_DINGTALK_WEBHOOK,
//!        events: [rollback_failed, approval_expired]}
//!     - {name: ops-wecom, format: wecom, url_env: ROOTFIX_WECOM_WEBHOOK}
//!     - {name: audit-sink, format: json, url: "http://127.0.0.1:9000/hook"}
//!     - {name: ops-teams, format: teams, url_env: ROOTFIX_TEAMS_WEBHOOK}
//!     - {name: ops-feishu, format: feishu, url_env: ROOTFIX_FEISHU_WEBHOOK}
//!     - {name: oncall-feishu, format: feishu-app, app_id: cli_a1b2, app_secret_env: ROOTFIX_FEISHU_APP_SECRET,
//!        chat_id: oc_5ad1}
//!     - {name: pager, format: pagerduty, routing_key_env: ROOTFIX_PAGERDUTY_KEY}
//!     - {name: genie, format: opsgenie, api_key_env: ROOTFIX_OPSGENIE_KEY}
//! ```
//! Webhook URLs hold their secret (a token in the path or query), so `url_env` reads one from
//! the environment and the file can be committed. The paging sinks and the Feishu app take their
//! key from the environment only (`routing_key_env`, `api_key_env`, `app_secret_env`); their
//! `url` is the API's base and defaults to the public service.

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
    public_url: Option<String>,
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
    #[serde(default)]
    routing_key_env: Option<String>,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    app_secret_env: Option<String>,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    chat_id: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<Vec<String>>,
    #[serde(default)]
    ca_file: Option<std::path::PathBuf>,
}

/// The body a receiver expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Slack,
    DingTalk,
    WeCom,
    Json,
    /// Microsoft Teams through a Workflows (Power Automate) webhook: an Adaptive Card.
    Teams,
    /// A Feishu (Lark) group's custom bot webhook: an interactive card with link buttons.
    Feishu,
    /// A Feishu (Lark) app's bot posting to one chat: cards whose buttons call rootfix back.
    FeishuApp,
    /// PagerDuty Events API v2: trigger, and resolve with the incident.
    PagerDuty,
    /// Opsgenie Alert API: create, and close with the incident.
    Opsgenie,
    /// Plain-text email over SMTP (STARTTLS or TLS, AUTH).
    Email,
}

impl Format {
    pub const ALL: [Format; 10] = [
        Format::Slack,
        Format::DingTalk,
        Format::WeCom,
        Format::Json,
        Format::Teams,
        Format::Feishu,
        Format::FeishuApp,
        Format::PagerDuty,
        Format::Opsgenie,
        Format::Email,
    ];

    /// The name in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Slack => "slack",
            Format::DingTalk => "dingtalk",
            Format::WeCom => "wecom",
            Format::Json => "json",
            Format::Teams => "teams",
            Format::Feishu => "feishu",
            Format::FeishuApp => "feishu-app",
            Format::PagerDuty => "pagerduty",
            Format::Opsgenie => "opsgenie",
            Format::Email => "email",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Whether this format pages a person (an alert that stays open until resolved).
    pub fn pages(self) -> bool {
        matches!(self, Format::PagerDuty | Format::Opsgenie)
    }

    /// The kinds a receiver of this format gets when its `events` are left out: a paging sink
    /// the urgent ones and the resolve that closes them; a chat or webhook every kind but the
    /// resolve.
    pub fn default_events(self) -> BTreeSet<NotificationKind> {
        NotificationKind::ALL
            .into_iter()
            .filter(|k| {
                if self.pages() {
                    k.urgent() || *k == NotificationKind::IncidentResolved
                } else {
                    *k != NotificationKind::IncidentResolved
                }
            })
            .collect()
    }

    /// The API base a format without a webhook URL posts to by default.
    fn default_base(self) -> Option<&'static str> {
        match self {
            Format::PagerDuty => Some("https://events.pagerduty.com"),
            Format::Opsgenie => Some("https://api.opsgenie.com"),
            Format::FeishuApp => Some("https://open.feishu.cn"),
            _ => None,
        }
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
    /// The key of `pagerduty` (routing key), `opsgenie` (API key) and `feishu-app` (app secret).
    pub secret: Option<String>,
    /// `feishu-app`: the app's ID and the chat its bot posts to.
    pub app_id: Option<String>,
    pub chat_id: Option<String>,
    /// `email`: sender, recipients, an extra CA.
    pub email: Option<super::email::EmailConfig>,
}

impl ReceiverConfig {
    /// A receiver of `format` posting to `url`, with the format's default events and no key.
    pub fn webhook(name: impl Into<String>, format: Format, url: Url) -> Self {
        Self {
            name: name.into(),
            format,
            url,
            events: format.default_events(),
            secret: None,
            app_id: None,
            chat_id: None,
            email: None,
        }
    }
}

impl fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url", &self.url.origin().ascii_serialization())
            .field("events", &self.events)
            .field("key", &self.secret.as_ref().map(|_| "<set>"))
            .field("app_id", &self.app_id)
            .field("chat_id", &self.chat_id)
            .field("email", &self.email.as_ref().map(|e| (&e.from, &e.to)))
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
    /// The web page's address as people reach it: a message about an incident links to
    /// `<public_url>/ui/incidents/<id>` (and a Teams or Feishu webhook's button opens it).
    pub public_url: Option<Url>,
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
            public_url: None,
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

    let public_url = doc
        .public_url
        .as_deref()
        .and_then(|text| match Url::parse(text.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
            _ => {
                r.at_value(
                    "notifications.public_url",
                    format!("`{text}` is not an http or https URL"),
                );
                None
            }
        });
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
                    "unknown format `{}`; expected one of {}",
                    d.format,
                    Format::ALL.map(Format::as_str).join(", ")
                ),
            );
        }
        let url = match format.and_then(Format::default_base) {
            Some(base) if d.url.is_none() && d.url_env.is_none() => Url::parse(base).ok(),
            _ => receiver_url(d, &field, r, env, format == Some(Format::Email)),
        };
        let email = if format == Some(Format::Email) {
            receiver_email(d, &field, r)
        } else {
            for (key, given) in [
                ("from", d.from.is_some()),
                ("to", d.to.is_some()),
                ("ca_file", d.ca_file.is_some()),
            ] {
                if given {
                    r.at_key(
                        &format!("{field}.{key}"),
                        format!("`{key}` is used by format email only"),
                    );
                }
            }
            None
        };
        let (secret, app_id, chat_id) = match format {
            Some(f) => receiver_keys(f, d, &field, r, env),
            None => (None, None, None),
        };
        let events = match &d.events {
            None => format.map(Format::default_events).unwrap_or_default(),
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
                secret,
                app_id,
                chat_id,
                email,
            });
        }
    }
    NotificationsConfig {
        queue,
        retries,
        backoff,
        max_backoff: defaults.max_backoff,
        timeout,
        public_url,
        receivers,
    }
}

/// The key fields `format` needs (and none it does not): `routing_key_env` for pagerduty,
/// `api_key_env` for opsgenie, `app_id`, `app_secret_env` and `chat_id` for feishu-app.
fn receiver_keys(
    format: Format,
    d: &ReceiverDocument,
    field: &str,
    r: &mut Reporter<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<String>, Option<String>, Option<String>) {
    let wanted: &[&str] = match format {
        Format::PagerDuty => &["routing_key_env"],
        Format::Opsgenie => &["api_key_env"],
        Format::FeishuApp => &["app_id", "app_secret_env", "chat_id"],
        _ => &[],
    };
    let given = [
        ("routing_key_env", &d.routing_key_env),
        ("api_key_env", &d.api_key_env),
        ("app_secret_env", &d.app_secret_env),
        ("app_id", &d.app_id),
        ("chat_id", &d.chat_id),
    ];
    let mut secret = None;
    for (key, value) in given {
        let at = format!("{field}.{key}");
        match (wanted.contains(&key), value) {
            (false, Some(_)) => r.at_key(&at, format!("`{key}` is not used by format {}", format.as_str())),
            (true, None) => r.at_key(field, format!("format {} needs `{key}`", format.as_str())),
            (true, Some(v)) if key.ends_with("_env") => match r.env_var(&at, v, env) {
                Some(value) if value.trim().is_empty() => {
                    r.at_value(&at, format!("environment variable {v} is not set"))
                }
                Some(value) => secret = Some(value.trim().to_string()),
                None => {}
            },
            (true, Some(v)) if v.trim().is_empty() => r.at_value(&at, "must not be empty"),
            _ => {}
        }
    }
    (secret, d.app_id.clone(), d.chat_id.clone())
}

/// An email receiver's `from`, `to` (at least one) and `ca_file`, each checked.
fn receiver_email(
    d: &ReceiverDocument,
    field: &str,
    r: &mut Reporter<'_>,
) -> Option<super::email::EmailConfig> {
    use lettre::message::Mailbox;
    let mailbox = |r: &mut Reporter<'_>, at: &str, text: &str| match text.parse::<Mailbox>() {
        Ok(m) => Some(m),
        Err(e) => {
            r.at_value(at, format!("`{text}` is not an email address: {e}"));
            None
        }
    };
    let from = match &d.from {
        Some(f) => mailbox(r, &format!("{field}.from"), f),
        None => {
            r.at_key(field, "format email needs `from`");
            None
        }
    };
    let mut to = Vec::new();
    match &d.to {
        Some(list) if !list.is_empty() => {
            for (i, addr) in list.iter().enumerate() {
                to.extend(mailbox(r, &join_index(&format!("{field}.to"), i), addr));
            }
        }
        _ => r.at_key(field, "format email needs `to` (one address or more)"),
    }
    let ca_pem = match &d.ca_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Some(pem),
            Ok(_) => {
                r.at_value(
                    &format!("{field}.ca_file"),
                    format!("{} holds no PEM certificate", path.display()),
                );
                None
            }
            Err(e) => {
                r.at_value(
                    &format!("{field}.ca_file"),
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        },
        None => None,
    };
    Some(super::email::EmailConfig {
        from: from?,
        to,
        ca_pem,
    })
}

/// The receiver's URL from `url` or `url_env` (exactly one), http or https. A URL from the
/// environment is never quoted in a message: it holds the secret.
fn receiver_url(
    d: &ReceiverDocument,
    field: &str,
    r: &mut Reporter<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    smtp: bool,
) -> Option<Url> {
    let (text, at, quoted) = match (&d.url, &d.url_env) {
        (Some(url), None) => (url.clone(), format!("{field}.url"), true),
        (None, Some(var)) => {
            let at = format!("{field}.url_env");
            let value = r.env_var(&at, var, env)?;
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
    let schemes: &[&str] = if smtp {
        &["smtp", "smtps"]
    } else {
        &["http", "https"]
    };
    match Url::parse(text.trim()) {
        Ok(url) if schemes.contains(&url.scheme()) && url.host().is_some() => Some(url),
        Ok(_) if smtp => {
            r.at_value(
                &at,
                format!("{what}: an email receiver's URL is smtp://… (STARTTLS) or smtps://… (TLS)"),
            );
            None
        }
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
