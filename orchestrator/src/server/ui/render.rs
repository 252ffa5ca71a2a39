//! The page's HTML. Every value that comes from an alert, a param, a token name or an error goes
//! through [`escape`] (ids in URLs through [`seg`] first); nothing else builds markup. No script
//! anywhere: forms post, the server redirects.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::session::Flash;
use crate::audit::KillSwitch;
use crate::autonomy::approval::{Approval, ApprovalState};
use crate::autonomy::controller::StageReport;
use crate::engine::NodeOutcome;
use crate::fix::journal::{FixOutcome, JournalEntry, JournalEvent};
use crate::incident::{Incident, IncidentFix, IncidentState, Verdict, seconds};
use crate::runner::PhaseExit;
use crate::server::auth::Identity;

/// The text made safe for HTML text and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Characters kept in a URL path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An id as one URL path segment (for a `Location` header).
pub fn path_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// An id as one URL path segment, escaped for an attribute.
pub fn seg(s: &str) -> String {
    escape(&path_segment(s))
}

/// Where a form sends the browser back to: the incident page it was posted from (`back` is that
/// incident's id), else the dashboard. Always a path of this page, whatever `back` holds.
pub fn back_to(back: &str) -> String {
    let back = back.trim();
    if back.is_empty() {
        "/ui/".into()
    } else {
        format!("/ui/incidents/{}", path_segment(back))
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_string(), |r| format!("{:.1} %", r * 100.0))
}

fn hours(h: f64) -> String {
    if h >= 48.0 {
        format!("{:.1} d", h / 24.0)
    } else {
        format!("{h:.1} h")
    }
}

/// Longest value shown whole in a table cell; a longer one is cut, whole in its `title`.
const CLIP: usize = 64;

/// `text` escaped; past `max` characters cut with `…`, the whole text in a `title` (hover).
fn clipped(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return escape(text);
    }
    let head: String = text.chars().take(max).collect();
    format!(
        "<span class=\"clip\" title=\"{}\">{}…</span>",
        escape(text),
        escape(&head)
    )
}

fn params(p: &std::collections::BTreeMap<String, String>) -> String {
    if p.is_empty() {
        return "—".into();
    }
    let items: Vec<String> = p
        .iter()
        .map(|(k, v)| format!("<code>{}={}</code>", escape(k), clipped(v, CLIP)))
        .collect();
    items.join(" ")
}

/// What became of a fix: its outcome, which gate refused it and why, or where it stands.
fn fix_status(i: &Incident, f: &IncidentFix) -> String {
    match &f.outcome {
        Some(outcome) => outcome.to_string(),
        None => f.refusal().unwrap_or_else(|| {
            match i.state {
                IncidentState::AwaitingApproval => "waits for approval",
                IncidentState::Fixing => "running",
                _ => "not run",
            }
            .into()
        }),
    }
}

/// An SRE's verdict in a line: `misfix (P2) by alice at …: comment`.
fn verdict_text(v: &Verdict) -> String {
    format!(
        "{}{} by {} at {}{}",
        if v.correct { "correct" } else { "misfix" },
        v.severity.map_or(String::new(), |s| format!(" ({})", s.as_str())),
        v.by,
        time(v.at),
        if v.comment.is_empty() {
            String::new()
        } else {
            format!(": {}", v.comment)
        }
    )
}

/// How long the incident's (last) fix ran: from its `fix started` to its `fix finished`.
pub fn fix_duration(journal: &[JournalEntry]) -> Option<chrono::TimeDelta> {
    let finished = journal
        .iter()
        .rev()
        .find(|e| matches!(e.event, JournalEvent::FixFinished { .. }))?;
    let started = journal
        .iter()
        .find(|e| e.fix == finished.fix && matches!(e.event, JournalEvent::FixStarted { .. }))?;
    let took = finished.at - started.at;
    (took >= chrono::TimeDelta::zero()).then_some(took)
}

/// "resolved 23.4s after the alert started (the fix took 3.1s)", once resolved.
pub fn resolve_text(i: &Incident, journal: &[JournalEntry]) -> Option<String> {
    let took = i.time_to_resolve()?;
    let mut text = format!("resolved {} after the alert started", seconds(took));
    if let Some(fix) = fix_duration(journal) {
        let _ = write!(text, " (the fix took {})", seconds(fix));
    }
    Some(text)
}

fn exit_text(e: &PhaseExit) -> String {
    match e {
        PhaseExit::Success => "0 (success)".into(),
        PhaseExit::AlreadyHealthy => "3 (already healthy)".into(),
        PhaseExit::Failed { code, reason } => match code {
            Some(c) => format!("{c} (failed: {reason})"),
            None => format!("failed: {reason}"),
        },
        PhaseExit::TimedOut { after_ms } => format!("timed out after {after_ms} ms"),
    }
}

/// The last `max` characters of a phase's output.
fn excerpt(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        s.to_string()
    } else {
        let tail: String = s.chars().skip(count - max).collect();
        format!("…{tail}")
    }
}

/// Whether an incident's fix can take an SRE's verdict now: as `Autonomy::confirm` decides (a
/// fix that ran and changed something, with no verdict yet; a second one is a 409).
pub fn can_confirm(i: &Incident) -> bool {
    i.fix.as_ref().is_some_and(|f| {
        f.verdict.is_none()
            && matches!(
                &f.outcome,
                Some(o) if !matches!(o, FixOutcome::Refused(_) | FixOutcome::DryRun(_))
            )
    })
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}header .who{margin-left:auto}
header form{display:inline}main{padding:1em 1.2em;max-width:1400px}
h2{border-bottom:1px solid #ccd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92em}
th,td{border:1px solid #dde;padding:.35em .5em;text-align:left;vertical-align:top}
code,pre,.why,.verdict{overflow-wrap:anywhere}.clip{cursor:help;border-bottom:1px dotted #889}
#summary th,#fix th{width:11em}#summary td,#fix td,#labels td,#timeline td:nth-child(3),#nodes td,#remedies td:first-child,
#remedies td:nth-child(6),#incidents td:nth-child(5),#incidents td:nth-child(6),#approvals td:nth-child(5),
#approval td:nth-child(5),#journal td:nth-child(7){overflow-wrap:anywhere}
#timeline td:first-child,#journal td:first-child,#incidents td:last-child,td.expires{white-space:nowrap}
th{background:#eef0f4}code,pre{font-family:ui-monospace,monospace;font-size:.9em}
pre{white-space:pre-wrap;overflow-wrap:anywhere;max-height:14em;overflow:auto;background:#f1f2f5;padding:.4em;margin:.2em 0}
.flash{padding:.6em 1em;border-radius:4px;margin:.5em 0}.flash.ok{background:#dff3e3;border:1px solid #8c8}
.flash.error,.banner{background:#fde2e1;border:1px solid #d88}.banner{padding:.8em 1em;font-weight:600}
form.inline{display:inline-flex;gap:.3em;margin:.1em 0}.empty{color:#667;font-style:italic}
button{cursor:pointer}.hit{color:#176b2c;font-weight:600}.miss{color:#667}.error{color:#a11}
.pruned{color:#999}.unmet{color:#a11}.met{color:#176b2c;font-weight:600}
.why{color:#7a4b00}.verdict{font-weight:600}p.verdict{background:#fff;border:1px solid #ccd;padding:.6em 1em}
.resolved{color:#176b2c;font-weight:600}form.reject input[name=reason]{width:9em}
";

/// The whole document around `body`.
pub fn layout(title: &str, who: Option<(&Identity, &str)>, flash: Option<&Flash>, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · rootfix</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/ui/\">rootfix</a>",
        escape(title)
    );
    if let Some((identity, csrf)) = who {
        let _ = write!(
            out,
            "<span class=\"who\" id=\"who\">{} ({})</span>\
             <form method=\"post\" action=\"/ui/logout\" class=\"logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
            escape(&identity.name),
            identity.role.as_str(),
            escape(csrf)
        );
    }
    out.push_str("</header><main>");
    if let Some(f) = flash {
        let _ = write!(
            out,
            "<p id=\"flash\" class=\"flash {}\" role=\"status\">{}</p>",
            if f.ok { "ok" } else { "error" },
            escape(&f.text)
        );
    }
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// The sign-in form, with an error after a refused token.
pub fn login_page(error: Option<&str>) -> String {
    let mut body = String::from("<h1>Sign in</h1>");
    if let Some(e) = error {
        let _ = write!(
            body,
            "<p id=\"login-error\" class=\"flash error\">{}</p>",
            escape(e)
        );
    }
    body.push_str(
        "<form method=\"post\" action=\"/ui/login\" id=\"login\">\
         <label for=\"token\">API token</label> \
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required autofocus> \
         <button type=\"submit\">Sign in</button></form>\
         <p>Use a token from rootfix's configuration: a <code>viewer</code> sees, an <code>approver</code> \
         or <code>admin</code> also decides.</p>",
    );
    layout("Sign in", None, None, &body)
}

/// A refusal or failure as a page.
pub fn error_page(status: u16, message: &str, who: Option<(&Identity, &str)>) -> String {
    let body = format!(
        "<h1>Error {status}</h1><p id=\"error\" class=\"flash error\">{}</p><p><a href=\"/ui/\">Back to the dashboard</a></p>",
        escape(message)
    );
    layout(&format!("Error {status}"), who, None, &body)
}

/// What the dashboard shows.
pub struct Dashboard {
    pub killswitch: Option<KillSwitch>,
    pub approvals: Vec<Approval>,
    pub incidents: Vec<Incident>,
    /// The stages, or why they cannot be shown.
    pub stages: Result<Vec<StageReport>, String>,
    pub can_decide: bool,
}

fn csrf_field(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(csrf))
}

pub fn dashboard(d: &Dashboard, who: (&Identity, &str), flash: Option<&Flash>) -> String {
    let csrf = who.1;
    let mut b = String::new();
    if let Some(k) = &d.killswitch {
        let _ = write!(
            b,
            "<p id=\"killswitch\" class=\"banner\">Kill switch ON since {} by {}: {} — no fix starts.</p>",
            time(k.since),
            escape(&k.by),
            escape(&k.reason)
        );
    }

    let _ = write!(b, "<h2>Pending approvals ({})</h2>", d.approvals.len());
    if d.approvals.is_empty() {
        b.push_str("<p class=\"empty\" id=\"no-approvals\">Nothing waits for approval.</p>");
    } else {
        approvals_table(&mut b, "approvals", &d.approvals, d.can_decide, csrf, None);
    }

    let _ = write!(b, "<h2>Open incidents ({})</h2>", d.incidents.len());
    if d.incidents.is_empty() {
        b.push_str("<p class=\"empty\" id=\"no-incidents\">No open incident.</p>");
    } else {
        b.push_str(
            "<table id=\"incidents\"><thead><tr><th>Incident</th><th>State</th><th>Alert</th><th>Service</th>\
             <th>Diagnosis path</th><th>Fix</th><th>Updated</th></tr></thead><tbody>",
        );
        for i in &d.incidents {
            let path = i
                .diagnosis
                .as_ref()
                .map(|d| d.with_outcome(NodeOutcome::Hit).join(" → "))
                .unwrap_or_default();
            let fix = fix_cell(i);
            let _ = write!(
                b,
                "<tr class=\"incident\" data-id=\"{id}\" data-state=\"{state}\"><td><a href=\"/ui/incidents/{s}\">{id}</a></td>\
                 <td>{state}</td><td>{alert}</td><td>{service}</td><td>{path}</td><td>{fix}</td><td>{updated}</td></tr>",
                id = escape(&i.id),
                s = seg(&i.id),
                state = i.state.as_str(),
                alert = escape(&i.alertname),
                service = escape(i.service.as_deref().unwrap_or("—")),
                path = escape(&path),
                updated = time(i.updated_at),
            );
        }
        b.push_str("</tbody></table>");
    }

    b.push_str("<h2>Stages</h2>");
    match &d.stages {
        Err(why) => {
            let _ = write!(b, "<p class=\"empty\" id=\"no-stages\">{}</p>", escape(why));
        }
        Ok(stages) if stages.is_empty() => {
            b.push_str("<p class=\"empty\" id=\"no-stages\">No action has run in any scope yet.</p>");
        }
        Ok(stages) => {
            b.push_str(
                "<table id=\"stages\"><thead><tr><th>Action</th><th>Scope</th><th>Stage</th><th>Cap</th>\
                 <th>In stage</th><th>Samples</th><th>Success</th><th>P0 misfixes</th><th>Gate</th>\
                 <th>Proposal</th></tr></thead><tbody>",
            );
            for r in stages {
                let g = &r.gate;
                let gate = if g.met {
                    format!(
                        "<span class=\"met\">met</span>{}",
                        g.next.map_or(String::new(), |n| format!(" → {}", n.as_str()))
                    )
                } else if g.unmet.is_empty() {
                    "<span class=\"empty\">—</span>".into()
                } else {
                    let items: Vec<String> = g
                        .unmet
                        .iter()
                        .map(|u| format!("<li>{}</li>", escape(u)))
                        .collect();
                    format!("<ul class=\"unmet\">{}</ul>", items.concat())
                };
                let proposal = r.entry.state.proposal.as_ref().map_or_else(
                    || "—".to_string(),
                    |p| format!("→ {} (since {})", p.to.as_str(), time(p.at)),
                );
                let _ = write!(
                    b,
                    "<tr class=\"stage\" data-action=\"{action}\" data-scope=\"{scope}\"><td>{action}</td><td>{scope}</td>\
                     <td>{stage}</td><td>{cap}</td><td>{inst}</td><td>{samples}</td><td>{rate}</td><td>{p0}</td>\
                     <td>{gate}</td><td>{proposal}</td></tr>",
                    action = escape(&r.entry.action),
                    scope = escape(&r.entry.scope),
                    stage = r.entry.state.stage.as_str(),
                    cap = r.cap.as_str(),
                    inst = hours(g.hours_in_stage),
                    samples = g.samples,
                    rate = percent(g.success_rate),
                    p0 = g.p0_misfixes,
                );
            }
            b.push_str("</tbody></table>");
        }
    }
    layout("Dashboard", Some(who), flash, &b)
}

/// The dashboard's Fix cell: action, stage and what became of the fix (or why there is none),
/// the verdict once given, else a link to the confirm form when the fix waits for one.
fn fix_cell(i: &Incident) -> String {
    let why = i
        .why_no_fix()
        .map(|w| format!("<span class=\"why\">{}</span>", escape(&w)));
    let Some(f) = &i.fix else {
        return why.unwrap_or_else(|| "—".into());
    };
    let mut cell = format!(
        "{} · {} · {}",
        escape(&f.action),
        f.stage.map_or("—", |s| s.as_str()),
        why.unwrap_or_else(|| escape(&fix_status(i, f)))
    );
    if let Some(v) = &f.verdict {
        let _ = write!(
            cell,
            "<br><span class=\"verdict\">verdict: {}</span>",
            escape(&verdict_text(v))
        );
    } else if can_confirm(i) {
        let _ = write!(
            cell,
            "<br><a class=\"to-confirm\" href=\"/ui/incidents/{}#confirm\">confirm the fix</a>",
            seg(&i.id)
        );
    }
    cell
}

/// Pending approvals as a table (`id`), with the Approve and Reject forms for an approver. The
/// forms carry `back` (an incident id) when posted from that incident's page, so the answer
/// returns there.
fn approvals_table(
    b: &mut String,
    id: &str,
    approvals: &[Approval],
    can_decide: bool,
    csrf: &str,
    back: Option<&str>,
) {
    let _ = write!(
        b,
        "<table id=\"{}\"><thead><tr><th>Incident</th><th>Action</th><th>Scope</th><th>Params</th>\
         <th>Summary</th><th>Confidence</th><th>Expires</th><th>Decide</th></tr></thead><tbody>",
        escape(id)
    );
    let back = back.map_or(String::new(), |inc| {
        format!("<input type=\"hidden\" name=\"back\" value=\"{}\">", escape(inc))
    });
    for a in approvals {
        let _ = write!(
            b,
            "<tr class=\"approval\" data-id=\"{id}\" data-incident=\"{inc}\">\
             <td><a href=\"/ui/incidents/{inc_seg}\">{inc}</a></td><td>{action}</td><td>{scope}</td>\
             <td>{params}</td><td>{summary}</td><td class=\"confidence\">{conf:.2} / {thr:.2}</td>\
             <td class=\"expires\">{expires}</td><td>",
            id = escape(&a.id),
            inc = escape(&a.incident),
            inc_seg = seg(&a.incident),
            action = escape(&a.action),
            scope = escape(&a.scope),
            params = params(&a.params),
            summary = escape(&a.summary),
            conf = a.confidence,
            thr = a.threshold,
            expires = time(a.expires_at),
        );
        if can_decide {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/ui/approvals/{s}/approve\" class=\"approve inline\">{c}{back}\
                 <button type=\"submit\">Approve</button></form> \
                 <form method=\"post\" action=\"/ui/approvals/{s}/reject\" class=\"reject inline\">{c}{back}\
                 <input type=\"text\" name=\"reason\" placeholder=\"reason\" required aria-label=\"reason\">\
                 <button type=\"submit\">Reject</button></form>",
                s = seg(&a.id),
                c = csrf_field(csrf),
            );
        } else {
            b.push_str("<span class=\"empty\">approver role needed</span>");
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table>");
}

/// The incident page: its alert, timeline, diagnosis, remedies, fix and journal, and the confirm
/// form when the fix waits for a verdict.
pub fn incident(
    i: &Incident,
    journal: &[JournalEntry],
    approval: Option<&Approval>,
    can_decide: bool,
    who: (&Identity, &str),
    flash: Option<&Flash>,
) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1 id=\"incident\" data-id=\"{id}\" data-state=\"{state}\">Incident {id}</h1>\
         <table id=\"summary\"><tbody>\
         <tr><th>State</th><td id=\"state\">{state}</td></tr>\
         <tr><th>Alert</th><td>{alert}</td></tr><tr><th>Service</th><td>{service}</td></tr>\
         <tr><th>Playbook</th><td>{playbook}</td></tr><tr><th>Fingerprint</th><td><code>{fp}</code></td></tr>\
         <tr><th>Firings</th><td>{firings}</td></tr><tr><th>Created</th><td>{created}</td></tr>\
         <tr><th>Updated</th><td>{updated}</td></tr><tr><th>Resolved</th><td>{resolved}</td></tr>\
         </tbody></table>",
        id = escape(&i.id),
        state = i.state.as_str(),
        alert = escape(&i.alertname),
        service = escape(i.service.as_deref().unwrap_or("—")),
        playbook = escape(i.playbook.as_deref().unwrap_or("—")),
        fp = escape(&i.fingerprint),
        firings = i.firings,
        created = time(i.created_at),
        updated = time(i.updated_at),
        resolved = i.resolved_at.map_or_else(|| "—".to_string(), time),
    );
    if let Some(text) = resolve_text(i, journal) {
        let _ = write!(
            b,
            "<p id=\"time-to-resolve\" class=\"resolved\">{}</p>",
            escape(&text)
        );
    }
    if let Some(why) = i.why_no_fix() {
        let _ = write!(b, "<p id=\"why-no-fix\" class=\"why\">{}</p>", escape(&why));
    }
    match approval {
        Some(a) if a.state == ApprovalState::Pending => {
            b.push_str("<h2>Waiting for approval</h2>");
            approvals_table(
                &mut b,
                "approval",
                std::slice::from_ref(a),
                can_decide,
                who.1,
                Some(&i.id),
            );
        }
        Some(a) => {
            let _ = write!(
                b,
                "<p id=\"approval-decided\">Approval {}: {}{}{}</p>",
                escape(&a.id),
                a.state.as_str(),
                match (&a.decided_by, a.decided_at) {
                    (Some(by), Some(at)) => format!(" by {} at {}", escape(by), time(at)),
                    (Some(by), None) => format!(" by {}", escape(by)),
                    _ => String::new(),
                },
                a.reason
                    .as_ref()
                    .map_or(String::new(), |r| format!(": {}", escape(r)))
            );
        }
        None => {}
    }

    b.push_str(
        "<h2>Alert</h2><table id=\"labels\"><thead><tr><th>Label</th><th>Value</th></tr></thead><tbody>",
    );
    for (k, v) in &i.alert.labels {
        let _ = write!(
            b,
            "<tr class=\"label\"><td>{}</td><td>{}</td></tr>",
            escape(k),
            escape(v)
        );
    }
    for (k, v) in &i.alert.annotations {
        let _ = write!(
            b,
            "<tr class=\"annotation\"><td>{} <small>(annotation)</small></td><td>{}</td></tr>",
            escape(k),
            escape(v)
        );
    }
    b.push_str("</tbody></table>");

    b.push_str("<h2>Timeline</h2><table id=\"timeline\"><thead><tr><th>At</th><th>Kind</th><th>Message</th></tr></thead><tbody>");
    for t in &i.timeline {
        let _ = write!(
            b,
            "<tr class=\"event\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            time(t.at),
            escape(&t.kind),
            escape(&t.message)
        );
    }
    b.push_str("</tbody></table>");

    b.push_str("<h2>Diagnosis</h2>");
    match &i.diagnosis {
        None => b.push_str("<p class=\"empty\">Not diagnosed.</p>"),
        Some(d) => {
            let _ = write!(
                b,
                "<p id=\"path\">Path: {}</p><table id=\"nodes\"><thead><tr><th>Node</th><th>Outcome</th><th>Detail</th>\
                 <th>Evidence read</th></tr></thead><tbody>",
                escape(&d.with_outcome(NodeOutcome::Hit).join(" → "))
            );
            for n in &d.nodes {
                let reads: Vec<String> = n
                    .reads
                    .iter()
                    .map(|(k, v)| format!("<code>{}={}</code>", escape(k), escape(&v.to_string())))
                    .collect();
                let _ = write!(
                    b,
                    "<tr class=\"node {o}\" data-id=\"{id}\"><td style=\"padding-left:{pad}em\">{id}</td>\
                     <td class=\"{o}\">{o}</td><td>{detail}</td><td>{reads}</td></tr>",
                    o = n.outcome.as_str(),
                    id = escape(&n.id),
                    pad = 0.5 + n.depth as f64,
                    detail = escape(n.detail.as_deref().unwrap_or("")),
                    reads = reads.join(" "),
                );
            }
            b.push_str("</tbody></table>");
            b.push_str("<h3>Remedies</h3>");
            if d.remedies.is_empty() {
                b.push_str("<p class=\"empty\">No remedy leaf was reached.</p>");
            } else {
                b.push_str(
                    "<table id=\"remedies\"><thead><tr><th>Node</th><th>Action</th><th>Params</th><th>Score</th>\
                     <th>Decision</th><th>Signals</th></tr></thead><tbody>",
                );
                for r in &d.remedies {
                    let decision = match &r.decision {
                        crate::engine::diagnosis::Decision::Act => "act".to_string(),
                        crate::engine::diagnosis::Decision::NotifyOnly => "notify only".to_string(),
                        crate::engine::diagnosis::Decision::Invalid(why) => format!("invalid: {why}"),
                    };
                    let signals: Vec<String> = r
                        .signals
                        .iter()
                        .map(|s| {
                            format!(
                                "<li>{} {} (weight {:.2}){}</li>",
                                if s.held { "✔" } else { "✘" },
                                escape(s.description.as_deref().unwrap_or(&s.when)),
                                s.weight,
                                s.error
                                    .as_ref()
                                    .map_or(String::new(), |e| format!(" — error: {}", escape(e)))
                            )
                        })
                        .collect();
                    let _ = write!(
                        b,
                        "<tr class=\"remedy\"><td>{}</td><td>{}</td><td>{}</td><td>{:.2} / {:.2}</td><td>{}</td><td><ul>{}</ul></td></tr>",
                        escape(&r.node),
                        escape(&r.action),
                        params(&r.params),
                        r.score,
                        r.threshold,
                        escape(&decision),
                        signals.concat()
                    );
                }
                b.push_str("</tbody></table>");
            }
        }
    }

    b.push_str("<h2>Fix</h2>");
    match &i.fix {
        None => b.push_str("<p class=\"empty\">No fix.</p>"),
        Some(f) => {
            let _ = write!(
                b,
                "<table id=\"fix\"><tbody><tr><th>Action</th><td>{}</td></tr><tr><th>Params</th><td>{}</td></tr>\
                 <tr><th>Confidence</th><td>{:.2}</td></tr><tr><th>Scope</th><td>{}</td></tr>\
                 <tr><th>Stage</th><td>{}</td></tr><tr><th>Approval</th><td>{}</td></tr>\
                 <tr><th>Outcome</th><td id=\"outcome\">{}</td></tr><tr><th>Verdict</th><td id=\"verdict\">{}</td></tr>\
                 </tbody></table>",
                escape(&f.action),
                params(&f.params),
                f.confidence,
                escape(f.scope.as_deref().unwrap_or("—")),
                f.stage.map_or("—", |s| s.as_str()),
                escape(f.approval.as_deref().unwrap_or("—")),
                escape(&fix_status(i, f)),
                f.verdict
                    .as_ref()
                    .map_or_else(|| "—".to_string(), |v| escape(&verdict_text(v))),
            );
        }
    }
    journal_table(&mut b, journal);

    if let Some(v) = i.fix.as_ref().and_then(|f| f.verdict.as_ref()) {
        let _ = write!(
            b,
            "<h2>Verdict</h2><p id=\"verdict-given\" class=\"verdict\">{}</p>",
            escape(&verdict_text(v))
        );
    } else if can_confirm(i) {
        if can_decide {
            let _ = write!(
                b,
                "<h2 id=\"confirm\">Confirm</h2><form method=\"post\" action=\"/ui/incidents/{s}/confirm\" class=\"confirm\">{c}\
                 <fieldset><legend>Was the fix right?</legend>\
                 <label><input type=\"radio\" name=\"verdict\" value=\"correct\" required> correct</label> \
                 <label><input type=\"radio\" name=\"verdict\" value=\"misfix\"> misfix</label> \
                 <label>severity (misfix) <select name=\"severity\"><option value=\"\">—</option>\
                 <option>P0</option><option>P1</option><option>P2</option><option>P3</option></select></label> \
                 <label>comment <input type=\"text\" name=\"comment\"></label> \
                 <button type=\"submit\">Confirm</button></fieldset></form>",
                s = seg(&i.id),
                c = csrf_field(who.1),
            );
        } else {
            b.push_str("<p class=\"empty\">The fix waits for an approver's verdict.</p>");
        }
    }
    layout(&format!("Incident {}", i.id), Some(who), flash, &b)
}

fn journal_table(b: &mut String, journal: &[JournalEntry]) {
    b.push_str("<h3>Journal</h3>");
    if journal.is_empty() {
        b.push_str("<p class=\"empty\">Nothing ran.</p>");
        return;
    }
    b.push_str(
        "<table id=\"journal\"><thead><tr><th>At</th><th>Fix</th><th>Event</th><th>Phase</th><th>Attempt</th>\
         <th>Exit</th><th>Output</th></tr></thead><tbody>",
    );
    for e in journal {
        let (event, phase, attempt, exit, output) = match &e.event {
            JournalEvent::FixStarted {
                params: p,
                fencing_token,
            } => (
                "fix started".to_string(),
                String::new(),
                String::new(),
                String::new(),
                format!("{} (fencing token {fencing_token})", params(p)),
            ),
            JournalEvent::PhaseStarted { phase, attempt } => (
                "phase started".into(),
                phase.as_str().to_string(),
                attempt.to_string(),
                String::new(),
                String::new(),
            ),
            JournalEvent::PhaseFinished {
                phase,
                attempt,
                exit,
                stdout,
                stderr,
                ..
            } => {
                let mut out = String::new();
                if !stdout.is_empty() {
                    let _ = write!(
                        out,
                        "<pre class=\"stdout\">{}</pre>",
                        escape(&excerpt(stdout, 2000))
                    );
                }
                if !stderr.is_empty() {
                    let _ = write!(
                        out,
                        "<pre class=\"stderr\">{}</pre>",
                        escape(&excerpt(stderr, 2000))
                    );
                }
                (
                    "phase finished".into(),
                    phase.as_str().to_string(),
                    attempt.to_string(),
                    escape(&exit_text(exit)),
                    out,
                )
            }
            JournalEvent::VerifyCondition { attempt, held, error } => (
                "verify condition".into(),
                "verify".into(),
                attempt.to_string(),
                if *held {
                    "held".into()
                } else {
                    "did not hold".into()
                },
                error.as_ref().map_or(String::new(), |e| escape(e)),
            ),
            JournalEvent::Recovered { note } => (
                "recovered".into(),
                String::new(),
                String::new(),
                String::new(),
                escape(note),
            ),
            JournalEvent::FixFinished { outcome } => (
                "fix finished".into(),
                String::new(),
                String::new(),
                escape(&outcome.to_string()),
                String::new(),
            ),
        };
        let _ = write!(
            b,
            "<tr class=\"journal\" data-phase=\"{phase}\"><td>{}</td><td title=\"{}\">{}</td><td>{event}</td><td>{phase}</td>\
             <td>{attempt}</td><td>{exit}</td><td>{output}</td></tr>",
            time(e.at),
            escape(&e.fix),
            // `<incident>/<action>`: the page is the incident's, the action says which fix.
            escape(e.fix.rsplit('/').next().unwrap_or(&e.fix)),
        );
    }
    b.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<script>alert(\"x\")</script> & 'y'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(seg("inc-1/../x y"), "inc-1%2F..%2Fx%20y");
    }

    #[test]
    fn a_script_in_a_label_is_text() {
        let mut labels = std::collections::BTreeMap::new();
        labels.insert("service".to_string(), "<script>alert(1)</script>".to_string());
        let alert = crate::alert::Alert {
            status: crate::alert::AlertStatus::Firing,
            labels,
            annotations: Default::default(),
            starts_at: Utc::now(),
            ends_at: Utc::now(),
            generator_url: "javascript:alert(1)".into(),
            fingerprint: "f\"><script>".into(),
        };
        let incident = Incident {
            id: "inc-1".into(),
            fingerprint: "f\"><script>".into(),
            state: IncidentState::Open,
            alertname: "<b>X</b>".into(),
            service: Some("<script>alert(1)</script>".into()),
            playbook: None,
            alert,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            resolved_at: None,
            firings: 1,
            created_by_entry: "1-0".into(),
            applied_entries: vec![],
            diagnosis: None,
            timeline: vec![],
            fix: None,
            version: 0,
        };
        let who = Identity {
            name: "<img src=x>".into(),
            role: crate::config::Role::Viewer,
        };
        let page = super::incident(&incident, &[], None, false, (&who, "csrf"), None);
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>X"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        let dash = dashboard(
            &Dashboard {
                killswitch: None,
                approvals: vec![],
                incidents: vec![incident],
                stages: Ok(vec![]),
                can_decide: false,
            },
            (&who, "csrf"),
            Some(&Flash {
                ok: false,
                text: "<script>x</script>".into(),
            }),
        );
        assert!(!dash.contains("<script>"), "{dash}");
        assert!(dash.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    fn entry(fix: &str, secs: i64, event: JournalEvent) -> JournalEntry {
        JournalEntry {
            fix: fix.into(),
            at: DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::milliseconds(secs),
            event,
        }
    }

    fn started() -> JournalEvent {
        JournalEvent::FixStarted {
            params: Default::default(),
            fencing_token: 1,
        }
    }

    fn finished() -> JournalEvent {
        JournalEvent::FixFinished {
            outcome: FixOutcome::Succeeded,
        }
    }

    #[test]
    fn the_fix_duration_is_the_last_fix_from_start_to_finish() {
        assert_eq!(fix_duration(&[]), None);
        assert_eq!(fix_duration(&[entry("i/a", 0, started())]), None, "still running");
        let journal = [
            entry("i/a", 0, started()),
            entry("i/a", 1_000, finished()),
            entry("i/b", 5_000, started()),
            entry("i/b", 8_100, finished()),
        ];
        assert_eq!(fix_duration(&journal).map(|d| d.num_milliseconds()), Some(3_100));
    }

    #[test]
    fn long_values_are_cut_with_the_whole_in_the_title() {
        assert_eq!(clipped("short <b>", 64), "short &lt;b&gt;");
        let long = format!("{}<x>", "a".repeat(70));
        assert_eq!(
            clipped(&long, 64),
            format!(
                "<span class=\"clip\" title=\"{}&lt;x&gt;\">{}…</span>",
                "a".repeat(70),
                "a".repeat(64)
            )
        );
    }

    #[test]
    fn forms_return_only_to_this_page() {
        assert_eq!(back_to(""), "/ui/");
        assert_eq!(back_to("inc-1-0"), "/ui/incidents/inc-1-0");
        assert_eq!(
            back_to("//evil.example/x"),
            "/ui/incidents/%2F%2Fevil.example%2Fx"
        );
        assert_eq!(
            back_to("https://evil.example"),
            "/ui/incidents/https%3A%2F%2Fevil.example"
        );
    }

    fn ran(verdict: Option<Verdict>) -> Incident {
        let alert = crate::alert::Alert {
            status: crate::alert::AlertStatus::Firing,
            labels: Default::default(),
            annotations: Default::default(),
            starts_at: DateTime::<Utc>::UNIX_EPOCH,
            ends_at: DateTime::<Utc>::UNIX_EPOCH,
            generator_url: String::new(),
            fingerprint: "f".into(),
        };
        Incident {
            id: "inc-1".into(),
            fingerprint: "f".into(),
            state: IncidentState::Open,
            alertname: "A".into(),
            service: None,
            playbook: None,
            alert,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            resolved_at: None,
            firings: 1,
            created_by_entry: "1-0".into(),
            applied_entries: vec![],
            diagnosis: None,
            timeline: vec![],
            fix: Some(IncidentFix {
                action: "restart".into(),
                node: "n".into(),
                params: Default::default(),
                confidence: 0.9,
                scope: Some("staging".into()),
                stage: None,
                approval: None,
                refused: None,
                gate: None,
                dry_run: false,
                outcome: Some(FixOutcome::RolledBack("verify failed".into())),
                verdict,
                silence: None,
            }),
            version: 0,
        }
    }

    #[test]
    fn a_verdict_replaces_the_confirm_form() {
        let who = Identity {
            name: "approver".into(),
            role: crate::config::Role::Approver,
        };
        let waiting = ran(None);
        assert!(can_confirm(&waiting));
        let page = super::incident(&waiting, &[], None, true, (&who, "c"), None);
        assert!(page.contains("class=\"confirm\""), "{page}");
        assert!(!page.contains("verdict-given"), "{page}");
        let confirmed = ran(Some(Verdict {
            correct: false,
            severity: Some(crate::autonomy::outcome::Severity::P2),
            by: "<alice>".into(),
            at: DateTime::<Utc>::UNIX_EPOCH,
            comment: "wrong pod".into(),
        }));
        assert!(!can_confirm(&confirmed), "a second verdict is a 409 in the API");
        let page = super::incident(&confirmed, &[], None, true, (&who, "c"), None);
        assert!(!page.contains("class=\"confirm\""), "{page}");
        assert!(
            page.contains(
                "<p id=\"verdict-given\" class=\"verdict\">misfix (P2) by &lt;alice&gt; at 1970-01-01 00:00:00 UTC: wrong pod</p>"
            ),
            "{page}"
        );
        let cell = fix_cell(&confirmed);
        assert!(cell.contains("verdict: misfix (P2) by &lt;alice&gt;"), "{cell}");
        assert!(!cell.contains("to-confirm"), "{cell}");
        assert!(fix_cell(&waiting).contains("href=\"/ui/incidents/inc-1#confirm\""));
    }

    #[test]
    fn a_resolved_incident_says_how_long_it_took() {
        let mut i = ran(None);
        assert_eq!(resolve_text(&i, &[]), None);
        i.resolved_at = Some(DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::milliseconds(23_400));
        assert_eq!(
            resolve_text(&i, &[]).as_deref(),
            Some("resolved 23.4s after the alert started")
        );
        let journal = [
            entry("inc-1/restart", 0, started()),
            entry("inc-1/restart", 3_100, finished()),
        ];
        assert_eq!(
            resolve_text(&i, &journal).as_deref(),
            Some("resolved 23.4s after the alert started (the fix took 3.1s)")
        );
    }
}
