//! rootfix: an automated remediation orchestrator.
//!
//! An alert arrives from Alertmanager; rootfix matches it to a playbook, walks the playbook's
//! diagnosis tree over live evidence, and when the evidence for a root cause is strong enough runs
//! a containerized, idempotent fix in four phases (precheck, execute, verify, rollback), gated by
//! staged autonomy. `ARCHITECTURE.md` at the repository root is the map; this is its code index.
//!
//! # Layout
//! - [`document`]: the YAML files as written (`kind: Playbook`, `kind: Action`), serde + schemars.
//! - [`catalog`]: loads and validates documents together, reporting every problem with
//!   `file:line:col: field.path: message`, and builds the run-time model.
//! - [`model`]: validated playbooks and actions, and their parts (CEL conditions, templates,
//!   Alertmanager matchers, JSON paths). No I/O.
//! - [`record`]: the persisted records (incident, approval, stage, outcome, journal, audit), below
//!   [`state`] and the logic; [`audit`] and [`incident`] are its modules under their old paths.
//! - [`state`]: all state, one trait per area ([`state::prelude`]), on Redis or in process.
//! - [`evidence`]: live evidence behind [`engine::EvidenceProvider`]: one module per signal kind
//!   (Prometheus, Loki, JSON HTTP, HTTP probe, DNS, TCP) and the `evidence:` config of backends.
//! - [`notify`]: notifications to Slack, DingTalk, WeCom and JSON webhooks, queued and delivered
//!   in the background with retries.
//! - [`schema`]: JSON Schemas generated from [`document`].
//! - [`silence`]: Alertmanager silences (API v2) for a cooldown after an automatic fix.
//! - [`cli`]: the `rootfix` command, one module per subcommand.

pub mod alert;
pub mod alert_rules;
pub mod autonomy;
pub mod backtest;
pub mod catalog;
pub mod chat;
pub mod cli;
pub mod config;
pub mod document;
pub mod engine;
pub mod events;
pub mod evidence;
pub mod fix;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod record;
pub mod reload;
pub mod runner;
pub mod schema;
pub mod server;
pub mod silence;
pub mod state;

// The records' old paths: `crate::audit::AuditEvent`, `crate::incident::Incident` still resolve.
pub use record::{audit, incident};
