//! The stages view's picture of one (action, scope): a server-rendered SVG (no script) of its
//! outcomes over the gate's window — one mark per outcome, coloured by kind, filled when it is
//! one of the gate's samples and hollow when it is not — above a band of the stages the pair was
//! in, with each stage change marked. An SRE sees at a glance why a gate is or is not met.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::escape::escape;
use crate::autonomy::outcome::OutcomeKind;
use crate::autonomy::stage::Stage;
use crate::autonomy::stages::StageReport;

const WIDTH: f64 = 720.0;
const LEFT: f64 = 8.0;
const RIGHT: f64 = 8.0;
const MARKS_Y: f64 = 22.0;
const BAND_Y: f64 = 46.0;
const BAND_H: f64 = 12.0;
const HEIGHT: f64 = 78.0;

/// The colour of an outcome kind (the legend says the same).
pub fn colour(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Succeeded => "#2e7d32",
        OutcomeKind::Correct => "#1b5e20",
        OutcomeKind::RolledBack => "#ef6c00",
        OutcomeKind::RollbackFailed => "#b71c1c",
        OutcomeKind::Misfix { .. } => "#d81b60",
        OutcomeKind::Recurred => "#6a1b9a",
        OutcomeKind::Aborted | OutcomeKind::Failed => "#757575",
        OutcomeKind::AlreadyHealthy => "#0288d1",
        OutcomeKind::DryRun => "#9e9e9e",
        OutcomeKind::Refused { .. } => "#424242",
        OutcomeKind::Interrupted => "#f9a825",
        OutcomeKind::Recovered { .. } => "#26a69a",
    }
}

fn stage_colour(stage: Stage) -> &'static str {
    match stage {
        Stage::Manual => "#eceff1",
        Stage::Silent => "#fff3e0",
        Stage::Auto => "#e8f5e9",
    }
}

fn x_of(at: DateTime<Utc>, start: DateTime<Utc>, end: DateTime<Utc>) -> f64 {
    let span = (end - start).num_milliseconds().max(1) as f64;
    let t = ((at - start).num_milliseconds() as f64 / span).clamp(0.0, 1.0);
    LEFT + t * (WIDTH - LEFT - RIGHT)
}

/// The SVG of one pair (`id="picture-<action>-<scope>"`, marks `class="mark"` with
/// `data-kind`, `data-incident` and `data-counts`; stage changes `class="stage-change"`).
pub fn picture(r: &StageReport) -> String {
    let (start, end) = (r.window_start, r.now);
    let mut b = String::new();
    let _ = write!(
        b,
        "<svg class=\"stage-picture\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" data-action=\"{a}\" data-scope=\"{s}\">\
         <title>{a} in {s}: outcomes and stages over the gate's window</title>",
        a = escape(&r.entry.action),
        s = escape(&r.entry.scope),
    );
    // The stage band: from each change (or the window's start) to the next.
    let mut stage_at_start = r.history.iter().rfind(|c| c.at <= start).map(|c| c.to);
    if stage_at_start.is_none() {
        stage_at_start = r.history.first().map(|c| c.from.unwrap_or(c.to));
    }
    let mut segments: Vec<(DateTime<Utc>, Stage)> = Vec::new();
    segments.push((start, stage_at_start.unwrap_or(r.entry.state.stage)));
    for c in r.history.iter().filter(|c| c.at > start && c.at <= end) {
        segments.push((c.at, c.to));
    }
    for (i, (from, stage)) in segments.iter().enumerate() {
        let to = segments.get(i + 1).map_or(end, |n| n.0);
        let (x0, x1) = (x_of(*from, start, end), x_of(to, start, end));
        let _ = write!(
            b,
            "<rect class=\"stage-band\" data-stage=\"{st}\" x=\"{x0:.1}\" y=\"{BAND_Y}\" width=\"{w:.1}\" height=\"{BAND_H}\" fill=\"{c}\"><title>{st}</title></rect>",
            st = stage.as_str(),
            w = (x1 - x0).max(0.5),
            c = stage_colour(*stage),
        );
        if x1 - x0 > 44.0 {
            let _ = write!(
                b,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#455a64\">{}</text>",
                x0 + 3.0,
                BAND_Y + 9.0,
                stage.as_str()
            );
        }
    }
    for c in r.history.iter().filter(|c| c.at > start && c.at <= end) {
        let x = x_of(c.at, start, end);
        let _ = write!(
            b,
            "<line class=\"stage-change\" data-to=\"{to}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"6\" y2=\"{y2}\" stroke=\"#37474f\" stroke-dasharray=\"2 2\">\
             <title>{at}: {from} → {to} by {by}: {why}</title></line>",
            to = c.to.as_str(),
            y2 = BAND_Y + BAND_H,
            at = c.at.format("%Y-%m-%d %H:%M"),
            from = c.from.map_or("(new)", Stage::as_str),
            by = escape(&c.by),
            why = escape(&c.reason),
        );
    }
    // The axis and the marks.
    let _ = write!(
        b,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{MARKS_Y}\" y2=\"{MARKS_Y}\" stroke=\"#cfd8dc\"/>",
        WIDTH - RIGHT
    );
    for o in r
        .outcomes
        .iter()
        .filter(|o| !matches!(o.kind, OutcomeKind::Recovered { .. }))
    {
        let x = x_of(o.at, start, end);
        let c = colour(o.kind);
        let counts = o.kind.counts();
        let (fill, stroke) = if counts { (c, c) } else { ("#ffffff", c) };
        let detail = match o.kind {
            OutcomeKind::Refused { gate } => format!(" by the {gate} gate"),
            OutcomeKind::Misfix { severity } => format!(" {}", severity.as_str()),
            _ => String::new(),
        };
        let _ = write!(
            b,
            "<circle class=\"mark\" data-kind=\"{k}\" data-incident=\"{i}\" data-counts=\"{counts}\" cx=\"{x:.1}\" cy=\"{MARKS_Y}\" r=\"5\" \
             fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"2\"><title>{at} {k}{detail} (incident {i}){n}</title></circle>",
            k = o.kind.as_str(),
            i = escape(&o.incident),
            at = o.at.format("%Y-%m-%d %H:%M"),
            n = if counts { "" } else { ", not a sample" },
        );
    }
    let _ = write!(
        b,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"9\" fill=\"#607d8b\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#607d8b\" text-anchor=\"end\">{}</text></svg>",
        HEIGHT - 6.0,
        start.format("%m-%d %H:%M"),
        WIDTH - RIGHT,
        HEIGHT - 6.0,
        end.format("%m-%d %H:%M")
    );
    b
}

/// The legend under the pictures: every kind with its colour, filled = a sample of the gate.
pub fn legend() -> String {
    use crate::record::gate::Gate;
    let kinds = [
        OutcomeKind::Succeeded,
        OutcomeKind::Correct,
        OutcomeKind::RolledBack,
        OutcomeKind::RollbackFailed,
        OutcomeKind::Misfix {
            severity: crate::autonomy::outcome::Severity::P2,
        },
        OutcomeKind::Recurred,
        OutcomeKind::Aborted,
        OutcomeKind::AlreadyHealthy,
        OutcomeKind::DryRun,
        OutcomeKind::Refused {
            gate: Gate::Killswitch,
        },
        OutcomeKind::Interrupted,
    ];
    let mut b = String::from("<p class=\"legend\" id=\"outcome-legend\">");
    for k in kinds {
        let c = colour(k);
        let fill = if k.counts() { c } else { "#ffffff" };
        let _ = write!(
            b,
            "<svg width=\"12\" height=\"12\" xmlns=\"http://www.w3.org/2000/svg\"><circle cx=\"6\" cy=\"6\" r=\"4\" fill=\"{fill}\" stroke=\"{c}\" stroke-width=\"2\"/></svg> {} ",
            k.as_str()
        );
    }
    b.push_str("— filled: a sample of the gate; hollow: not counted. Band: the stage over time; dashed: a stage change.</p>");
    b
}
