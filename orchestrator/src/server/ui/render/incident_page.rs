//! The incident page (`/ui/incidents/<id>`): summary, why no fix is offered, the approval, alert,
//! timeline, diagnosis and remedies, the fix and its journal, and the verdict or the confirm form.

use std::fmt::Write as _;

use super::approvals::approvals_table;
use super::escape::{csrf_field, escape, seg};
use super::fix_text::{can_confirm, fix_status, resolve_text, verdict_text};
use super::journal::{journal_table, steps_row};
use super::layout::layout;
use super::values::{params, time};
use crate::autonomy::approval::{Approval, ApprovalState};
use crate::backtest::Replayed;
use crate::backtest::report::{crossing, decision, path};
use crate::engine::NodeOutcome;
use crate::fix::journal::JournalEntry;
use crate::incident::Incident;
use crate::server::auth::Identity;
use crate::server::ui::session::Flash;

/// The incident page: its alert, timeline, diagnosis, remedies, fix and journal, and the confirm
/// form when the fix waits for a verdict.
pub fn incident(
    i: &Incident,
    journal: &[JournalEntry],
    approval: Option<&Approval>,
    can_decide: bool,
    who: (&Identity, &str),
    flash: Option<&Flash>,
    replay: Option<&Replayed>,
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

    if let Some(r) = replay {
        replay_section(&mut b, r);
    }

    b.push_str("<h2>Fix</h2>");
    match &i.fix {
        None => b.push_str("<p class=\"empty\">No fix.</p>"),
        Some(f) => {
            let _ = write!(
                b,
                "<table id=\"fix\"><tbody><tr><th>Action</th><td>{}</td></tr><tr><th>Params</th><td>{}</td></tr>{}\
                 <tr><th>Confidence</th><td>{:.2}</td></tr><tr><th>Scope</th><td>{}</td></tr>\
                 <tr><th>Stage</th><td>{}</td></tr><tr><th>Approval</th><td>{}</td></tr>\
                 <tr><th>Outcome</th><td id=\"outcome\">{}</td></tr><tr><th>Verdict</th><td id=\"verdict\">{}</td></tr>\
                 </tbody></table>",
                escape(&f.action),
                params(&f.params),
                steps_row(&f.steps, &f.waves, journal),
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

/// The diagnosis replayed with its recorded evidence under the playbooks in force now (shown
/// only when they differ from the version it was diagnosed with).
fn replay_section(b: &mut String, r: &Replayed) {
    let _ = write!(
        b,
        "<h2 id=\"replay\">Replayed under the playbooks in force now</h2>\
         <p class=\"why\">The playbook changed since this diagnosis (recorded {old}, in force {new}). \
         Walked again over the recorded evidence: <strong id=\"replay-change\">{change}</strong>.</p>\
         <table id=\"replay-diff\"><tbody>\
         <tr><th>Path</th><td>{old_path}</td><td>→ {new_path}</td></tr>\
         <tr><th>Decision</th><td>{old_fix}</td><td>→ {new_fix}</td></tr>",
        old = escape(r.recorded_hash.as_deref().unwrap_or("—")),
        new = escape(r.candidate_hash.as_deref().unwrap_or("no playbook matches")),
        change = escape(r.change.as_str()),
        old_path = escape(&path(&r.old)),
        new_path = escape(&path(&r.new)),
        old_fix = escape(&decision(&r.old)),
        new_fix = escape(&decision(&r.new)),
    );
    for c in &r.crossed {
        let _ = write!(
            b,
            "<tr class=\"crossed\"><th>Crossed</th><td colspan=\"2\">{}</td></tr>",
            escape(&crossing(c))
        );
    }
    if let (Some(known), Some(effect)) = (r.known, r.effect) {
        let _ = write!(
            b,
            "<tr><th>Against the verdict</th><td colspan=\"2\">{}: {}</td></tr>",
            escape(known.as_str()),
            escape(effect.as_str())
        );
    }
    for (name, why) in &r.missing {
        let _ = write!(
            b,
            "<tr class=\"missing\"><th>Missing</th><td colspan=\"2\">{}: {}</td></tr>",
            escape(name),
            escape(why)
        );
    }
    b.push_str("</tbody></table>");
}
