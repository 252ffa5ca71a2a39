//! The validated, run-time model: playbooks and actions that cannot be invalid, and the pieces
//! they are made of (conditions, templates, matchers, JSON paths).
//!
//! Nothing here does I/O. [`crate::catalog`] builds these types from [`crate::document`]s.

pub mod action;
pub mod condition;
pub mod jsonpath;
pub mod matcher;
pub mod playbook;
pub mod template;

pub use action::Action;
pub use playbook::Playbook;
