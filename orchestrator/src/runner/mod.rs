//! Fix runners: the [`Runner`] trait runs one phase of an action (a container, a Kubernetes Job
//! or a native Kubernetes operation) and reports how it ended.
//!
//! The phase contract (DESIGN 1.9): exit 0 = proceed; in `precheck`, exit 3 = already healthy
//! (a no-op success); anything else = failed. A phase that runs over its timeout is killed and
//! reported as [`PhaseExit::TimedOut`]. Params reach the phase only as environment variables
//! `ROOTFIX_PARAM_<NAME>`, validated against their pattern first ([`validate_params`]), never
//! through a shell string.
//!
//! [`availability`] says which runner kinds can run on this install, and why not.
//! [`diagnostic`] runs a playbook node's read-only diagnostic action on the runner of its kind,
//! for live evidence.

pub mod availability;
pub mod diagnostic;
pub mod docker;
pub mod kubernetes;
pub mod params;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::action::{Action, PhaseName};

pub use crate::record::journal::PhaseExit;
pub use params::{ParamError, param_env, validate_params};

/// Exit code by which a precheck says the target is already healthy.
pub const EXIT_ALREADY_HEALTHY: i64 = 3;

/// Most of a phase's stdout and stderr kept (each), the end of the output kept when cut.
pub const OUTPUT_CAP_BYTES: usize = 64 * 1024;

/// What a runner is asked to do.
#[derive(Debug, Clone)]
pub struct PhaseRequest<'a> {
    pub incident: &'a str,
    pub action: &'a Action,
    pub phase: PhaseName,
    /// Validated params (see [`validate_params`]).
    pub params: &'a BTreeMap<String, String>,
    /// 1-based attempt (verify is retried).
    pub attempt: u32,
    /// The phase's timeout.
    pub timeout: Duration,
    /// For `rollback` of native Kubernetes operations: what `execute` snapshotted.
    pub snapshot: Option<&'a serde_json::Value>,
}

/// How a phase ended, with what it printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseOutcome {
    pub exit: PhaseExit,
    pub stdout: String,
    pub stderr: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Native Kubernetes operations: the object as it was before `execute`, for `rollback`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot: Option<serde_json::Value>,
    /// When the runner talked to the engine (for the overhead benchmark); not persisted.
    #[serde(skip)]
    pub timing: Option<RunnerTiming>,
}

/// Instants of one phase inside a runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerTiming {
    /// Just before the create request was sent.
    pub create_sent: std::time::Instant,
    /// When the engine said the container started.
    pub started: std::time::Instant,
    /// When the runner learned the container exited.
    pub exited: std::time::Instant,
}

/// Why a phase could not be run at all (as opposed to running and failing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunnerError {
    #[error("image `{image}` is not on the engine; build it with `{build}` (rootfix never pulls)")]
    ImageMissing { image: String, build: String },
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error("the action has no {0} phase")]
    NoPhase(&'static str),
    #[error("runner `{runner}` cannot run this phase: {reason}")]
    Unsupported { runner: &'static str, reason: String },
    #[error("{0}")]
    Engine(String),
}

#[async_trait]
pub trait Runner: Send + Sync {
    /// Runs one phase to its end (or its timeout) and reports how it ended.
    async fn run_phase(&self, request: PhaseRequest<'_>) -> Result<PhaseOutcome, RunnerError>;

    /// Stops and removes whatever a crashed rootfix left running for this fix (containers, Jobs),
    /// so that nothing changes the target behind the recovery's back.
    async fn abandon(&self, incident: &str, action: &str) -> Result<(), RunnerError> {
        let _ = (incident, action);
        Ok(())
    }
}

/// Keeps at most [`OUTPUT_CAP_BYTES`] of `text`: its end, which holds the error, with a marker.
pub fn cap_output(text: &str) -> String {
    if text.len() <= OUTPUT_CAP_BYTES {
        return text.to_string();
    }
    let mut start = text.len() - OUTPUT_CAP_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {start} bytes cut …]\n{}", &text[start..])
}
