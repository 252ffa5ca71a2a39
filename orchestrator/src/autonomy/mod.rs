//! Staged autonomy: which fixes rootfix may run on its own, where, and how fast.
//!
//! - [`scope`]: named label selectors over the target, each with a stage cap, a rate limit, a
//!   concurrency limit and a dry-run switch.
//! - [`gate`]: the gates that can refuse a fix, in order.
//! - [`stage`]: `manual` → `silent` → `auto` per (action, scope), with its history.
//! - [`outcome`] and [`promotion`]: outcomes per (action, scope) and the promotion gate over them.
//! - [`approval`]: what a `manual` fix waits for.
//! - [`clock`]: the injectable clock every decision here reads.
//! - [`controller`]: [`controller::Autonomy`], which applies all of it to incidents.

pub mod clock;
pub mod config;
pub mod controller;
pub mod gate;
pub mod outcome;
pub mod promotion;
pub mod scope;

// Records, re-exported under their old paths (`autonomy::approval::Approval`).
pub use crate::record::{approval, stage};
