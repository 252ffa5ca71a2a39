//! The diagnosis engine: the walk over a playbook's tree ([`walker`]), the evidence seam and its
//! per-walk cache ([`evidence`]), evidence fusion ([`confidence`]) and the walk's result
//! ([`diagnosis`]).

pub mod confidence;
pub mod diagnosis;
pub mod evidence;
pub mod fixture;
pub mod walker;

pub use diagnosis::{Decision, Diagnosis, NodeOutcome};
pub use evidence::{EvidenceCache, EvidenceContext, EvidenceError, EvidenceProvider};
pub use walker::{WalkOptions, Walker};
