//! The request and response bodies of the OpenAPI document ([`super::openapi`]) whose real types
//! cannot derive `ToSchema`: the JSON the handlers build with `json!`, and records with flattened
//! or deeply nested parts (described as far as a client relies on them; the nested rest is any
//! JSON value). Nothing here is (de)serialized: these types exist only to be described, and each
//! mirrors, field for field, what its handler answers or reads.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::ToSchema;

use crate::record::approval::Approval;
use crate::record::audit::{AuditEvent, KillSwitch};
use crate::record::incident::IncidentState;
use crate::record::stage::{Proposal, Stage, StageChange, StageState};

/// Every refusal: the status says what kind, `error` says why.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// Alertmanager's webhook payload, version 4 (every alert is checked: a hex `fingerprint`,
/// `labels.alertname`, valid label names).
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct WebhookBody {
    /// Must be `"4"`.
    #[schema(pattern = "^4$")]
    pub version: String,
    #[schema(nullable = false)]
    pub group_key: Option<String>,
    #[schema(nullable = false)]
    pub truncated_alerts: Option<u64>,
    #[schema(inline)]
    pub status: AlertStatusBody,
    pub receiver: String,
    #[schema(nullable = false)]
    pub group_labels: Option<BTreeMap<String, String>>,
    #[schema(nullable = false)]
    pub common_labels: Option<BTreeMap<String, String>>,
    #[schema(nullable = false)]
    pub common_annotations: Option<BTreeMap<String, String>>,
    #[schema(rename = "externalURL")]
    #[schema(nullable = false)]
    pub external_url: Option<String>,
    /// At least one.
    #[schema(min_items = 1)]
    pub alerts: Vec<WebhookAlertBody>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum AlertStatusBody {
    Firing,
    Resolved,
}

/// One alert of the payload.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct WebhookAlertBody {
    #[schema(inline)]
    pub status: AlertStatusBody,
    pub labels: BTreeMap<String, String>,
    #[schema(nullable = false)]
    pub annotations: Option<BTreeMap<String, String>>,
    pub starts_at: DateTime<Utc>,
    #[schema(nullable = false)]
    pub ends_at: Option<DateTime<Utc>>,
    #[schema(rename = "generatorURL")]
    #[schema(nullable = false)]
    pub generator_url: Option<String>,
    /// Hex.
    #[schema(pattern = "^[0-9a-fA-F]+$")]
    pub fingerprint: String,
}

/// The webhook stored: the alerts appended to the stream, and those recognised as a retry.
#[derive(ToSchema)]
pub struct IngestBody {
    pub accepted: u64,
    pub duplicates: u64,
    /// The stream entry ids of the alerts stored, in the payload's order.
    pub ids: Vec<String>,
}

/// A page of incidents, newest first.
#[derive(ToSchema)]
pub struct IncidentPage {
    pub items: Vec<IncidentSummary>,
    /// The `offset` of the next page; `null` on the last.
    #[schema(required = true)]
    pub next_offset: Option<u64>,
}

/// One line of the list: the incident without its diagnosis and timeline.
#[derive(ToSchema)]
pub struct IncidentSummary {
    pub id: String,
    pub state: IncidentState,
    pub alertname: String,
    pub fingerprint: String,
    #[schema(required = true)]
    pub service: Option<String>,
    #[schema(required = true)]
    pub playbook: Option<String>,
    pub firings: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(required = true)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Ids of the nodes that hit, in tree order.
    pub path: Vec<String>,
    /// Remedies that reached their threshold.
    pub remedies: Vec<String>,
}

/// An incident with its alert, diagnosis, timeline and fix.
#[derive(ToSchema)]
pub struct IncidentBody {
    pub id: String,
    pub fingerprint: String,
    pub state: IncidentState,
    pub alertname: String,
    #[schema(required = true)]
    pub service: Option<String>,
    #[schema(required = true)]
    pub playbook: Option<String>,
    /// The latest alert received for this incident.
    pub alert: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub firings: u32,
    pub created_by_entry: String,
    pub applied_entries: Vec<String>,
    /// The walk's result: every node's outcome and the remedies' confidence.
    pub diagnosis: Option<Value>,
    pub timeline: Vec<Value>,
    /// The fix rootfix decided on (gates, stage, approval, outcome, verdict).
    pub fix: Option<Value>,
    pub last_seen: Option<DateTime<Utc>>,
    pub flaps: Option<u32>,
    pub version: u64,
}

/// An incident's fix journal, oldest first.
#[derive(ToSchema)]
pub struct JournalBody {
    pub incident: String,
    /// Each `{"fix", "at", "event", ...}`.
    pub items: Vec<Value>,
}

/// An operator's fix: the action and its params.
#[derive(ToSchema)]
pub struct FixRequest {
    pub action: String,
    #[schema(nullable = false)]
    pub params: Option<BTreeMap<String, String>>,
}

/// How an operator's fix ended.
#[derive(ToSchema)]
pub struct FixBodyOut {
    pub incident: String,
    pub fix: String,
    pub by: String,
    /// `{"kind": "succeeded" | "already-healthy" | "aborted" | "rolled-back" | "rollback-failed" | "dry-run", "reason"}`.
    pub outcome: Value,
    pub text: String,
    pub phases: Vec<PhaseBody>,
}

#[derive(ToSchema)]
pub struct PhaseBody {
    pub phase: String,
    pub attempt: u32,
    pub exit: Value,
}

/// Approvals, newest first.
#[derive(ToSchema)]
pub struct ApprovalList {
    pub items: Vec<Approval>,
}

/// What deciding a fix led to.
#[derive(ToSchema)]
pub struct DecidedBody {
    /// `nothing`, `refused`, `awaiting-approval` or `started`.
    pub kind: String,
    /// `refused`: the gate.
    pub gate: Option<Value>,
    /// `refused`: why.
    pub reason: Option<String>,
    /// `awaiting-approval`: the approval's id.
    pub approval: Option<String>,
    /// `started`: whether as a dry run.
    pub dry_run: Option<bool>,
}

/// An approval approved (or approved already) and what became of its fix.
#[derive(ToSchema)]
pub struct ApprovedBody {
    pub approval: Approval,
    pub already_approved: bool,
    #[schema(required = true)]
    pub fix: Option<DecidedBody>,
}

/// Why an approval is rejected.
#[derive(ToSchema)]
pub struct RejectRequest {
    /// Required (an empty one is refused).
    #[schema(nullable = false)]
    pub reason: Option<String>,
}

#[derive(ToSchema)]
pub struct ApprovalBody {
    pub approval: Approval,
}

/// The SRE's verdict on a fix that ran.
#[derive(ToSchema)]
pub struct ConfirmRequest {
    /// `correct` or `misfix`.
    #[schema(nullable = false)]
    pub verdict: Option<String>,
    /// `P0` to `P3`.
    pub severity: Option<String>,
    #[schema(nullable = false)]
    pub comment: Option<String>,
}

#[derive(ToSchema)]
pub struct ConfirmedBody {
    pub incident: String,
    pub state: IncidentState,
    #[schema(required = true)]
    pub fix: Option<Value>,
}

/// One (action, scope) with its stage, cap, promotion gate and measured outcomes.
#[derive(ToSchema)]
pub struct StageReportBody {
    pub action: String,
    pub scope: String,
    pub stage: Stage,
    pub since: DateTime<Utc>,
    pub proposal: Option<Proposal>,
    pub cap: Stage,
    /// Whether the promotion gate is met, and the figures it read.
    pub gate: Value,
    /// Recovery times, rollback success rate, outcome kinds over the gate's window.
    pub measured: Value,
}

#[derive(ToSchema)]
pub struct StageList {
    pub items: Vec<StageReportBody>,
}

#[derive(ToSchema)]
pub struct StageDetail {
    pub stage: StageReportBody,
    pub history: Vec<StageChange>,
}

/// A promotion (`reason`, `force`) or demotion (`reason`, `to`).
#[derive(ToSchema)]
pub struct StageRequest {
    #[schema(nullable = false)]
    pub reason: Option<String>,
    /// Promote although the gate is not met (never above the scope's cap).
    #[schema(nullable = false)]
    pub force: Option<bool>,
    /// Demote to this stage (`manual` unless said).
    pub to: Option<String>,
}

#[derive(ToSchema)]
pub struct StageChanged {
    pub action: String,
    pub scope: String,
    pub stage: StageState,
}

/// The kill switch: `state` while it is on.
#[derive(ToSchema)]
pub struct KillSwitchBody {
    pub on: bool,
    #[schema(required = true)]
    pub state: Option<KillSwitch>,
}

/// Turn the kill switch on (a reason required) or off.
#[derive(ToSchema)]
pub struct KillSwitchRequest {
    pub on: bool,
    #[schema(nullable = false)]
    pub reason: Option<String>,
}

#[derive(ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEvent>,
}

/// `/readyz`: ready only when serving, Redis answers, a catalog is loaded and the event loop
/// reads. While starting (before the full API is in), only `ready`, `reasons` and `phase`.
#[derive(ToSchema)]
pub struct ReadyBody {
    pub ready: bool,
    /// Why not ready (empty when ready).
    pub reasons: Vec<String>,
    pub playbooks: Option<u64>,
    pub actions: Option<u64>,
    /// The actions whose runner cannot run on this install (degraded, still ready).
    pub cannot_run: Option<Vec<CannotRunBody>>,
    pub phase: super::readiness::Phase,
    /// The event loop's reads (`null` in a process without one).
    pub event_loop: Option<crate::events::probe::ReadReport>,
    /// The alert stream (`null` when Redis cannot say).
    pub stream: Option<StreamBody>,
}

#[derive(ToSchema)]
pub struct CannotRunBody {
    pub action: String,
    /// `docker` or `kubernetes`.
    pub runner: String,
    pub why: String,
}

/// The alert stream: entries kept, delivered but not acknowledged, not yet delivered.
#[derive(ToSchema)]
pub struct StreamBody {
    pub length: u64,
    pub pending: u64,
    pub lag: u64,
}

/// A Slack interactivity request: `payload` is the `block_actions` JSON.
#[derive(ToSchema)]
pub struct SlackForm {
    pub payload: String,
}

/// A chat click decided, or why it was not.
#[derive(ToSchema)]
pub struct SlackAnswer {
    pub decided: bool,
    pub message: Option<String>,
    pub reason: Option<String>,
}
