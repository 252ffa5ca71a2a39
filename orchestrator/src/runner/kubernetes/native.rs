//! `kubernetes` actions: one native API operation per phase.
//!
//! Every execute that changes an object follows one flow ([`change_object`]): `GET` the object,
//! work out the patch and the patch that would undo it (the snapshot's `restore`), and `PATCH`
//! both the change and the [`CHANGE_ANNOTATION`] record in one request carrying the
//! `resourceVersion` read, so the snapshot is exactly what the patch replaced (a `409 Conflict`
//! starts over, at most [`CONFLICT_RETRIES`] times). An object already in the wanted state is not
//! patched (`changed: false`); an object that carries this incident's record was changed by an
//! earlier run of the same execute, whose snapshot is returned again.
//!
//! Once something changed, every later problem (a failed poll, a rollout that times out) is a
//! failed or timed-out outcome *with* the snapshot, never an error that would lose it.

use chrono::Utc;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::snapshot::{CHANGE_ANNOTATION, MAX_RECORD_BYTES, SNAPSHOT_VERSION, Snapshot, Target, merge};
use super::{KubeRunner, api_reason, configmap, deployment, describe, engine_error, is_not_found, node, pod};
use crate::model::action::{KubeOperation, Operation, PhaseName, PhaseStep};
use crate::runner::{ParamError, PhaseExit, PhaseOutcome, PhaseRequest, RunnerError};

/// How often a patch is retried after a `409 Conflict` (someone else wrote the object between
/// our read and our patch; a Deployment's status updates do that during a rollout).
pub const CONFLICT_RETRIES: usize = 5;

/// One native phase being run.
pub struct Ctx<'r, 'a> {
    pub runner: &'r KubeRunner,
    pub request: &'r PhaseRequest<'a>,
    pub operation: KubeOperation,
    pub deadline: Instant,
}

impl Ctx<'_, '_> {
    pub fn param(&self, name: &str) -> Result<&str, RunnerError> {
        self.request.params.get(name).map(String::as_str).ok_or_else(|| {
            RunnerError::Param(ParamError::Missing {
                action: self.request.action.name.clone(),
                name: name.to_string(),
            })
        })
    }

    pub fn patch_params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(self.runner.settings().field_manager.clone()),
            ..PatchParams::default()
        }
    }

    pub fn client(&self) -> kube::Client {
        self.runner.client().clone()
    }

    pub fn poll_interval(&self) -> std::time::Duration {
        self.runner.settings().poll_interval
    }

    pub fn timed_out(&self) -> PhaseExit {
        PhaseExit::TimedOut {
            after_ms: u64::try_from(self.request.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Sleeps one poll interval, or until the deadline; false once the deadline has passed.
    pub async fn wait_a_poll(&self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.poll_interval().min(self.deadline - now)).await;
        true
    }

    pub fn new_snapshot(&self, target: Target, changed: bool, restore: Option<Value>) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            incident: self.request.incident.to_string(),
            action: self.request.action.name.clone(),
            operation: self.operation.as_str().to_string(),
            target,
            changed,
            restore,
            deleted_pod: None,
        }
    }
}

/// How a native phase ended: its exit, what it did (one line each), and the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub exit: PhaseExit,
    pub lines: Vec<String>,
    pub snapshot: Option<Snapshot>,
}

impl Report {
    pub fn new(exit: PhaseExit, line: impl Into<String>) -> Self {
        Self {
            exit,
            lines: vec![line.into()],
            snapshot: None,
        }
    }

    pub fn failed(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Self::new(
            PhaseExit::Failed {
                code: None,
                reason: reason.clone(),
            },
            reason,
        )
    }
}

pub(super) async fn run(
    runner: &KubeRunner,
    request: &PhaseRequest<'_>,
    operation: KubeOperation,
) -> Result<PhaseOutcome, RunnerError> {
    if !operation.allowed_in(request.phase) {
        return Err(RunnerError::Unsupported {
            runner: "kubernetes",
            reason: format!(
                "operation `{}` cannot be the {} phase",
                operation.as_str(),
                request.phase.as_str()
            ),
        });
    }
    let started_at = Utc::now();
    let ctx = Ctx {
        runner,
        request,
        operation,
        deadline: Instant::now() + request.timeout,
    };
    let report = match operation {
        KubeOperation::RolloutRestart => deployment::restart(&ctx).await?,
        KubeOperation::Scale => deployment::scale(&ctx).await?,
        KubeOperation::RolloutHealthy => deployment::healthy(&ctx).await?,
        KubeOperation::DeletePod => pod::delete(&ctx).await?,
        KubeOperation::PatchConfigMap => configmap::patch(&ctx).await?,
        KubeOperation::Cordon => node::set_unschedulable(&ctx, true).await?,
        KubeOperation::Uncordon => node::set_unschedulable(&ctx, false).await?,
        KubeOperation::RestoreSnapshot => restore(&ctx).await?,
    };
    tracing::info!(
        incident = request.incident,
        action = %request.action.name,
        operation = operation.as_str(),
        exit = ?report.exit,
        "kubernetes operation done"
    );
    Ok(PhaseOutcome {
        exit: report.exit,
        stdout: report.lines.iter().map(|l| format!("{l}\n")).collect(),
        stderr: String::new(),
        started_at,
        finished_at: Utc::now(),
        snapshot: report.snapshot.as_ref().map(Snapshot::to_value),
        timing: None,
    })
}

/// What an execute wants done to the object it read.
pub struct Plan {
    /// The patch that puts back the fields `change` touches, as they are now.
    pub restore: Value,
    /// The change; `None` when the object is already as wanted.
    pub change: Option<Value>,
}

/// Strategic merge (Deployments, Nodes: built-in kinds, as kubectl patches them) or JSON merge
/// patch (ConfigMaps, whose `patch` param is one). For the fields rootfix touches — a string
/// map, an integer, a boolean — both mean the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Strategic,
    Merge,
}

impl PatchKind {
    pub fn patch(self, body: Value) -> Patch<Value> {
        match self {
            PatchKind::Strategic => Patch::Strategic(body),
            PatchKind::Merge => Patch::Merge(body),
        }
    }
}

/// The result of [`change_object`].
pub enum Changed<K> {
    /// The object does not exist.
    NotFound,
    /// The planner refused (why); nothing was changed.
    Refused(String),
    /// Done, or nothing to do (`snapshot.changed`); `object` is the object as it is now.
    Done {
        snapshot: Box<Snapshot>,
        object: Box<K>,
        line: String,
    },
}

/// The shared execute flow (see the module doc). `plan` gets the object as JSON and whether an
/// earlier run of this execute already changed it.
pub async fn change_object<K>(
    ctx: &Ctx<'_, '_>,
    api: &Api<K>,
    target: Target,
    kind: PatchKind,
    plan: impl Fn(&Value, bool) -> Result<Plan, String>,
) -> Result<Changed<K>, RunnerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = target.name().to_string();
    let what = target.describe();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let object = match api.get(&name).await {
            Ok(object) => object,
            Err(e) if is_not_found(&e) => return Ok(Changed::NotFound),
            Err(e) => return Err(engine_error(&format!("reading {what}"), &e)),
        };
        let value = serde_json::to_value(&object).map_err(|e| RunnerError::Engine(e.to_string()))?;
        let earlier = Snapshot::recorded_on(&value).filter(|s| {
            s.is_of(ctx.request.incident, &ctx.request.action.name) && s.operation == ctx.operation.as_str()
        });
        let plan = match plan(&value, earlier.is_some()) {
            Ok(plan) => plan,
            Err(reason) => return Ok(Changed::Refused(reason)),
        };
        let Some(change) = plan.change else {
            let (snapshot, line) = match earlier {
                Some(s) => (
                    s,
                    format!("{what}: already changed by an earlier run of this execute"),
                ),
                None => (
                    ctx.new_snapshot(target.clone(), false, Some(plan.restore)),
                    format!("{what}: already as wanted, nothing changed"),
                ),
            };
            return Ok(Changed::Done {
                snapshot: Box::new(snapshot),
                object: Box::new(object),
                line,
            });
        };
        let (snapshot, record) = match earlier {
            // Keep the first run's snapshot: it holds the state from before any change.
            Some(s) => (s, None),
            None => {
                let s = ctx.new_snapshot(target.clone(), true, Some(plan.restore));
                let text = serde_json::to_string(&s).map_err(|e| RunnerError::Engine(e.to_string()))?;
                if text.len() > MAX_RECORD_BYTES {
                    return Ok(Changed::Refused(format!(
                        "the values this would replace take {} bytes, more than the {MAX_RECORD_BYTES} a snapshot \
                         may keep on the object; not changing what could not be restored",
                        text.len()
                    )));
                }
                (s, Some(text))
            }
        };
        let mut body = change.clone();
        let mut metadata = json!({"resourceVersion": value.pointer("/metadata/resourceVersion")});
        if let Some(text) = record {
            metadata["annotations"] = json!({CHANGE_ANNOTATION: text});
        }
        merge(&mut body, json!({"metadata": metadata}));
        match api.patch(&name, &ctx.patch_params(), &kind.patch(body)).await {
            Ok(object) => {
                let line = format!("{what}: patched {}", compact(&change));
                return Ok(Changed::Done {
                    snapshot: Box::new(snapshot),
                    object: Box::new(object),
                    line,
                });
            }
            Err(e) if api_reason(&e).map(|(code, _)| code) == Some(409) && attempt < CONFLICT_RETRIES => {
                continue;
            }
            Err(e) if is_not_found(&e) => return Ok(Changed::NotFound),
            Err(e) => return Err(engine_error(&format!("patching {what}"), &e)),
        }
    }
}

/// restore-snapshot: puts back what execute changed. The snapshot comes from the request (the
/// executor's journal) or, when the executor has none — rootfix died during execute — from the
/// record execute left on the object the action's execute names.
async fn restore(ctx: &Ctx<'_, '_>) -> Result<Report, RunnerError> {
    let snapshot = match ctx.request.snapshot {
        Some(value) => Snapshot::from_value(value).map_err(RunnerError::Engine)?,
        None => match recorded_snapshot(ctx).await? {
            Some(snapshot) => snapshot,
            None => {
                return Ok(Report::new(
                    PhaseExit::Success,
                    "no snapshot, and no change of this incident recorded on the target: nothing to restore",
                ));
            }
        },
    };
    if !snapshot.is_of(ctx.request.incident, &ctx.request.action.name) {
        return Err(RunnerError::Engine(format!(
            "the snapshot is of incident {} action {}, not of this one",
            snapshot.incident, snapshot.action
        )));
    }
    if !snapshot.changed {
        return Ok(Report::new(
            PhaseExit::Success,
            format!(
                "{}: execute changed nothing; nothing to restore",
                snapshot.target.describe()
            ),
        ));
    }
    let mut report = match &snapshot.target {
        Target::Pod { .. } => pod::verify_replacement(ctx, &snapshot).await?,
        Target::Deployment { namespace, .. } => {
            let api = Api::namespaced(ctx.client(), namespace);
            let report = restore_object::<k8s_openapi::api::apps::v1::Deployment>(
                ctx,
                &api,
                &snapshot,
                PatchKind::Strategic,
            )
            .await?;
            match report {
                Restored::Done(line) => deployment::after_restore(ctx, &api, &snapshot, line).await,
                Restored::Not(report) => *report,
            }
        }
        Target::ConfigMap { namespace, .. } => {
            let api = Api::namespaced(ctx.client(), namespace);
            restore_object::<k8s_openapi::api::core::v1::ConfigMap>(ctx, &api, &snapshot, PatchKind::Merge)
                .await?
                .report()
        }
        Target::Node { .. } => {
            let api = Api::all(ctx.client());
            restore_object::<k8s_openapi::api::core::v1::Node>(ctx, &api, &snapshot, PatchKind::Strategic)
                .await?
                .report()
        }
    };
    report.snapshot = Some(snapshot);
    Ok(report)
}

enum Restored {
    Done(String),
    Not(Box<Report>),
}

impl Restored {
    fn report(self) -> Report {
        match self {
            Restored::Done(line) => Report::new(PhaseExit::Success, line),
            Restored::Not(report) => *report,
        }
    }
}

async fn restore_object<K>(
    ctx: &Ctx<'_, '_>,
    api: &Api<K>,
    snapshot: &Snapshot,
    kind: PatchKind,
) -> Result<Restored, RunnerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let what = snapshot.target.describe();
    let name = snapshot.target.name();
    let restore = snapshot.restore.clone().unwrap_or_else(|| json!({}));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let object = match api.get(name).await {
            Ok(object) => object,
            Err(e) if is_not_found(&e) => {
                return Ok(Restored::Not(Box::new(Report::failed(format!(
                    "{what} no longer exists; nothing to restore onto"
                )))));
            }
            Err(e) => return Err(engine_error(&format!("reading {what}"), &e)),
        };
        let value = serde_json::to_value(&object).map_err(|e| RunnerError::Engine(e.to_string()))?;
        if let Some(other) =
            Snapshot::recorded_on(&value).filter(|s| !s.is_of(&snapshot.incident, &snapshot.action))
        {
            return Ok(Restored::Not(Box::new(Report::failed(format!(
                "{what} was changed since by rootfix incident {} (action {}); not restoring over that change",
                other.incident, other.action
            )))));
        }
        let mut body = restore.clone();
        merge(
            &mut body,
            json!({"metadata": {
                "resourceVersion": value.pointer("/metadata/resourceVersion"),
                "annotations": {CHANGE_ANNOTATION: null},
            }}),
        );
        match api.patch(name, &ctx.patch_params(), &kind.patch(body)).await {
            Ok(_) => return Ok(Restored::Done(format!("{what}: restored {}", compact(&restore)))),
            Err(e) if api_reason(&e).map(|(code, _)| code) == Some(409) && attempt < CONFLICT_RETRIES => {
                continue;
            }
            Err(e) if is_not_found(&e) => {
                return Ok(Restored::Not(Box::new(Report::failed(format!(
                    "{what} no longer exists; nothing to restore onto"
                )))));
            }
            Err(e) => return Err(engine_error(&format!("restoring {what}"), &e)),
        }
    }
}

/// The record of this incident's execute on the object the action's execute operation names.
async fn recorded_snapshot(ctx: &Ctx<'_, '_>) -> Result<Option<Snapshot>, RunnerError> {
    let execute = ctx.request.action.phases.get(PhaseName::Execute).map(|p| &p.step);
    let Some(PhaseStep::Operation(Operation::Kube(op))) = execute else {
        return Ok(None);
    };
    let params = ctx.request.params;
    let get = |key: &str| params.get(key).cloned();
    let value = match (op, get("namespace")) {
        (KubeOperation::RolloutRestart | KubeOperation::Scale, Some(ns)) => match get("deployment") {
            Some(name) => {
                read_value::<k8s_openapi::api::apps::v1::Deployment>(
                    &Api::namespaced(ctx.client(), &ns),
                    &name,
                )
                .await?
            }
            None => None,
        },
        (KubeOperation::PatchConfigMap, Some(ns)) => match get("configmap") {
            Some(name) => {
                read_value::<k8s_openapi::api::core::v1::ConfigMap>(
                    &Api::namespaced(ctx.client(), &ns),
                    &name,
                )
                .await?
            }
            None => None,
        },
        (KubeOperation::Cordon | KubeOperation::Uncordon, _) => match get("node") {
            Some(name) => {
                read_value::<k8s_openapi::api::core::v1::Node>(&Api::all(ctx.client()), &name).await?
            }
            None => None,
        },
        // A deleted pod carries no record.
        _ => None,
    };
    Ok(value
        .as_ref()
        .and_then(Snapshot::recorded_on)
        .filter(|s| s.is_of(ctx.request.incident, &ctx.request.action.name)))
}

async fn read_value<K>(api: &Api<K>, name: &str) -> Result<Option<Value>, RunnerError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    match api.get(name).await {
        Ok(object) => Ok(serde_json::to_value(&object).ok()),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(engine_error(&format!("reading {name}"), &e)),
    }
}

/// A patch on one line for the phase's output.
pub fn compact(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 300 {
        format!("{}…", &text[..text.floor_char_boundary(300)])
    } else {
        text
    }
}

/// For errors met after a change: the line a report carries.
pub fn poll_error(what: &str, e: &kube::Error) -> String {
    format!("reading {what} failed: {}", describe(e))
}
