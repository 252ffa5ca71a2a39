//! The body of a notification in each receiver format (sources in the module doc). Pure.
//!
//! Every chat format shows the same parts: an urgent marker, the title, the text, the facts
//! (incident, action, scope) that are present, a link when there is one, and a footer line
//! `rootfix · <kind> · <time>` (which also satisfies a DingTalk robot's "custom keyword"
//! security setting when the keyword is `rootfix`).

use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::cards::{buttons, teams};
use super::feishu::feishu_card;
use super::paging::{opsgenie, pagerduty};
use super::{Ask, Format, Notification};

/// Slack's limit on a section's or context element's text (characters).
const SLACK_TEXT_MAX: usize = 3000;
/// WeCom's limit on markdown content (bytes).
const WECOM_CONTENT_MAX: usize = 4096;

impl Format {
    /// The JSON body this format posts for `n`. The paging formats and the Feishu app need the
    /// receiver's key or chat too: `paging::pagerduty` and `feishu::feishu_app_message` take them.
    pub fn body(self, n: &Notification) -> Value {
        match self {
            Format::Slack => slack(n),
            Format::DingTalk => dingtalk(n),
            Format::WeCom => wecom(n),
            Format::Json => generic(n),
            Format::Teams => teams(n),
            Format::Feishu => json!({"msg_type": "interactive", "card": feishu_card(n, false)}),
            Format::FeishuApp => feishu_card(n, true),
            Format::PagerDuty => pagerduty(n, ""),
            Format::Opsgenie => opsgenie(n),
            // Sent as a message (notify::email), not a JSON body: the event is what it holds.
            Format::Email => generic(n),
        }
    }

    /// The request's `Content-Type`. DingTalk's documentation asks for the charset explicitly.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::DingTalk | Format::WeCom | Format::Feishu | Format::FeishuApp => {
                "application/json; charset=utf-8"
            }
            _ => "application/json",
        }
    }
}

/// The optional facts that are present, labelled.
pub(super) fn facts(n: &Notification) -> Vec<(&'static str, &str)> {
    [
        ("incident", n.incident.as_deref()),
        ("action", n.action.as_deref()),
        ("scope", n.scope.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.map(|v| (label, v)))
    .collect()
}

pub(super) fn footer(n: &Notification) -> String {
    format!(
        "rootfix · {} · {}",
        n.kind.as_str(),
        n.at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// The kind's banner line (when it has one), then `text`.
pub(super) fn banner_and_text(n: &Notification, banner: impl Fn(&str) -> String, text: &str) -> String {
    match n.kind.banner() {
        Some(b) if text.trim().is_empty() => banner(b),
        Some(b) => format!("{}\n{text}", banner(b)),
        None => text.to_string(),
    }
}

/// The headline then, when there is one, `text` on the next line.
fn headline_and_text(headline: String, text: &str) -> String {
    if text.trim().is_empty() {
        headline
    } else {
        format!("{headline}\n{text}")
    }
}

fn slack(n: &Notification) -> Value {
    let marker = if n.urgent() {
        ":rotating_light: "
    } else if n.kind.banner().is_some() {
        ":mag: "
    } else {
        ""
    };
    let title = slack_escape(&n.title);
    let text = banner_and_text(n, |b| format!("_{b}_"), &slack_escape(&n.text));
    let section = headline_and_text(format!("{marker}*{title}*"), &text);
    let mut context: Vec<String> = facts(n)
        .into_iter()
        .map(|(label, value)| format!("{label} `{}`", slack_escape(value)))
        .collect();
    if let Some(link) = &n.link {
        context.push(format!("<{}|details>", slack_link(link)));
    }
    context.push(footer(n));
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate_chars(&section, SLACK_TEXT_MAX)}}),
        json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": truncate_chars(&context.join(" · "), SLACK_TEXT_MAX)}
        ]}),
    ];
    if let Some(ask) = &n.ask {
        let elements: Vec<Value> = buttons(ask)
            .iter()
            .map(|b| {
                let mut e = json!({
                    "type": "button",
                    "text": {"type": "plain_text", "text": b.label},
                    "action_id": format!("rootfix.{}.{}", b.choice, b.severity.unwrap_or("-")),
                    "value": b.slack_value(),
                    "style": if b.primary { "primary" } else { "danger" },
                });
                if b.choice == "reject" || b.choice == "misfix" {
                    e["confirm"] = json!({
                        "title": {"type": "plain_text", "text": "Are you sure?"},
                        "text": {"type": "plain_text", "text": format!("{} — recorded with your name", b.label)},
                        "confirm": {"type": "plain_text", "text": b.label},
                        "deny": {"type": "plain_text", "text": "Cancel"},
                    });
                }
                e
            })
            .collect();
        blocks.push(json!({"type": "actions", "block_id": "rootfix.ask", "elements": elements}));
    }
    json!({
        "text": truncate_chars(&format!("{marker}{title}"), SLACK_TEXT_MAX),
        "blocks": blocks,
    })
}

/// The message a Slack button's message becomes once decided: the original blocks without the
/// buttons, and a context line saying who decided what.
pub fn slack_decided(original_blocks: &[Value], fallback: &str, decided: &str) -> Value {
    let mut blocks: Vec<Value> = original_blocks
        .iter()
        .filter(|b| b["type"] != "actions")
        .cloned()
        .collect();
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": truncate_chars(&slack_escape(decided), SLACK_TEXT_MAX)}
    ]}));
    json!({"replace_original": true, "text": truncate_chars(fallback, SLACK_TEXT_MAX), "blocks": blocks})
}

/// An answer only the person who clicked sees (Slack's ephemeral response), e.g. why a click
/// was refused.
pub fn slack_ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": truncate_chars(&slack_escape(text), SLACK_TEXT_MAX)})
}

/// The three characters Slack's mrkdwn reserves.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A URL inside `<url|label>`: `|` and `>` would end it early.
fn slack_link(url: &str) -> String {
    url.replace('|', "%7C").replace('>', "%3E").replace('<', "%3C")
}

pub(super) fn markdown_lines(n: &Notification, facts_prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = facts(n)
        .into_iter()
        .map(|(label, value)| format!("{facts_prefix}{label}: `{value}`"))
        .collect();
    if let Some(link) = &n.link {
        lines.push(format!("[details]({link})"));
    }
    lines
}

fn dingtalk(n: &Notification) -> Value {
    let title = if n.urgent() {
        format!("[URGENT] {}", n.title)
    } else if n.kind.banner().is_some() {
        format!("[DIAGNOSIS ONLY] {}", n.title)
    } else {
        n.title.clone()
    };
    let text = banner_and_text(n, |b| format!("**{b}**"), &n.text);
    let mut parts = vec![headline_and_text(format!("### {title}"), &text)];
    let lines = markdown_lines(n, "- ");
    if !lines.is_empty() {
        parts.push(lines.join("\n"));
    }
    parts.push(format!("###### {}", footer(n)));
    // A custom robot cannot call back: a decision it asks for is a button to the page.
    if let (Some(ask), Some(link)) = (&n.ask, &n.link) {
        let label = match ask {
            Ask::Approval(_) => "Approve or reject in rootfix",
            Ask::Confirmation(_) => "Confirm in rootfix",
        };
        return json!({
            "msgtype": "actionCard",
            "actionCard": {"title": title, "text": parts.join("\n\n"), "singleTitle": label, "singleURL": link},
        });
    }
    let mut body = json!({
        "msgtype": "markdown",
        "markdown": {"title": title, "text": parts.join("\n\n")},
    });
    if n.urgent() {
        body["at"] = json!({"isAtAll": true});
    }
    body
}

fn wecom(n: &Notification) -> Value {
    let marker = if n.urgent() {
        "<font color=\"warning\">[URGENT]</font> "
    } else if n.kind.banner().is_some() {
        "<font color=\"comment\">[DIAGNOSIS ONLY]</font> "
    } else {
        ""
    };
    let text = banner_and_text(n, |b| format!("**{b}**"), &n.text);
    let mut lines = vec![headline_and_text(format!("## {marker}{}", n.title), &text)];
    lines.extend(markdown_lines(n, "> "));
    lines.push(format!("<font color=\"comment\">{}</font>", footer(n)));
    json!({
        "msgtype": "markdown",
        "markdown": {"content": truncate_bytes(&lines.join("\n"), WECOM_CONTENT_MAX)},
    })
}

pub(super) fn generic(n: &Notification) -> Value {
    json!({
        "kind": n.kind.as_str(),
        "urgent": n.urgent(),
        "incident": n.incident,
        "action": n.action,
        "scope": n.scope,
        "title": n.title,
        "text": n.text,
        "link": n.link,
        "at": n.at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    })
}

/// At most `max` characters, the last being `…` when cut.
pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if text.chars().count() > max => format!("{}…", &text[..cut]),
        _ => text.to_string(),
    }
}

/// At most `max` bytes (cut at a character boundary), the last being `…` when cut.
fn truncate_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let ellipsis = "…";
    let mut cut = max.saturating_sub(ellipsis.len());
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ellipsis}", &text[..cut])
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::notify::NotificationKind;

    fn at() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7)
            .single()
            .expect("a valid time")
    }

    fn succeeded() -> Notification {
        Notification {
            kind: NotificationKind::FixSucceeded,
            incident: Some("inc-42".into()),
            action: Some("restart-nginx".into()),
            scope: Some("web-1".into()),
            title: "nginx restarted on web-1".into(),
            text: "verify held: 5xx rate < 1% & p99 > 0".into(),
            link: Some("https://rootfix.example/incidents/inc-42".into()),
            ask: None,
            at: at(),
        }
    }

    fn rollback_failed() -> Notification {
        Notification {
            kind: NotificationKind::RollbackFailed,
            incident: Some("inc-7".into()),
            action: None,
            scope: None,
            title: "rollback of scale-up failed".into(),
            text: String::new(),
            link: None,
            ask: None,
            at: at(),
        }
    }

    #[test]
    fn slack_body_is_text_and_mrkdwn_blocks_with_escapes() {
        assert_eq!(
            Format::Slack.body(&succeeded()),
            json!({
                "text": "nginx restarted on web-1",
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn",
                        "text": "*nginx restarted on web-1*\nverify held: 5xx rate &lt; 1% &amp; p99 &gt; 0"}},
                    {"type": "context", "elements": [{"type": "mrkdwn",
                        "text": "incident `inc-42` · action `restart-nginx` · scope `web-1` · <https://rootfix.example/incidents/inc-42|details> · rootfix · fix_succeeded · 2025-03-04T05:06:07Z"}]},
                ],
            })
        );
        assert_eq!(
            Format::Slack.body(&rollback_failed()),
            json!({
                "text": ":rotating_light: rollback of scale-up failed",
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn",
                        "text": ":rotating_light: *rollback of scale-up failed*"}},
                    {"type": "context", "elements": [{"type": "mrkdwn",
                        "text": "incident `inc-7` · rootfix · rollback_failed · 2025-03-04T05:06:07Z"}]},
                ],
            })
        );
    }

    #[test]
    fn dingtalk_body_is_markdown_and_urgent_ones_mention_everyone() {
        assert_eq!(
            Format::DingTalk.body(&succeeded()),
            json!({
                "msgtype": "markdown",
                "markdown": {
                    "title": "nginx restarted on web-1",
                    "text": "### nginx restarted on web-1\nverify held: 5xx rate < 1% & p99 > 0\n\n- incident: `inc-42`\n- action: `restart-nginx`\n- scope: `web-1`\n[details](https://rootfix.example/incidents/inc-42)\n\n###### rootfix · fix_succeeded · 2025-03-04T05:06:07Z",
                },
            })
        );
        assert_eq!(
            Format::DingTalk.body(&rollback_failed()),
            json!({
                "msgtype": "markdown",
                "markdown": {
                    "title": "[URGENT] rollback of scale-up failed",
                    "text": "### [URGENT] rollback of scale-up failed\n\n- incident: `inc-7`\n\n###### rootfix · rollback_failed · 2025-03-04T05:06:07Z",
                },
                "at": {"isAtAll": true},
            })
        );
    }

    #[test]
    fn wecom_body_is_markdown_content() {
        assert_eq!(
            Format::WeCom.body(&succeeded()),
            json!({
                "msgtype": "markdown",
                "markdown": {"content": "## nginx restarted on web-1\nverify held: 5xx rate < 1% & p99 > 0\n> incident: `inc-42`\n> action: `restart-nginx`\n> scope: `web-1`\n[details](https://rootfix.example/incidents/inc-42)\n<font color=\"comment\">rootfix · fix_succeeded · 2025-03-04T05:06:07Z</font>"},
            })
        );
        assert_eq!(
            Format::WeCom.body(&rollback_failed()),
            json!({
                "msgtype": "markdown",
                "markdown": {"content": "## <font color=\"warning\">[URGENT]</font> rollback of scale-up failed\n> incident: `inc-7`\n<font color=\"comment\">rootfix · rollback_failed · 2025-03-04T05:06:07Z</font>"},
            })
        );
    }

    #[test]
    fn json_body_is_the_event() {
        assert_eq!(
            Format::Json.body(&succeeded()),
            json!({
                "kind": "fix_succeeded",
                "urgent": false,
                "incident": "inc-42",
                "action": "restart-nginx",
                "scope": "web-1",
                "title": "nginx restarted on web-1",
                "text": "verify held: 5xx rate < 1% & p99 > 0",
                "link": "https://rootfix.example/incidents/inc-42",
                "at": "2025-03-04T05:06:07Z",
            })
        );
        assert_eq!(
            Format::Json.body(&rollback_failed()),
            json!({
                "kind": "rollback_failed",
                "urgent": true,
                "incident": "inc-7",
                "action": null,
                "scope": null,
                "title": "rollback of scale-up failed",
                "text": "",
                "link": null,
                "at": "2025-03-04T05:06:07Z",
            })
        );
    }

    #[test]
    fn a_diagnosis_only_says_so_in_every_format() {
        let n = Notification {
            kind: NotificationKind::DiagnosisOnly,
            incident: Some("inc-9".into()),
            action: Some("restart-jvm-pod".into()),
            scope: None,
            title: "Diagnosed, cannot act: restart-jvm-pod on OrderServiceTimeout".into(),
            text: "cannot act: restart-jvm-pod needs the kubernetes runner".into(),
            link: None,
            ask: None,
            at: at(),
        };
        assert_eq!(
            Format::Slack.body(&n)["blocks"][0]["text"]["text"],
            ":mag: *Diagnosed, cannot act: restart-jvm-pod on OrderServiceTimeout*\n_diagnosed; rootfix cannot act here_\ncannot act: restart-jvm-pod needs the kubernetes runner"
        );
        assert_eq!(
            Format::DingTalk.body(&n),
            json!({
                "msgtype": "markdown",
                "markdown": {
                    "title": "[DIAGNOSIS ONLY] Diagnosed, cannot act: restart-jvm-pod on OrderServiceTimeout",
                    "text": "### [DIAGNOSIS ONLY] Diagnosed, cannot act: restart-jvm-pod on OrderServiceTimeout\n**diagnosed; rootfix cannot act here**\ncannot act: restart-jvm-pod needs the kubernetes runner\n\n- incident: `inc-9`\n- action: `restart-jvm-pod`\n\n###### rootfix · diagnosis_only · 2025-03-04T05:06:07Z",
                },
            })
        );
        assert_eq!(
            Format::WeCom.body(&n)["markdown"]["content"],
            "## <font color=\"comment\">[DIAGNOSIS ONLY]</font> Diagnosed, cannot act: restart-jvm-pod on OrderServiceTimeout\n**diagnosed; rootfix cannot act here**\ncannot act: restart-jvm-pod needs the kubernetes runner\n> incident: `inc-9`\n> action: `restart-jvm-pod`\n<font color=\"comment\">rootfix · diagnosis_only · 2025-03-04T05:06:07Z</font>"
        );
        let generic = Format::Json.body(&n);
        assert_eq!(generic["kind"], "diagnosis_only");
        assert_eq!(generic["urgent"], false);
    }

    #[test]
    fn long_texts_are_cut_to_each_receivers_limit() {
        let mut n = succeeded();
        n.text = "é".repeat(5000);
        let wecom = Format::WeCom.body(&n);
        let content = wecom["markdown"]["content"].as_str().unwrap_or_default();
        assert!(content.len() <= WECOM_CONTENT_MAX, "{}", content.len());
        assert!(content.ends_with('…'));
        let slack = Format::Slack.body(&n);
        let section = slack["blocks"][0]["text"]["text"].as_str().unwrap_or_default();
        assert_eq!(section.chars().count(), SLACK_TEXT_MAX);
        assert!(section.ends_with('…'));
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_bytes("abc", 3), "abc");
    }

    #[test]
    fn an_approval_in_slack_has_approve_and_reject_buttons_and_its_update_drops_them() {
        let mut n = succeeded();
        n.kind = NotificationKind::ApprovalRequested;
        n.ask = Some(Ask::Approval("apr-7".into()));
        let body = Format::Slack.body(&n);
        let actions = &body["blocks"][2];
        assert_eq!(actions["type"], "actions");
        assert_eq!(actions["elements"][0]["action_id"], "rootfix.approve.-");
        assert_eq!(actions["elements"][0]["value"], "apr-7");
        assert_eq!(actions["elements"][0]["style"], "primary");
        assert_eq!(actions["elements"][1]["action_id"], "rootfix.reject.-");
        assert!(
            actions["elements"][1]["confirm"].is_object(),
            "a reject asks first"
        );
        let blocks = body["blocks"].as_array().cloned().unwrap_or_default();
        let update = slack_decided(&blocks, "t", "approved by alice <x>");
        assert_eq!(update["replace_original"], true);
        let kept = update["blocks"].as_array().cloned().unwrap_or_default();
        assert_eq!(kept.len(), 3);
        assert!(kept.iter().all(|b| b["type"] != "actions"));
        assert_eq!(kept[2]["elements"][0]["text"], "approved by alice &lt;x&gt;");
        let mut confirm = succeeded();
        confirm.ask = Some(Ask::Confirmation("inc-42".into()));
        let values: Vec<Value> = Format::Slack.body(&confirm)["blocks"][2]["elements"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|e| e["value"].clone())
            .collect();
        assert_eq!(
            values,
            [
                json!("inc-42"),
                json!("inc-42 P1"),
                json!("inc-42 P2"),
                json!("inc-42 P3")
            ]
        );
    }

    #[test]
    fn a_dingtalk_robot_asks_with_a_button_to_the_page() {
        let mut n = succeeded();
        n.ask = Some(Ask::Approval("apr-1".into()));
        let body = Format::DingTalk.body(&n);
        assert_eq!(body["msgtype"], "actionCard");
        assert_eq!(body["actionCard"]["singleTitle"], "Approve or reject in rootfix");
        assert_eq!(
            body["actionCard"]["singleURL"],
            "https://rootfix.example/incidents/inc-42"
        );
        n.link = None;
        assert_eq!(
            Format::DingTalk.body(&n)["msgtype"],
            "markdown",
            "no page to link to"
        );
    }

    #[test]
    fn slack_links_cannot_break_out_of_their_brackets() {
        let mut n = succeeded();
        n.link = Some("https://x.example/a|b>c".into());
        let body = Format::Slack.body(&n);
        let context = body["blocks"][1]["elements"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(
            context.contains("<https://x.example/a%7Cb%3Ec|details>"),
            "{context}"
        );
    }
}
