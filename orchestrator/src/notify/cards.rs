//! The parts of a message a person acts on: the buttons of an [`Ask`], and the Microsoft Teams
//! card (whose only action is a link, since a Workflows card cannot call a server back). Pure.

use serde_json::{Value, json};

use super::Ask;
use super::Notification;
use super::format::{facts, footer};

/// A button a chat message shows for its [`Ask`]: `choice` is what the callback names
/// (`approve`, `reject`, `correct`, `misfix`), `target` the approval or incident, `severity` a
/// misfix's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub label: &'static str,
    pub choice: &'static str,
    pub target: String,
    pub severity: Option<&'static str>,
    /// Drawn as the safe (primary) or the risky (danger) choice.
    pub primary: bool,
}

impl Button {
    /// The value a Slack button carries: the target, then the severity after a space.
    pub fn slack_value(&self) -> String {
        match self.severity {
            Some(s) => format!("{} {s}", self.target),
            None => self.target.clone(),
        }
    }
}

/// The buttons for `ask`, in the order they are drawn.
pub fn buttons(ask: &Ask) -> Vec<Button> {
    let button = |label, choice, target: &String, severity, primary| Button {
        label,
        choice,
        target: target.clone(),
        severity,
        primary,
    };
    match ask {
        Ask::Approval(id) => vec![
            button("Approve", "approve", id, None, true),
            button("Reject", "reject", id, None, false),
        ],
        Ask::Confirmation(incident) => vec![
            button("Correct", "correct", incident, None, true),
            button("Misfix P1", "misfix", incident, Some("P1"), false),
            button("Misfix P2", "misfix", incident, Some("P2"), false),
            button("Misfix P3", "misfix", incident, Some("P3"), false),
        ],
    }
}

/// Microsoft Teams, through a Workflows webhook ("Post to a channel when a webhook request is
/// received"): one Adaptive Card (schema 1.4) as a message attachment. Workflows cards cannot
/// call a server back, so a decision is a link to the page.
pub(super) fn teams(n: &Notification) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": if n.urgent() { format!("URGENT: {}", n.title) } else { n.title.clone() },
        "weight": "Bolder",
        "size": "Medium",
        "wrap": true,
        "color": if n.urgent() { "Attention" } else { "Default" },
    })];
    if let Some(banner) = n.kind.banner() {
        body.push(json!({"type": "TextBlock", "text": banner, "wrap": true, "color": "Warning"}));
    }
    if !n.text.trim().is_empty() {
        body.push(json!({"type": "TextBlock", "text": n.text, "wrap": true}));
    }
    let facts: Vec<Value> = facts(n)
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    if !facts.is_empty() {
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    body.push(
        json!({"type": "TextBlock", "text": footer(n), "isSubtle": true, "size": "Small", "wrap": true}),
    );
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if let Some(link) = &n.link {
        let title = match n.ask {
            Some(Ask::Approval(_)) => "Approve or reject in rootfix",
            Some(Ask::Confirmation(_)) => "Confirm in rootfix",
            None => "Open in rootfix",
        };
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": title, "url": link}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}
