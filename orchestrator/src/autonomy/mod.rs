//! Staged autonomy: which fixes rootfix may run on its own, where, and how fast.
//!
//! The records and rules (no I/O):
//! - [`scope`]: named label selectors over the target, each with a stage cap, a rate limit, a
//!   concurrency limit and a dry-run switch.
//! - [`gate`]: the gates that can refuse a fix, in order.
//! - [`stage`]: `manual` → `silent` → `auto` per (action, scope), with its history.
//! - [`outcome`] and [`promotion`]: outcomes per (action, scope) and the promotion gate over them.
//! - [`approval`]: the approval record a `manual` fix waits for.
//! - [`clock`]: the injectable clock every decision here reads.
//!
//! The parts that apply them to incidents, each depending only on the ones below it:
//! - [`controller`]: [`controller::Autonomy`], the one value callers hold; it assembles the rest.
//! - [`decide`]: the first gates, then an approval request or the lifecycle.
//! - [`leader`]: the leader's periodic job (expiring approvals, proposing promotions, the sweep).
//! - [`sweep`]: open incidents that outlived their alert (stale), fixes that did not hold
//!   (`resolve_wait`), refused fixes decided again as their cause clears (fair storms).
//! - [`retention`]: the leader's housekeeping: the alert stream trimmed, closed incidents past
//!   `retention.incidents` exported and removed, old audit events trimmed.
//! - [`approvals`]: requesting, approving, rejecting, expiring and cancelling approvals.
//! - [`operator`]: an operator's explicit fix.
//! - [`confirm`]: an SRE's verdict on a fix that ran.
//! - [`recurrence`]: a verified fix whose alert came back: the outcome `recurred`.
//! - [`lifecycle`]: the last gates, the fix in the background, its outcome and the incident's end.
//! - [`refusal`]: a gate's refusal, as every part above refuses.
//! - [`stages`]: first stage, promotion, demotion, proposals.
//! - [`context`]: the state store, config, clock and helpers all of them share.

pub mod approvals;
pub mod clock;
pub mod config;
pub mod confirm;
pub mod context;
pub mod controller;
pub mod decide;
pub mod gate;
pub mod leader;
pub mod lifecycle;
pub mod operator;
pub mod outcome;
pub mod promotion;
pub mod recurrence;
pub mod refusal;
pub mod retention;
pub mod scope;
pub mod stages;
pub mod sweep;

// Records, re-exported under their old paths (`autonomy::approval::Approval`).
pub use crate::record::{approval, stage};
