//! The records rootfix persists, one module each, below both [`crate::state`] (which stores
//! them) and the logic that makes them (`autonomy`, `fix`, `events`, `server`).
//!
//! - [`incident`]: the incident, its states and timeline, its fix as decided and as it went, the
//!   SRE's verdict, list filters.
//! - [`gate`]: which gate refused a fix (part of an incident's fix).
//! - [`approval`]: what a `manual` fix waits for, and what deciding it did.
//! - [`stage`]: an (action, scope)'s autonomy stage, its changes and listing.
//! - [`outcome`]: how one fix ended, or an SRE's confirmation of it.
//! - [`journal`]: a fix's phase transitions, how a phase exited and how the fix ended.
//! - [`audit`]: the audit event and the kill switch's state.
//!
//! Data and their pure methods only: no I/O, and nothing from `state`, `autonomy`, `fix`, `events`,
//! `server` or `runner` (it reads only `alert`, `model` and the walk's result, `engine::diagnosis`).
//! The old paths (`crate::incident`, `crate::audit`, `autonomy::approval`, `autonomy::stage`, the
//! records of `autonomy::outcome`, `autonomy::gate` and `fix::journal`, `runner::PhaseExit`) are
//! re-exports of these.

pub mod approval;
pub mod audit;
pub mod gate;
pub mod incident;
pub mod journal;
pub mod outcome;
pub mod stage;
