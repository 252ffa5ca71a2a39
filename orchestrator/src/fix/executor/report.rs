//! What a fix reports when it ends: its outcome, the phases it ran with their exits, and rootfix's
//! own overhead around each container phase.

use std::time::Duration;

use crate::fix::journal::FixOutcome;
use crate::model::action::PhaseName;
use crate::runner::PhaseExit;

/// What happened, phase by phase.
#[derive(Debug, Clone, PartialEq)]
pub struct FixReport {
    pub fix: String,
    pub outcome: FixOutcome,
    pub phases: Vec<(PhaseName, u32, PhaseExit)>,
    /// rootfix's own overhead around each container phase (for the benchmark).
    pub overhead: Vec<PhaseOverhead>,
}

impl FixReport {
    /// A fix that ran no phase: refused, or ended by its journal alone.
    pub fn without_phases(fix: String, outcome: FixOutcome) -> Self {
        Self {
            fix,
            outcome,
            phases: Vec::new(),
            overhead: Vec::new(),
        }
    }
}

/// rootfix's time around one phase, apart from the container's own run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseOverhead {
    /// From deciding to run the phase (before its journal entry) to the engine's create request.
    pub decision_to_create: Duration,
    /// The engine's create-and-start time.
    pub create_to_start: Duration,
    /// From the container's exit to the journal entry being written.
    pub exit_to_journal: Duration,
}
