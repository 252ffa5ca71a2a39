//! Delivery to one receiver: its task takes notifications off its queue in order and POSTs
//! each, retrying what may succeed later (connection errors, timeouts, 5xx, 429, the robots'
//! rate-limit errcodes) with exponential backoff, and giving up at once on what will not (other
//! 4xx, other errcodes, redirects).
//!
//! Each format's request: a webhook POSTs the body to its URL; PagerDuty to `/v2/enqueue` with
//! the routing key in the body; Opsgenie to `/v2/alerts` (create) or
//! `/v2/alerts/{alias}/close?identifierType=alias` (close) with `Authorization: GenieKey`; a
//! Feishu app first takes a `tenant_access_token` (`/open-apis/auth/v3/tenant_access_token/
//! internal`, kept until shortly before it expires, fetched again when the API says it is
//! invalid) and then calls `/open-apis/im/v1/messages?receive_id_type=chat_id` with it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tracing::{Instrument, debug, error, info_span, warn};
use url::Url;

use super::feishu::feishu_app_message;
use super::paging::{opsgenie_close, pagerduty, paging_key};
use super::{Counters, Format, Notification, NotificationKind, NotifyError, ReceiverConfig};
use crate::evidence::client::error_chain;
use crate::metrics::Metrics;

/// The most of an answer's body kept for a log line.
const SNIPPET: usize = 512;

/// DingTalk: "send too fast" (over 20 messages a minute).
const DINGTALK_RATE_LIMITED: i64 = 130101;
/// WeCom: "api freq out of limit".
const WECOM_RATE_LIMITED: i64 = 45009;
/// Both: "system busy".
const SYSTEM_BUSY: i64 = -1;

/// One client for every receiver. Redirects are not followed (a webhook that moves is a config
/// error, and following would turn the POST into a GET); proxy environment variables are
/// honoured, since chat services are usually outside the network.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("rootfix/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifyError::Client(error_chain(&e)))
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): `backoff · 2^(attempt-1)`, at
    /// least what the receiver asked for (`Retry-After`), never more than `max_backoff`.
    pub fn delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        let doubled = self.backoff.saturating_mul(factor);
        doubled.max(asked.unwrap_or_default()).min(self.max_backoff)
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Delivered,
    /// Worth another attempt, after at least `after` when the receiver said so.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Will not succeed by trying again.
    Refused(String),
}

/// What one notification becomes: an HTTP request, or an email.
enum Job {
    Http(Request),
    Mail(Box<lettre::Message>),
}

/// One request to send.
struct Request {
    url: Url,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// A Feishu app's tenant access token and when to stop using it.
#[derive(Debug, Clone)]
struct TenantToken {
    token: String,
    until: tokio::time::Instant,
}

pub(crate) struct Worker {
    pub name: String,
    pub receiver: ReceiverConfig,
    pub client: reqwest::Client,
    pub policy: RetryPolicy,
    pub counters: Arc<Counters>,
    pub metrics: Option<Arc<Metrics>>,
    token: Mutex<Option<TenantToken>>,
    /// The email sink's SMTP transport (or why it cannot be built).
    mailer: Option<Result<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>, String>>,
}

impl Worker {
    pub fn new(
        receiver: ReceiverConfig,
        client: reqwest::Client,
        policy: RetryPolicy,
        counters: Arc<Counters>,
        metrics: Option<Arc<Metrics>>,
        timeout: Duration,
    ) -> Self {
        let mailer = receiver
            .email
            .as_ref()
            .filter(|_| receiver.format == Format::Email)
            .map(|email| super::email::transport(&receiver.url, email, timeout));
        Self {
            mailer,
            name: receiver.name.clone(),
            receiver,
            client,
            policy,
            counters,
            metrics,
            token: Mutex::new(None),
        }
    }

    fn format(&self) -> Format {
        self.receiver.format
    }

    /// The request for `n`, or `None` when this receiver has nothing to do with it (a resolve
    /// without an incident to resolve).
    fn request(&self, n: &Notification) -> Result<Option<Request>, String> {
        let r = &self.receiver;
        let join = |path: &str| {
            r.url
                .join(path)
                .map_err(|e| format!("cannot build the {} URL: {e}", r.format.as_str()))
        };
        let secret = r.secret.as_deref().unwrap_or_default();
        let (url, authorization, body) = match r.format {
            Format::PagerDuty => {
                if n.kind == NotificationKind::IncidentResolved && n.incident.is_none() {
                    return Ok(None);
                }
                (join("/v2/enqueue")?, None, pagerduty(n, secret))
            }
            Format::Opsgenie => {
                let auth = Some(format!("GenieKey {secret}"));
                if n.kind == NotificationKind::IncidentResolved {
                    let Some(alias) = paging_key(n) else {
                        return Ok(None);
                    };
                    let mut url = join(&format!("/v2/alerts/{alias}/close"))?;
                    url.query_pairs_mut().append_pair("identifierType", "alias");
                    (url, auth, opsgenie_close(n))
                } else {
                    (join("/v2/alerts")?, auth, r.format.body(n))
                }
            }
            Format::FeishuApp => {
                let mut url = join("/open-apis/im/v1/messages")?;
                url.query_pairs_mut().append_pair("receive_id_type", "chat_id");
                let chat = r.chat_id.as_deref().unwrap_or_default();
                (url, None, feishu_app_message(n, chat))
            }
            _ => (r.url.clone(), None, r.format.body(n)),
        };
        let body =
            serde_json::to_vec(&body).map_err(|e| format!("cannot serialize the notification: {e}"))?;
        Ok(Some(Request {
            url,
            authorization,
            body,
        }))
    }

    /// A Feishu app's tenant access token: the one kept, or a new one.
    async fn tenant_token(&self) -> Result<String, Outcome> {
        let mut kept = self.token.lock().await;
        if let Some(t) = kept.as_ref()
            && t.until > tokio::time::Instant::now()
        {
            return Ok(t.token.clone());
        }
        let url = self
            .receiver
            .url
            .join("/open-apis/auth/v3/tenant_access_token/internal")
            .map_err(|e| Outcome::Refused(format!("cannot build the token URL: {e}")))?;
        let body = json!({
            "app_id": self.receiver.app_id.as_deref().unwrap_or_default(),
            "app_secret": self.receiver.secret.as_deref().unwrap_or_default(),
        });
        let answer = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| Outcome::Retry {
                reason: format!("tenant access token: {}", error_chain(&e.without_url())),
                after: None,
            })?;
        let status = answer.status();
        let bytes = answer.bytes().await.unwrap_or_default();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match (
            status.is_success(),
            parsed["code"].as_i64(),
            parsed["tenant_access_token"].as_str(),
        ) {
            (true, Some(0), Some(token)) => {
                // Kept until five minutes before it expires (Feishu hands out two hours).
                let expire = parsed["expire"].as_u64().unwrap_or(7200);
                *kept = Some(TenantToken {
                    token: token.to_string(),
                    until: tokio::time::Instant::now()
                        + Duration::from_secs(expire.saturating_sub(300).max(60)),
                });
                Ok(token.to_string())
            }
            _ if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => Err(Outcome::Retry {
                reason: format!("tenant access token: HTTP {status}: {}", snippet(&bytes)),
                after: None,
            }),
            _ => Err(Outcome::Refused(format!(
                "tenant access token refused (check app_id and app_secret): HTTP {status}: {}",
                snippet(&bytes)
            ))),
        }
    }
    /// Delivers every queued notification, one after the other, until the queue is closed and
    /// empty.
    pub async fn run(self, mut rx: mpsc::Receiver<Arc<Notification>>) {
        while let Some(n) = rx.recv().await {
            let span = info_span!(
                "notify",
                receiver = %self.name,
                format = self.format().as_str(),
                kind = n.kind.as_str(),
                incident = n.incident.as_deref().unwrap_or("-"),
            );
            let delivered = self.deliver(&n).instrument(span).await;
            let (counter, result) = if delivered {
                (&self.counters.sent, "sent")
            } else {
                (&self.counters.failed, "failed")
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Some(m) = &self.metrics {
                m.notification(&self.name, result);
            }
        }
        debug!(receiver = %self.name, "notification queue closed");
    }

    /// Whether the receiver took `n`, after as many attempts as the policy allows.
    async fn deliver(&self, n: &Notification) -> bool {
        let job = if self.format() == Format::Email {
            match self.receiver.email.as_ref().map(|e| super::email::message(n, e)) {
                Some(Ok(message)) => Ok(Some(Job::Mail(Box::new(message)))),
                Some(Err(e)) => Err(e),
                None => Err("the email receiver has no sender and recipients".to_string()),
            }
        } else {
            self.request(n).map(|r| r.map(Job::Http))
        };
        let job = match job {
            Ok(Some(job)) => job,
            Ok(None) => {
                debug!("nothing for this receiver to do with the notification");
                return true;
            }
            Err(e) => {
                error!("{e}");
                return false;
            }
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = match &job {
                Job::Http(request) => self.attempt(request).await,
                Job::Mail(message) => match &self.mailer {
                    Some(Ok(transport)) => super::email::send(transport, (**message).clone()).await,
                    Some(Err(e)) => Outcome::Refused(e.clone()),
                    None => Outcome::Refused("the email receiver has no SMTP transport".into()),
                },
            };
            match outcome {
                Outcome::Delivered => {
                    debug!(attempt, "notification delivered");
                    return true;
                }
                Outcome::Refused(reason) => {
                    error!(attempt, "notification refused, not retried: {reason}");
                    return false;
                }
                Outcome::Retry { reason, after } => {
                    if attempt > self.policy.retries {
                        error!(attempt, "notification not delivered, out of retries: {reason}");
                        return false;
                    }
                    let delay = self.policy.delay(attempt, after);
                    warn!(
                        attempt,
                        ?delay,
                        "notification not delivered, will retry: {reason}"
                    );
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn attempt(&self, request: &Request) -> Outcome {
        let mut post = self
            .client
            .post(request.url.clone())
            .header(CONTENT_TYPE, self.format().content_type())
            .body(request.body.clone());
        if let Some(auth) = &request.authorization {
            post = post.header(AUTHORIZATION, auth);
        }
        if self.format() == Format::FeishuApp {
            match self.tenant_token().await {
                Ok(token) => post = post.bearer_auth(token),
                Err(outcome) => return outcome,
            }
        }
        let sent = post.send().await;
        let response = match sent {
            Ok(response) => response,
            // A request that could not be built will not be built next time either; anything
            // else (connect, timeout, reset) may pass later. The URL is left out: it holds the
            // receiver's secret.
            Err(e) if e.is_builder() => {
                return Outcome::Refused(error_chain(&e.without_url()));
            }
            Err(e) => {
                return Outcome::Retry {
                    reason: error_chain(&e.without_url()),
                    after: None,
                };
            }
        };
        let status = response.status();
        let asked = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match response.bytes().await {
            Ok(answer) => {
                let outcome = classify(self.format(), status, asked, &answer);
                if self.format() == Format::FeishuApp && super::feishu::token_invalid(&answer) {
                    *self.token.lock().await = None;
                }
                outcome
            }
            Err(e) => Outcome::Retry {
                reason: format!(
                    "HTTP {status}, then the answer broke off: {}",
                    error_chain(&e.without_url())
                ),
                after: asked,
            },
        }
    }
}

/// Reads an answer: the status, and for the robots the `errcode` they put in a 200.
pub(crate) fn classify(format: Format, status: StatusCode, asked: Option<Duration>, body: &[u8]) -> Outcome {
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Outcome::Retry {
            reason: format!("HTTP {status}: {}", snippet(body)),
            after: asked,
        };
    }
    if !status.is_success() {
        return Outcome::Refused(format!("HTTP {status}: {}", snippet(body)));
    }
    let rate_limited = match format {
        Format::Slack
        | Format::Json
        | Format::Teams
        | Format::PagerDuty
        | Format::Opsgenie
        | Format::Email => {
            return Outcome::Delivered;
        }
        Format::Feishu | Format::FeishuApp => return super::feishu::classify(status, body),
        Format::DingTalk => DINGTALK_RATE_LIMITED,
        Format::WeCom => WECOM_RATE_LIMITED,
    };
    let answer: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let Some(code) = answer
        .as_ref()
        .and_then(|a| a.get("errcode"))
        .and_then(|c| c.as_i64())
    else {
        return Outcome::Refused(format!(
            "HTTP {status} without an errcode, not a {} robot's answer: {}",
            format.as_str(),
            snippet(body)
        ));
    };
    let message = answer
        .as_ref()
        .and_then(|a| a.get("errmsg"))
        .and_then(|m| m.as_str())
        .unwrap_or("");
    match code {
        0 => Outcome::Delivered,
        c if c == rate_limited || c == SYSTEM_BUSY => Outcome::Retry {
            reason: format!("errcode {c}: {message}"),
            after: None,
        },
        c => Outcome::Refused(format!("errcode {c}: {message}")),
    }
}

pub(super) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(SNIPPET) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retried(o: &Outcome) -> bool {
        matches!(o, Outcome::Retry { .. })
    }

    #[test]
    fn statuses_decide_what_is_retried() {
        for format in Format::ALL {
            assert!(retried(&classify(
                format,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                b""
            )));
            assert!(retried(&classify(format, StatusCode::BAD_GATEWAY, None, b"")));
            assert_eq!(
                classify(
                    format,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(Duration::from_secs(7)),
                    b"slow down"
                ),
                Outcome::Retry {
                    reason: "HTTP 429 Too Many Requests: slow down".into(),
                    after: Some(Duration::from_secs(7)),
                }
            );
            assert_eq!(
                classify(format, StatusCode::NOT_FOUND, None, b"no_service"),
                Outcome::Refused("HTTP 404 Not Found: no_service".into())
            );
            assert!(matches!(
                classify(format, StatusCode::MOVED_PERMANENTLY, None, b""),
                Outcome::Refused(_)
            ));
        }
        assert_eq!(
            classify(Format::Slack, StatusCode::OK, None, b"ok"),
            Outcome::Delivered
        );
        assert_eq!(
            classify(Format::Json, StatusCode::NO_CONTENT, None, b""),
            Outcome::Delivered
        );
    }

    #[test]
    fn robots_answer_200_with_an_errcode() {
        let ok = br#"{"errcode":0,"errmsg":"ok"}"#;
        for format in [Format::DingTalk, Format::WeCom] {
            assert_eq!(classify(format, StatusCode::OK, None, ok), Outcome::Delivered);
            assert!(retried(&classify(
                format,
                StatusCode::OK,
                None,
                br#"{"errcode":-1,"errmsg":"system busy"}"#
            )));
            assert!(matches!(
                classify(format, StatusCode::OK, None, b"<html>proxy</html>"),
                Outcome::Refused(_)
            ));
        }
        assert_eq!(
            classify(
                Format::DingTalk,
                StatusCode::OK,
                None,
                br#"{"errcode":130101,"errmsg":"send too fast"}"#
            ),
            Outcome::Retry {
                reason: "errcode 130101: send too fast".into(),
                after: None,
            }
        );
        assert_eq!(
            classify(
                Format::DingTalk,
                StatusCode::OK,
                None,
                br#"{"errcode":310000,"errmsg":"keywords not in content"}"#
            ),
            Outcome::Refused("errcode 310000: keywords not in content".into())
        );
        assert!(retried(&classify(
            Format::WeCom,
            StatusCode::OK,
            None,
            br#"{"errcode":45009,"errmsg":"api freq out of limit"}"#
        )));
        // Each robot's rate-limit code is its own.
        assert!(!retried(&classify(
            Format::WeCom,
            StatusCode::OK,
            None,
            br#"{"errcode":130101}"#
        )));
    }

    #[test]
    fn backoff_doubles_honours_retry_after_and_is_capped() {
        let p = RetryPolicy {
            retries: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (1..=8).map(|a| p.delay(a, None).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.delay(1, Some(Duration::from_secs(10))), Duration::from_secs(10));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
        assert_eq!(p.delay(u32::MAX, None), Duration::from_secs(60));
    }
}
