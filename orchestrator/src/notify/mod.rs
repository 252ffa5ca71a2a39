//! Notifications: rootfix's events (an approval is wanted, a fix worked, a rollback failed…)
//! posted to chat rooms and webhooks.
//!
//! This module owns the event type ([`Notification`], [`NotificationKind`]), the body of each
//! receiver format ([`Format::body`]), the `notifications:` section of the serve config
//! ([`NotificationsConfig`]) and the background delivery ([`Notifier`]). It must not block or
//! fail its caller: [`Notifier::notify`] only puts the event on bounded in-memory queues, one per
//! receiver, and returns; a full queue drops the event (with a warning and a counter) rather than
//! wait. Each receiver has its own queue and task, so a slow or dead receiver delays nobody else.
//! Notifications are best effort: they are not persisted, and a restart loses queued ones.
//!
//! # Layout
//! - `config`: the `notifications:` section as written, its checks (positioned problems, like
//!   the rest of the config file) and the validated [`NotificationsConfig`].
//! - `format`: one body per [`Format`], pure functions; `cards` (an ask's buttons, the Teams
//!   card), `feishu` (its cards and answers) and `paging` (PagerDuty, Opsgenie) hold the newer
//!   formats' parts.
//! - `deliver`: one task per receiver: each format's request, timeout, retries with exponential
//!   backoff, and how each format's answer is read.
//! - `email`: the SMTP sink (lettre): transport from the receiver's URL, the message, the send.
//!
//! # Formats
//! - **Slack** incoming webhook: a JSON object with `text` (the fallback shown in notifications
//!   when `blocks` are present) and Block Kit `blocks` (`section` and `context` blocks whose text
//!   objects are `{"type": "mrkdwn", "text": …}`). `&`, `<` and `>` are escaped as `&amp;`,
//!   `&lt;`, `&gt;` as mrkdwn requires; links are `<url|label>`. Slack answers `200 ok`; a rate
//!   limit is `429` with `Retry-After` (seconds). See
//!   <https://api.slack.com/messaging/webhooks>, <https://api.slack.com/reference/surfaces/formatting>
//!   and <https://api.slack.com/docs/rate-limits>.
//! - **DingTalk** custom robot (`https://oapi.dingtalk.com/robot/send?access_token=…`):
//!   `{"msgtype": "markdown", "markdown": {"title": …, "text": …}, "at": {"isAtAll": true}}`; the
//!   title is what the conversation list shows; `at` is sent for urgent events only. The robot
//!   answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`; any other `errcode` is a failure,
//!   `130101` ("send too fast": more than 20 messages a minute) is retried. The body must be
//!   UTF-8 (`Content-Type: application/json; charset=utf-8`). See
//!   <https://open.dingtalk.com/document/group/custom-robot-access> and
//!   <https://open.dingtalk.com/document/development/robot-message-type>.
//! - **WeCom** (企业微信) group robot (`https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`):
//!   `{"msgtype": "markdown", "markdown": {"content": …}}`, content at most 4096 bytes, with the
//!   markdown subset WeCom renders (headings, bold, links, `>` quotes, `<font color="info|comment|
//!   warning">`). The markdown type cannot mention people, so urgency is a `warning`-coloured
//!   marker. Answers are HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`; `45009` (over the rate
//!   limit, 20 a minute) is retried. See <https://developer.work.weixin.qq.com/document/path/91770>.
//! - **json**: the event itself, for rootfix's own sinks and audit pipelines:
//!   `{"kind", "urgent", "incident", "action", "scope", "title", "text", "link", "at"}` (absent
//!   optional fields are `null`, `at` is RFC 3339 UTC).
//!
//! Both Chinese robots also answer `errcode: -1` (system busy), which is retried.
//! - **teams**: a Workflows webhook's message with one Adaptive Card (1.4) attachment; answers 202.
//! - **feishu** (a group's custom bot, `…/open-apis/bot/v2/hook/…`): `{"msg_type": "interactive",
//!   "card": …}` with a JSON 2.0 card; answers `{"code": 0}`; 11232 (frequency) is retried.
//! - **feishu-app**: the same card sent by an app's bot to `chat_id` with a tenant access token;
//!   its buttons call rootfix back (`chat`, `server::chat`).
//! - **pagerduty**: Events API v2, one alert per incident (`dedup_key` `rootfix-<incident>`),
//!   resolved by `incident_resolved`; answers 202.
//! - **opsgenie**: Alert API, alias `rootfix-<incident>`, closed by `incident_resolved`; 202.
//! - **email**: plain text over SMTP (`email`).
//!
//! A notification may carry an [`Ask`] (an approval to decide, a fix to confirm): Slack and a
//! Feishu app draw it as buttons whose callbacks `server::chat` takes; DingTalk turns it into an
//! action card whose button opens the incident's page (`public_url`), Teams and a Feishu group bot
//! into a link button.

mod cards;
mod config;
mod deliver;
pub mod email;
mod feishu;
pub mod format;
mod paging;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::warn;

pub use cards::{Button, buttons};
pub use config::{Format, NotificationsConfig, ReceiverConfig};
pub(crate) use config::{NotificationsDocument, check};
pub use feishu::feishu_card_of;
pub use format::{slack_decided, slack_ephemeral};

use crate::metrics::Metrics;

/// What happened. The set is small on purpose: each kind is something a person may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A fix waits for a person's approval (staged autonomy).
    ApprovalRequested,
    /// Nobody approved in time: the escalation. **Urgent.**
    ApprovalExpired,
    /// An action's autonomy stage changed (promoted or demoted).
    StageChanged,
    /// A fix ran and its verify condition held.
    FixSucceeded,
    /// A fix stopped without needing a rollback (e.g. precheck refused, lock lost before execute).
    FixFailed,
    /// A fix failed and was rolled back cleanly.
    FixRolledBack,
    /// A rollback failed: the target may be half changed. **Urgent.**
    RollbackFailed,
    /// A remedy reached its threshold but its action cannot run on this install (its runner is
    /// disabled or unreachable): the diagnosis is the whole answer, a person acts.
    DiagnosisOnly,
    /// A verified fix did not hold (its alert or target came back): outcome `recurred`.
    FixRecurred,
    /// The per-target breaker opened: a fix kept recurring on one target, rootfix stops fixing
    /// it on its own and a person decides each attempt. **Urgent.**
    BreakerOpen,
    /// The remediation budget is spent for the hour: fixes wait (said once per window).
    BudgetSpent,
    /// An incident rootfix acted on closed (its alert resolved). Paging sinks (PagerDuty,
    /// Opsgenie) resolve their alert with it; chat receivers get it only when they list it.
    IncidentResolved,
}

impl NotificationKind {
    /// Every kind, in a stable order.
    pub const ALL: [NotificationKind; 12] = [
        NotificationKind::ApprovalRequested,
        NotificationKind::ApprovalExpired,
        NotificationKind::StageChanged,
        NotificationKind::FixSucceeded,
        NotificationKind::FixFailed,
        NotificationKind::FixRolledBack,
        NotificationKind::RollbackFailed,
        NotificationKind::DiagnosisOnly,
        NotificationKind::FixRecurred,
        NotificationKind::BreakerOpen,
        NotificationKind::BudgetSpent,
        NotificationKind::IncidentResolved,
    ];

    /// Whether the event needs a person now: DingTalk messages then mention everyone, and every
    /// format marks them.
    pub fn urgent(self) -> bool {
        matches!(
            self,
            NotificationKind::RollbackFailed
                | NotificationKind::ApprovalExpired
                | NotificationKind::BreakerOpen
        )
    }

    /// The name used in config files and the json format.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::ApprovalRequested => "approval_requested",
            NotificationKind::ApprovalExpired => "approval_expired",
            NotificationKind::StageChanged => "stage_changed",
            NotificationKind::FixSucceeded => "fix_succeeded",
            NotificationKind::FixFailed => "fix_failed",
            NotificationKind::FixRolledBack => "fix_rolled_back",
            NotificationKind::RollbackFailed => "rollback_failed",
            NotificationKind::DiagnosisOnly => "diagnosis_only",
            NotificationKind::FixRecurred => "fix_recurred",
            NotificationKind::BreakerOpen => "breaker_open",
            NotificationKind::BudgetSpent => "budget_spent",
            NotificationKind::IncidentResolved => "incident_resolved",
        }
    }

    /// The line every chat format shows under the title for kinds that need one to be read
    /// right (a diagnosis without a fix must not look like a fix).
    pub fn banner(self) -> Option<&'static str> {
        match self {
            NotificationKind::DiagnosisOnly => Some("diagnosed; rootfix cannot act here"),
            _ => None,
        }
    }

    /// The kind named `name` (as in config files), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a message asks of the person who reads it. Chat formats whose platform calls rootfix
/// back (Slack, a Feishu app) draw buttons for it; the others link to the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Approve or reject approval `id`.
    Approval(String),
    /// Confirm the fix of incident `id` as correct or a misfix (stage `silent`).
    Confirmation(String),
}

/// One event to send. `title` is one line; `text` may hold several (markdown-ish: it is put in
/// each format's markdown as is, except Slack's required escapes).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub kind: NotificationKind,
    pub incident: Option<String>,
    pub action: Option<String>,
    /// What the fix touches (a service, a host, a namespace/deployment).
    pub scope: Option<String>,
    pub title: String,
    pub text: String,
    /// Where a person can see more (the incident in a UI, a runbook).
    pub link: Option<String>,
    /// The decision the message asks for, if any.
    pub ask: Option<Ask>,
    pub at: DateTime<Utc>,
}

impl Notification {
    /// An event of `kind` happening now, without incident, action, scope or link.
    pub fn new(kind: NotificationKind, title: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            kind,
            incident: None,
            action: None,
            scope: None,
            title: title.into(),
            text: text.into(),
            link: None,
            ask: None,
            at: Utc::now(),
        }
    }

    pub fn with_ask(mut self, ask: Ask) -> Self {
        self.ask = Some(ask);
        self
    }

    pub fn with_incident(mut self, incident: impl Into<String>) -> Self {
        self.incident = Some(incident.into());
        self
    }

    pub fn with_action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    pub fn with_link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    pub fn urgent(&self) -> bool {
        self.kind.urgent()
    }
}

/// Why notifications could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifications need a tokio runtime to run their delivery tasks")]
    NoRuntime,
    #[error("cannot build the notifications' HTTP client: {0}")]
    Client(String),
}

/// Counters of one receiver, as read by [`Notifier::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverStats {
    pub name: String,
    /// Notifications the receiver accepted.
    pub sent: u64,
    /// Notifications given up on: refused (4xx, non-zero errcode) or out of retries.
    pub failed: u64,
    /// Notifications never queued because the receiver's queue was full.
    pub dropped: u64,
    /// Attempts that were retried (each failed attempt followed by another).
    pub retries: u64,
    /// Notifications waiting in the queue now (not counting one being delivered).
    pub queued: usize,
}

/// The live counters of one receiver, shared by its route and its delivery task.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
}

/// The way from [`Notifier::notify`] to one receiver's task.
struct Route {
    name: String,
    events: BTreeSet<NotificationKind>,
    tx: mpsc::Sender<Arc<Notification>>,
    counters: Arc<Counters>,
}

struct Inner {
    routes: Vec<Route>,
    metrics: Option<Arc<Metrics>>,
    public_url: Option<url::Url>,
}

/// Sends notifications to the configured receivers in the background. Cheap to clone; the
/// delivery tasks end once every clone is dropped and their queues are drained.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "receivers",
                &self.inner.routes.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Notifier {
    /// Starts one delivery task per receiver (on the current tokio runtime). With no receivers
    /// this is [`Notifier::disabled`]. `metrics`, when given, also counts
    /// `rootfix_notifications_total{receiver, result}`.
    pub fn start(config: NotificationsConfig, metrics: Option<Arc<Metrics>>) -> Result<Self, NotifyError> {
        if config.receivers.is_empty() {
            return Ok(Self::disabled());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let client = deliver::client(config.timeout)?;
        let policy = deliver::RetryPolicy {
            retries: config.retries,
            backoff: config.backoff,
            max_backoff: config.max_backoff,
        };
        let public_url = config.public_url.clone();
        let mut routes = Vec::with_capacity(config.receivers.len());
        for receiver in config.receivers {
            let (tx, rx) = mpsc::channel(config.queue.max(1));
            let counters = Arc::new(Counters::default());
            let route = Route {
                name: receiver.name.clone(),
                events: receiver.events.clone(),
                tx,
                counters: counters.clone(),
            };
            let worker = deliver::Worker::new(
                receiver,
                client.clone(),
                policy,
                counters,
                metrics.clone(),
                config.timeout,
            );
            runtime.spawn(worker.run(rx));
            routes.push(route);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                routes,
                metrics,
                public_url,
            }),
        })
    }

    /// A notifier without receivers: [`Notifier::notify`] drops everything.
    pub fn disabled() -> Self {
        Self {
            inner: Arc::new(Inner {
                routes: Vec::new(),
                metrics: None,
                public_url: None,
            }),
        }
    }

    /// Whether any receiver is configured.
    pub fn is_enabled(&self) -> bool {
        !self.inner.routes.is_empty()
    }

    /// Queues `n` for every receiver that wants its kind. Never blocks, never fails: a receiver
    /// whose queue is full misses this one (a warning and its `dropped` counter say so).
    pub fn notify(&self, mut n: Notification) {
        if self.inner.routes.is_empty() {
            return;
        }
        if n.link.is_none()
            && let (Some(base), Some(incident)) = (&self.inner.public_url, &n.incident)
        {
            n.link = incident_link(base, incident);
        }
        let n = Arc::new(n);
        for route in &self.inner.routes {
            if !route.events.contains(&n.kind) {
                continue;
            }
            if let Err(e) = route.tx.try_send(n.clone()) {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "its queue is full",
                    mpsc::error::TrySendError::Closed(_) => "its delivery task has stopped",
                };
                warn!(
                    receiver = %route.name,
                    kind = n.kind.as_str(),
                    incident = n.incident.as_deref().unwrap_or("-"),
                    "notification dropped for {}: {why}",
                    route.name
                );
                route.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = &self.inner.metrics {
                    m.notification(&route.name, "dropped");
                }
            }
        }
    }

    /// Each receiver's counters, in config order.
    pub fn stats(&self) -> Vec<ReceiverStats> {
        self.inner
            .routes
            .iter()
            .map(|r| ReceiverStats {
                name: r.name.clone(),
                sent: r.counters.sent.load(Ordering::Relaxed),
                failed: r.counters.failed.load(Ordering::Relaxed),
                dropped: r.counters.dropped.load(Ordering::Relaxed),
                retries: r.counters.retries.load(Ordering::Relaxed),
                queued: r.tx.max_capacity() - r.tx.capacity(),
            })
            .collect()
    }
}

/// `<base>/ui/incidents/<id>`, the id percent-encoded as one path segment.
fn incident_link(base: &url::Url, incident: &str) -> Option<String> {
    let mut url = base.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["ui", "incidents", incident]);
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_names_and_three_are_urgent() {
        for kind in NotificationKind::ALL {
            assert_eq!(NotificationKind::from_name(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::String(kind.as_str().into()))
            );
        }
        let urgent: Vec<_> = NotificationKind::ALL.into_iter().filter(|k| k.urgent()).collect();
        assert_eq!(
            urgent,
            [
                NotificationKind::ApprovalExpired,
                NotificationKind::RollbackFailed,
                NotificationKind::BreakerOpen
            ]
        );
        assert_eq!(NotificationKind::from_name("diagnosed"), None);
    }

    #[test]
    fn incident_links_are_one_segment_under_the_public_url() {
        let base = url::Url::parse("https://rootfix.example/").expect("url");
        assert_eq!(
            incident_link(&base, "inc-1").as_deref(),
            Some("https://rootfix.example/ui/incidents/inc-1")
        );
        let nested = url::Url::parse("https://ops.example/rootfix").expect("url");
        assert_eq!(
            incident_link(&nested, "a/b?c").as_deref(),
            Some("https://ops.example/rootfix/ui/incidents/a%2Fb%3Fc")
        );
    }

    #[test]
    fn disabled_drops_everything_without_a_runtime() {
        let n = Notifier::disabled();
        assert!(!n.is_enabled());
        n.notify(Notification::new(NotificationKind::FixSucceeded, "t", "x"));
        assert!(n.stats().is_empty());
        let started = Notifier::start(NotificationsConfig::default(), None);
        assert!(matches!(started, Ok(n) if !n.is_enabled()));
    }
}
