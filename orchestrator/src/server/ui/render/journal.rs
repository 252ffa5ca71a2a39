//! The incident page's journal table: one row per journal event, phases with their exits and the
//! tail of their output (a step's entries say which step); and the fix table's row of a remedy
//! of steps, each step with how far it got.

use std::fmt::Write as _;

use super::escape::escape;
use super::values::{params, time};
use crate::engine::diagnosis::StepCall;
use crate::fix::journal::{JournalEntry, JournalEvent};
use crate::runner::PhaseExit;

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

/// The fix table's row of a remedy of steps: each step's action, params and how far it got
/// (from the journal: its last phase, its end, and whether it was rolled back since).
/// In waves, each step says its wave.
pub(super) fn steps_row(steps: &[StepCall], waves: &[u32], journal: &[JournalEntry]) -> String {
    if steps.is_empty() {
        return String::new();
    }
    let wave_of = crate::fix::executor::wave_of_steps(waves, steps.len());
    let mut b = String::from(if waves.is_empty() {
        "<tr><th>Steps</th><td><ol id=\"steps\">"
    } else {
        "<tr><th>Waves</th><td><ol id=\"steps\">"
    });
    for (k, step) in steps.iter().enumerate() {
        let number = k as u32 + 1;
        let wave = if waves.is_empty() {
            String::new()
        } else {
            format!(" data-wave=\"{}\"", wave_of[k] + 1)
        };
        let wave_text = if waves.is_empty() {
            String::new()
        } else {
            format!("wave {} · ", wave_of[k] + 1)
        };
        let mut status = "not started".to_string();
        for e in journal.iter().filter(|e| e.step == Some(number)) {
            match &e.event {
                JournalEvent::PhaseStarted { phase, .. } => status = format!("{} running", phase.as_str()),
                JournalEvent::PhaseFinished { phase, exit, .. } => {
                    status = format!("{}: {}", phase.as_str(), exit_text(exit));
                }
                JournalEvent::StepFinished { outcome } => status = outcome.to_string(),
                _ => {}
            }
        }
        let _ = write!(
            b,
            "<li data-step=\"{number}\"{wave}>{wave_text}{} {} — <span class=\"step-status\">{}</span></li>",
            escape(&step.action),
            params(&step.params),
            escape(&status)
        );
    }
    b.push_str("</ol></td></tr>");
    b
}

pub(super) fn journal_table(b: &mut String, journal: &[JournalEntry]) {
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
                steps,
                ..
            } if steps.is_empty() => (
                "fix started".to_string(),
                String::new(),
                String::new(),
                String::new(),
                format!("{} (fencing token {fencing_token})", params(p)),
            ),
            JournalEvent::FixStarted {
                fencing_token, steps, ..
            } => (
                "fix started".to_string(),
                String::new(),
                String::new(),
                String::new(),
                format!(
                    "<ol class=\"steps\">{}</ol> (fencing token {fencing_token})",
                    steps
                        .iter()
                        .map(|s| format!("<li>{} {}</li>", escape(&s.action), params(&s.params)))
                        .collect::<String>()
                ),
            ),
            JournalEvent::StepFinished { outcome } => (
                "step finished".into(),
                String::new(),
                String::new(),
                escape(&outcome.to_string()),
                String::new(),
            ),
            JournalEvent::WaveStarted { wave, first, last } => (
                format!("wave {wave} started"),
                String::new(),
                String::new(),
                String::new(),
                format!("steps {first} to {last}"),
            ),
            JournalEvent::RollingBack { reason } => (
                "rolling back the steps".into(),
                String::new(),
                String::new(),
                String::new(),
                escape(reason),
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
        // A step's entry says which step: `step 2 · execute`.
        let (step_attr, shown_phase) = match e.step {
            Some(n) if phase.is_empty() => (format!(" data-step=\"{n}\""), format!("step {n}")),
            Some(n) => (format!(" data-step=\"{n}\""), format!("step {n} · {phase}")),
            None => (String::new(), phase.clone()),
        };
        let _ = write!(
            b,
            "<tr class=\"journal\" data-phase=\"{phase}\"{step_attr}><td>{}</td><td title=\"{}\">{}</td><td>{event}</td><td>{shown_phase}</td>\
             <td>{attempt}</td><td>{exit}</td><td>{output}</td></tr>",
            time(e.at),
            escape(&e.fix),
            // `<incident>/<action>`: the page is the incident's, the action says which fix.
            escape(e.fix.rsplit('/').next().unwrap_or(&e.fix)),
        );
    }
    b.push_str("</tbody></table>");
}
