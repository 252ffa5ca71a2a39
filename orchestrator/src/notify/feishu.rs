//! Feishu (Lark): the JSON 2.0 card a group bot or an app's bot sends, the body of the app's
//! "send message" call, and how Feishu answers (`code`, the frequency limit, an invalid tenant
//! access token). Pure.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::Notification;
use super::cards::buttons;
use super::deliver::{Outcome, snippet};
use super::format::{banner_and_text, footer, markdown_lines};

/// Feishu: the request frequency limit (custom bots and the open API).
const FEISHU_RATE_LIMITED: [i64; 2] = [11232, 99991400];
/// Feishu: the tenant access token is invalid or expired (fetch a new one).
const FEISHU_TOKEN_INVALID: [i64; 3] = [99991661, 99991663, 99991677];

/// A Feishu card (JSON 2.0). With `callbacks` (an app's bot) the ask's buttons call rootfix
/// back with `{"rootfix": choice, "target": id, "severity": …}`; without (a group's custom bot,
/// which cannot carry callbacks) a link, when there is one, opens the page.
pub fn feishu_card(n: &Notification, callbacks: bool) -> Value {
    let mut lines = vec![banner_and_text(n, |b| format!("**{b}**"), &n.text)];
    lines.extend(markdown_lines(n, "- "));
    lines.push(format!("<font color='grey'>{}</font>", footer(n)));
    let mut elements = vec![json!({"tag": "markdown", "content": lines.join("\n").trim().to_string()})];
    match (&n.ask, callbacks) {
        (Some(ask), true) => {
            for b in buttons(ask) {
                elements.push(json!({
                    "tag": "button",
                    "text": {"tag": "plain_text", "content": b.label},
                    "type": if b.primary { "primary" } else { "danger" },
                    "behaviors": [{"type": "callback", "value": {
                        "rootfix": b.choice, "target": b.target, "severity": b.severity,
                    }}],
                }));
            }
        }
        _ => {
            if let Some(link) = &n.link {
                elements.push(json!({
                    "tag": "button",
                    "text": {"tag": "plain_text", "content": "Open in rootfix"},
                    "type": "default",
                    "behaviors": [{"type": "open_url", "default_url": link}],
                }));
            }
        }
    }
    feishu_card_of(&n.title, n.urgent(), elements)
}

/// A card with `title` and `elements`; red when `urgent`.
pub fn feishu_card_of(title: &str, urgent: bool, elements: Vec<Value>) -> Value {
    json!({
        "schema": "2.0",
        "header": {
            "title": {"tag": "plain_text", "content": title},
            "template": if urgent { "red" } else { "blue" },
        },
        "body": {"elements": elements},
    })
}

/// The body of a Feishu app's "send message" call (`im/v1/messages?receive_id_type=chat_id`):
/// the card as a JSON string in `content`, as the API wants it.
pub fn feishu_app_message(n: &Notification, chat_id: &str) -> Value {
    json!({
        "receive_id": chat_id,
        "msg_type": "interactive",
        "content": feishu_card(n, true).to_string(),
    })
}

/// Feishu answers HTTP 200 with `code` (custom bots of old versions: `StatusCode`) and `msg`.
pub(super) fn classify(status: StatusCode, body: &[u8]) -> Outcome {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(code) = answer["code"].as_i64().or_else(|| answer["StatusCode"].as_i64()) else {
        return Outcome::Refused(format!(
            "HTTP {status} without a code, not a Feishu answer: {}",
            snippet(body)
        ));
    };
    let message = answer["msg"]
        .as_str()
        .or_else(|| answer["StatusMessage"].as_str())
        .unwrap_or("");
    match code {
        0 => Outcome::Delivered,
        c if FEISHU_RATE_LIMITED.contains(&c) || FEISHU_TOKEN_INVALID.contains(&c) => Outcome::Retry {
            reason: format!("code {c}: {message}"),
            after: None,
        },
        c => Outcome::Refused(format!("code {c}: {message}")),
    }
}

/// Whether a Feishu answer says the tenant access token must be fetched again.
pub(super) fn token_invalid(body: &[u8]) -> bool {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    answer["code"]
        .as_i64()
        .is_some_and(|c| FEISHU_TOKEN_INVALID.contains(&c))
}
