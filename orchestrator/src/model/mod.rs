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

/// `sha256:` and the first 16 hex digits of `value`'s JSON. serde_json writes a struct's fields
/// in declaration order and a `BTreeMap` in key order, so two loads of one document agree,
/// whatever its comments, layout or key order; any change to what it says changes the hash.
pub fn content_hash<T: serde::Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    let hex: String = digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
