//! Fixes: the [`executor`] that runs an action's phases under the target's lock, and the
//! [`journal`] that makes a crash in any phase recoverable.

pub mod executor;
pub mod journal;
