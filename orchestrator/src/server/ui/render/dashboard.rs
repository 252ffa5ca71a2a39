//! The dashboard (`/ui/`): the kill switch banner, pending approvals, open incidents with their
//! fix cell, and the stages with their promotion gates.

use std::fmt::Write as _;

use super::approvals::approvals_table;
use super::escape::{escape, seg};
use super::fix_text::{can_confirm, fix_status, verdict_text};
use super::layout::layout;
use super::values::{hours, percent, time};
use crate::audit::KillSwitch;
use crate::autonomy::approval::Approval;
use crate::autonomy::controller::StageReport;
use crate::engine::NodeOutcome;
use crate::incident::Incident;
use crate::server::auth::Identity;
use crate::server::ui::session::Flash;

/// What the dashboard shows.
pub struct Dashboard {
    pub killswitch: Option<KillSwitch>,
    pub approvals: Vec<Approval>,
    pub incidents: Vec<Incident>,
    /// The stages, or why they cannot be shown.
    pub stages: Result<Vec<StageReport>, String>,
    pub can_decide: bool,
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
                 <th>In stage</th><th>Samples</th><th>Success</th><th>95 % lower bound</th><th>P0 misfixes</th>\
                 <th>Recovery mean / p90</th><th>Rollback success</th><th>Gate</th>\
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
                let secs = |s: Option<f64>| s.map_or("—".to_string(), |s| format!("{s:.0} s"));
                let _ = write!(
                    b,
                    "<tr class=\"stage\" data-action=\"{action}\" data-scope=\"{scope}\"><td>{action}</td><td>{scope}</td>\
                     <td>{stage}</td><td>{cap}</td><td>{inst}</td><td>{samples}</td><td>{rate}</td><td>{bound}{reads}</td><td>{p0}</td>\
                     <td>{mean} / {p90}</td><td>{rollback}</td><td>{gate}</td><td>{proposal}</td></tr>\
                     <tr class=\"stage-picture-row\"><td colspan=\"13\">{picture}</td></tr>",
                    action = escape(&r.entry.action),
                    scope = escape(&r.entry.scope),
                    stage = r.entry.state.stage.as_str(),
                    cap = r.cap.as_str(),
                    inst = hours(g.hours_in_stage),
                    samples = g.samples,
                    rate = percent(g.success_rate),
                    bound = percent(g.lower_bound),
                    reads = if g.gate_on_lower_bound { " (gate)" } else { "" },
                    p0 = g.p0_misfixes,
                    mean = secs(r.measured.mean_recovery_seconds),
                    p90 = secs(r.measured.p90_recovery_seconds),
                    rollback = percent(r.measured.rollback_success_rate),
                    picture = super::stage_picture::picture(r),
                );
            }
            b.push_str("</tbody></table>");
            b.push_str(&super::stage_picture::legend());
        }
    }
    layout("Dashboard", Some(who), flash, &b)
}

/// The dashboard's Fix cell: action, stage and what became of the fix (or why there is none),
/// the verdict once given, else a link to the confirm form when the fix waits for one.
pub(super) fn fix_cell(i: &Incident) -> String {
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
