//! What `rootfix backtest` prints: each incident whose path or decision changed (old → new, the
//! remedies that crossed a threshold, what the record lacked), then the summary; or all of it as
//! JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::compare::{Change, Decided, RemedyCrossing, Replayed, Summary};

/// The JSON document (`--json`): every replayed incident and the summary.
#[derive(Debug, Serialize)]
pub struct BacktestReport<'a> {
    pub summary: &'a Summary,
    pub incidents: &'a [Replayed],
}

pub fn render_json(replays: &[Replayed], summary: &Summary) -> String {
    let report = BacktestReport {
        summary,
        incidents: replays,
    };
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}

/// The text report: the changed incidents in corpus order, then the summary.
pub fn render_text(replays: &[Replayed], summary: &Summary) -> String {
    let mut out = String::new();
    for r in replays.iter().filter(|r| r.change != Change::Unchanged) {
        render_incident(&mut out, r);
        out.push('\n');
    }
    render_summary(&mut out, summary);
    out
}

fn render_incident(out: &mut String, r: &Replayed) {
    let _ = writeln!(
        out,
        "{}  {}  service={}  evidence at {}  ({})",
        r.incident,
        r.alertname,
        r.service.as_deref().unwrap_or("-"),
        r.evidence_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        r.change.as_str()
    );
    let _ = writeln!(out, "  path      {}", path(&r.old));
    let _ = writeln!(out, "         →  {}", path(&r.new));
    let _ = writeln!(out, "  decision  {}", decision(&r.old));
    let _ = writeln!(out, "         →  {}", decision(&r.new));
    for c in &r.crossed {
        let _ = writeln!(out, "  crossed   {}", crossing(c));
    }
    if let Some(known) = r.known {
        let effect = r.effect.map_or(String::new(), |e| format!(": {}", e.as_str()));
        let _ = writeln!(out, "  known     the fix that ran: {}{effect}", known.as_str());
    }
    for (name, why) in &r.missing {
        let _ = writeln!(out, "  missing   {name}: {why}");
    }
    if !r.fetched.is_empty() {
        let _ = writeln!(
            out,
            "  fetched   {} (live, at the evidence time)",
            r.fetched.join(", ")
        );
    }
}

/// A decision's path: `playbook: node > node`.
pub fn path(d: &Decided) -> String {
    match &d.playbook {
        None => "no playbook".into(),
        Some(p) if d.path.is_empty() => format!("{p}: no node hit"),
        Some(p) => format!("{p}: {}", d.path.join(" > ")),
    }
}

/// A decision's fix: `fix action k=v (node n, score s ≥ t)`, or `no fix`.
pub fn decision(d: &Decided) -> String {
    match &d.fix {
        None => "no fix".into(),
        Some(f) => {
            let params: Vec<String> = f.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "fix {} {} (node {}, score {:.2} ≥ {:.2})",
                f.action,
                params.join(" "),
                f.node,
                f.score,
                f.threshold
            )
        }
    }
}

/// A remedy that crossed its threshold: `node (action): score/threshold decision → ...`.
pub fn crossing(c: &RemedyCrossing) -> String {
    let side = |s: &Option<super::compare::RemedyScore>| match s {
        None => "absent".to_string(),
        Some(s) => format!("{:.2}/{:.2} {}", s.score, s.threshold, s.decision),
    };
    format!("{} ({}): {} → {}", c.node, c.action, side(&c.old), side(&c.new))
}

fn render_summary(out: &mut String, s: &Summary) {
    let _ = writeln!(out, "summary");
    let rows: [(&str, usize); 13] = [
        ("incidents replayed", s.replayed),
        ("  playbook changed since the record", s.playbook_changed),
        ("decisions unchanged", s.unchanged + s.paths_changed),
        ("  of which the path changed", s.paths_changed),
        ("decisions changed", s.decisions_changed),
        ("  new fixes that would have started", s.new_fixes),
        ("  fixes that would no longer start", s.fixes_lost),
        ("  another fix instead", s.other_fixes),
        ("against the known verdicts", 0),
        ("  misfixes avoided", s.misfixes_avoided),
        ("  misfixes repeated", s.misfixes_repeated),
        ("  correct fixes lost", s.correct_fixes_lost),
        ("  recurrences repeated", s.recurrences_repeated),
    ];
    for (label, n) in rows {
        if label == "against the known verdicts" {
            let _ = writeln!(out, "  {label}");
        } else {
            let _ = writeln!(out, "  {label:<38} {n}");
        }
    }
    if s.fetched > 0 {
        let _ = writeln!(
            out,
            "  {:<38} {}",
            "replays that fetched missing signals", s.fetched
        );
    }
    if !s.missing_signals.is_empty() {
        let list: Vec<String> = s
            .missing_signals
            .iter()
            .map(|(name, n)| format!("{name} ({n})"))
            .collect();
        let _ = writeln!(out, "  signals the record lacks: {}", list.join(", "));
    }
}
