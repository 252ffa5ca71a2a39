//! The chat platforms' callbacks: an on-call's click on a message rootfix sent decides the
//! approval or confirmation it shows, through the same `Autonomy` calls as the API.
//!
//! | route | auth | does |
//! |---|---|---|
//! | `POST /api/v1/chat/slack` | Slack's `v0` signature | a Slack app's interactivity request: approve, reject, confirm; the message is updated through its `response_url` |
//! | `POST /api/v1/chat/feishu` | Feishu's signature + verification token | a Feishu app's `card.action.trigger` callback (and its address check); the answer replaces the card |
//!
//! Order of checks: the signature and its age (401, nothing else read), the one-time key in the
//! state store (401 on a replay, 503 when the store cannot say), then the chat user's mapping to
//! a token's identity with role approver or admin. A click that is authentic but cannot decide
//! (an unknown user, an expired or already decided approval) answers 200 and tells the user why
//! in the chat (Slack: an ephemeral message; Feishu: a toast); an unknown user is audited as
//! `chat.refused`. Decisions are audited by `Autonomy` with the identity `alice (slack U…)`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::AppState;
use super::approvals::autonomy;
use super::extract::bytes_error;
use crate::chat::{ChatConfig, ChatError, Choice, Click, feishu, slack};
use crate::config::Role;
use crate::notify::{feishu_card_of, slack_decided, slack_ephemeral};
use crate::record::audit::AuditEvent;

/// The chat section and the client that posts Slack's message updates.
pub struct ChatState {
    pub config: ChatConfig,
    client: Option<reqwest::Client>,
}

impl ChatState {
    /// Callbacks as configured; the client posts message updates (5 s timeout, no redirects).
    pub fn new(config: ChatConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the chat client: {e}"))?;
        Ok(Self {
            config,
            client: Some(client),
        })
    }

    /// No platform configured: every callback answers 404.
    pub fn disabled() -> Arc<Self> {
        Arc::new(Self {
            config: ChatConfig::default(),
            client: None,
        })
    }
}

/// A refusal of the request itself.
fn refused(e: &ChatError) -> Response {
    let status = match e {
        ChatError::Malformed(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    warn!(error = %e, "chat callback refused");
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

fn not_configured(platform: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("{platform} callbacks are not configured (chat.{platform})")})),
    )
        .into_response()
}

/// Takes the click's one-time key; `Err` is the response to give.
async fn take_once(app: &AppState, click: &Click) -> Result<(), Response> {
    // Kept for twice the window: a request signed at the window's far edge stays refused.
    let ttl = app.chat.config.replay_window * 2;
    match app.state.use_once(&click.once_key, ttl).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(refused(&ChatError::Replayed)),
        Err(e) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": format!("state unavailable, nothing was decided: {e}")})),
        )
            .into_response()),
    }
}

/// Decides the click as the user's rootfix identity: what happened, or why nothing did.
async fn decide(
    app: &AppState,
    click: &Click,
    users: &std::collections::BTreeMap<String, String>,
) -> Result<String, String> {
    let platform = click.platform;
    let Some(name) = users.get(&click.user) else {
        let why = format!(
            "your {platform} user {} is not mapped to a rootfix identity; an admin adds it under chat.{platform}.users",
            click.user
        );
        let event = AuditEvent {
            at: Utc::now(),
            identity: format!("{platform} {}", click.user),
            action: "chat.refused".into(),
            detail: format!(
                "a chat user rootfix does not know clicked: {}",
                click.choice.describe()
            ),
        };
        if let Err(e) = app.state.append_audit(&event).await {
            warn!(error = %e, "could not write the audit trail");
        }
        return Err(why);
    };
    let allowed = app
        .tokens
        .iter()
        .any(|t| &t.name == name && t.role.allows(Role::Approver));
    if !allowed {
        return Err(format!(
            "rootfix identity {name} may not approve (it needs role approver or admin)"
        ));
    }
    let by = click.identity(name);
    let autonomy = autonomy(app).map_err(|e| e.to_string())?;
    let api = |e: crate::autonomy::controller::AutonomyError| super::error::ApiError::from(e).to_string();
    let at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let what = match &click.choice {
        Choice::Approve { approval } => {
            let done = autonomy.approve(approval, &by).await.map_err(api)?;
            if !done.newly {
                return Err(format!("approval {approval} was already approved"));
            }
            let fix = match done.decided {
                Some(crate::autonomy::controller::Decided::Started { dry_run: true }) => {
                    "; the fix runs as a dry run"
                }
                Some(crate::autonomy::controller::Decided::Started { .. }) => "; the fix started",
                Some(crate::autonomy::controller::Decided::Refused { .. }) => {
                    "; a gate refused the fix (see the incident)"
                }
                _ => "",
            };
            format!("Approval {approval} approved by {by} at {at}{fix}")
        }
        Choice::Reject { approval } => {
            let reason = format!("rejected in {platform} by {by}");
            autonomy.reject(approval, &by, &reason).await.map_err(api)?;
            format!("Approval {approval} rejected by {by} at {at}")
        }
        Choice::Confirm {
            incident,
            correct,
            severity,
        } => {
            let comment = format!("from {platform}");
            autonomy
                .confirm(incident, &by, *correct, *severity, &comment)
                .await
                .map_err(api)?;
            format!(
                "The fix of incident {incident} was {} by {by} at {at}",
                click.choice.done()
            )
        }
    };
    info!(by = %by, "decided from chat: {what}");
    Ok(what)
}

/// `POST /api/v1/chat/slack`.
#[utoipa::path(post, path = "/api/v1/chat/slack", tag = "chat",
    request_body(content = super::bodies::SlackForm, content_type = "application/x-www-form-urlencoded"),
    params(
        ("x-slack-signature" = Option<String>, Header, description = "Slack's `v0=` signature of the body"),
        ("x-slack-request-timestamp" = Option<String>, Header, description = "When Slack signed it (Unix seconds)")),
    responses(
        (status = 200, description = "Authentic: decided, or why not (also shown to the user in Slack)", body = super::bodies::SlackAnswer),
        (status = 400, description = "Malformed", body = super::bodies::ErrorBody),
        (status = 401, description = "Not signed by Slack, too old, or a replay", body = super::bodies::ErrorBody),
        (status = 404, description = "Slack callbacks are not configured", body = super::bodies::ErrorBody)))]
pub async fn slack(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(cfg) = app.chat.config.slack.clone() else {
        return not_configured("slack");
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return bytes_error(&app.http, e).into_response(),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = header("x-slack-signature");
    let window = app.chat.config.replay_window;
    if let Err(e) = slack::verify(
        &cfg.signing_secret,
        header("x-slack-request-timestamp"),
        signature,
        &body,
        Utc::now(),
        window,
    ) {
        return refused(&e);
    }
    let click = match slack::parse(&body, signature.unwrap_or_default()) {
        Ok(c) => c,
        Err(e) => return refused(&e),
    };
    if let Err(response) = take_once(&app, &click.click).await {
        return response;
    }
    let decided = decide(&app, &click.click, &cfg.users).await;
    let update = match &decided {
        Ok(what) => slack_decided(&click.blocks, &click.text, what),
        Err(why) => slack_ephemeral(why),
    };
    match (&click.response_url, &app.chat.client) {
        (Some(url), Some(client)) if url.starts_with(&cfg.response_url_prefix) => {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                match client.post(&url).json(&update).send().await {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => warn!(status = %r.status(), "Slack refused the message update"),
                    Err(e) => warn!(error = %e.without_url(), "could not post the Slack message update"),
                }
            });
        }
        (Some(_), _) => warn!(
            "the click's response_url does not start with chat.slack.response_url_prefix: the message is not updated"
        ),
        (None, _) => {}
    }
    let answer = match decided {
        Ok(what) => json!({"decided": true, "message": what}),
        Err(why) => json!({"decided": false, "reason": why}),
    };
    (StatusCode::OK, Json(answer)).into_response()
}

/// `POST /api/v1/chat/feishu`.
#[utoipa::path(post, path = "/api/v1/chat/feishu", tag = "chat",
    request_body(content = Object, description = "A Feishu app's callback: `url_verification` or `card.action.trigger`, plain or encrypted (`{\"encrypt\"}`)"),
    params(
        ("x-lark-request-timestamp" = Option<String>, Header, description = "When Feishu signed it"),
        ("x-lark-request-nonce" = Option<String>, Header, description = "The signature's nonce"),
        ("x-lark-signature" = Option<String>, Header, description = "Feishu's SHA-256 signature")),
    responses(
        (status = 200, description = "The address check's `challenge`, or the click's toast and replacement card", body = Object),
        (status = 400, description = "Malformed", body = super::bodies::ErrorBody),
        (status = 401, description = "Not signed by Feishu, a wrong verification token, too old, or a replay", body = super::bodies::ErrorBody),
        (status = 404, description = "Feishu callbacks are not configured", body = super::bodies::ErrorBody)))]
pub async fn feishu(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(cfg) = app.chat.config.feishu.clone() else {
        return not_configured("feishu");
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return bytes_error(&app.http, e).into_response(),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = feishu::Signed {
        timestamp: header("x-lark-request-timestamp"),
        nonce: header("x-lark-request-nonce"),
        signature: header("x-lark-signature"),
    };
    let callback =
        match feishu::verify_and_parse(&cfg, signed, &body, Utc::now(), app.chat.config.replay_window) {
            Ok(c) => c,
            Err(e) => return refused(&e),
        };
    let click = match callback {
        feishu::Callback::Challenge(challenge) => {
            return (StatusCode::OK, Json(json!({"challenge": challenge}))).into_response();
        }
        feishu::Callback::Click(click) => click,
    };
    if let Err(response) = take_once(&app, &click).await {
        return response;
    }
    let answer: Value = match decide(&app, &click, &cfg.users).await {
        Ok(what) => {
            let title = match &click.choice {
                Choice::Approve { .. } | Choice::Reject { .. } => format!("rootfix: {}", click.choice.done()),
                Choice::Confirm { .. } => format!("rootfix: fix {}", click.choice.done()),
            };
            json!({
                "toast": {"type": "success", "content": what},
                "card": {"type": "raw", "data": feishu_card_of(
                    &title,
                    false,
                    vec![json!({"tag": "markdown", "content": what})],
                )},
            })
        }
        Err(why) => json!({"toast": {"type": "error", "content": why}}),
    };
    (StatusCode::OK, Json(answer)).into_response()
}
