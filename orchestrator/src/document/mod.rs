//! The YAML files as written: `kind: Playbook` and `kind: Action`.
//!
//! These types mirror the files one to one (serde reads them, schemars turns them into the JSON
//! Schema for editors) and hold strings where the file holds text with meaning (durations,
//! conditions, templates). They are never used at run time: the catalog validates a document and
//! turns it into the types of [`crate::model`], which cannot be invalid.

pub mod action;
pub mod playbook;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The only `apiVersion` this build reads.
pub const API_VERSION: &str = "rootfix/v1";

/// `metadata` of every document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metadata {
    /// Unique among documents of the same kind; lowercase letters, digits and `-`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}
