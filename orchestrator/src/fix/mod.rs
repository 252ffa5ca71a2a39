//! Fixes: the [`executor`] that runs an action's phases under the target's lock, the [`journal`]
//! that makes a crash in any phase recoverable, and [`verify`], the playbook's verify condition
//! over fresh evidence.

pub mod executor;
pub mod journal;
pub mod verify;
