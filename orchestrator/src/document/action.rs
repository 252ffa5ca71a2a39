//! `kind: Action`: a containerized or native fix (or read-only diagnostic) with typed params and
//! phases.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Metadata;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionDocument {
    /// Always `rootfix/v1`.
    pub api_version: String,
    /// Always `Action`.
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ActionSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionSpec {
    /// `fix` (changes things; needs precheck, execute, verify, rollback) or `diagnostic`
    /// (read-only; execute only, its JSON stdout becomes evidence).
    pub purpose: String,
    /// `docker`, `kubernetes-job` or `kubernetes` (native operations through the API).
    pub runner: String,
    /// Locally built image for `docker` and `kubernetes-job`; never pulled by rootfix. A `docker`
    /// action whose phases are all native operations has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Typed params; each reaches the container as `ROOTFIX_PARAM_<NAME>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, ParamSpec>,
    /// Upper bound for the whole fix (default `10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Template over `$params` naming the target; two fixes with the same key never run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// Container network: `none` (default), `host`, `bridge` or a network name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Run the container with a writable root filesystem (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writable_root_fs: Option<bool>,
    /// Host paths the container sees (docker runner), e.g. a config file it edits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountSpec>,
    /// Share the host's process namespace (docker runner), e.g. to signal a daemon to reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<bool>,
    pub phases: PhasesSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParamSpec {
    /// A regex the whole value must match (it is anchored for you).
    pub pattern: String,
    /// Default true; a required param without a default must be given by the playbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A host path mounted into the action's container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MountSpec {
    /// Absolute path on the host.
    pub host: String,
    /// Absolute path in the container.
    pub container: String,
    /// Default true: the container cannot write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResourcesSpec {
    /// e.g. `64Mi`, `1Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// CPUs, e.g. 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PhasesSpec {
    /// Exit 0 = proceed, 3 = already healthy (no-op success), other = abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precheck: Option<PhaseSpec>,
    /// The change; must be idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute: Option<PhaseSpec>,
    /// Proves the fix worked; retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<PhaseSpec>,
    /// Undoes execute when execute or verify fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<PhaseSpec>,
}

/// One phase: a command in the action's image, or a native operation of the runner.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PhaseSpec {
    /// argv for container runners; run directly, never through a shell string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Vec<String>>,
    /// A native operation instead of `run`. For the `kubernetes` runner: `rollout-restart`,
    /// `scale`, `delete-pod`, `patch-configmap`, `cordon`, `uncordon` (execute);
    /// `rollout-healthy` (precheck, verify); `restore-snapshot` (rollback). For the `docker`
    /// runner: `restart-container` (execute; cannot be rolled back, so the action has no
    /// rollback phase); `container-running`, `container-healthy` (precheck, verify). Docker
    /// operations read param `container` (and `stop_timeout`, seconds, when declared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Default `2m`; a phase that runs over is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// verify only: attempts before failing (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// verify only: pause between attempts (default `5s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}
