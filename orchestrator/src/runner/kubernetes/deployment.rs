//! Deployments: `rollout-restart`, `scale` (execute), `rollout-healthy` (precheck, verify), and
//! the wait for a rollout after a change or a restore.
//!
//! Requests: `GET` and `PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}` (strategic
//! merge patch, `fieldManager=rootfix`), then `GET` the same path every poll interval until the
//! rollout is complete, as `kubectl rollout status` judges it.
//!
//! **rollout-restart** sets the pod template's `kubectl.kubernetes.io/restartedAt` to the current
//! time, as `kubectl rollout restart` does, and waits for the rollout. Its snapshot restores the
//! annotation's previous value (or removes it): the Deployment's spec is then exactly as before,
//! so the controller scales the previous ReplicaSet back up — which is one more rolling
//! replacement of the pods, not an undo of the restart; pods restarted stay restarted. A repeated
//! execute of the same incident finds its record on the Deployment and restarts nothing twice.
//!
//! **scale** patches `spec.replicas` (its snapshot: the previous count) and waits for the rollout.
//! A HorizontalPodAutoscaler, if one targets the Deployment, will scale it again.
//!
//! **rollout-healthy** answers from one read (verify's retries and interval belong to the
//! executor):
//! - *verify*: Success when the rollout is complete and every replica is available, else Failed
//!   with what is missing.
//! - *precheck* asks "is it safe to change this Deployment now?", not "is it healthy?": the
//!   diagnosis already decided it is sick in a way a rollout status cannot see (a JVM whose heap
//!   is full is still "available"). So: Success (proceed) when the latest spec is completely
//!   rolled out, even with replicas unavailable — that is often the very symptom; Failed (abort)
//!   when a rollout is in progress or stuck (someone's deploy, which a restart would pile onto),
//!   when the Deployment is paused (a restart would not roll out) or does not exist. Never
//!   AlreadyHealthy: nothing in a rollout status says the fix is not needed.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use serde_json::{Value, json};

use super::native::{Changed, Ctx, PatchKind, Plan, Report, change_object, poll_error};
use super::snapshot::{Snapshot, Target};
use super::{engine_error, is_not_found};
use crate::model::action::PhaseName;
use crate::runner::{PhaseExit, RunnerError};

pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// Latest spec rolled out; `available` of `desired` replicas available.
    RolledOut { desired: i32, available: i32 },
    /// The controller is still working on it (why).
    InProgress(String),
    /// `ProgressDeadlineExceeded`, or paused.
    Stuck(String),
}

impl Rollout {
    pub fn complete(&self) -> bool {
        matches!(self, Rollout::RolledOut { desired, available } if available >= desired)
    }

    pub fn describe(&self) -> String {
        match self {
            Rollout::RolledOut { desired, available } if available >= desired => {
                format!("rollout complete: {available} of {desired} replicas available")
            }
            Rollout::RolledOut { desired, available } => {
                format!("rolled out, but only {available} of {desired} replicas available")
            }
            Rollout::InProgress(why) => format!("rollout in progress: {why}"),
            Rollout::Stuck(why) => format!("rollout stuck: {why}"),
        }
    }
}

/// The rollout status of `d`, judged as `kubectl rollout status` does.
pub fn rollout(d: &Deployment) -> Rollout {
    let desired = d.spec.replicas.unwrap_or(1);
    if d.spec.paused == Some(true) {
        return Rollout::Stuck("the deployment is paused".into());
    }
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::InProgress("the controller has not yet seen the latest spec".into());
    }
    let deadline = status.conditions.iter().flatten().find(|c| {
        c.type_.as_deref() == Some("Progressing") && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(c) = deadline {
        return Rollout::Stuck(format!(
            "progress deadline exceeded: {}",
            c.message.clone().unwrap_or_default()
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < desired {
        return Rollout::InProgress(format!("{updated} of {desired} replicas updated"));
    }
    if total > updated {
        return Rollout::InProgress(format!("{} old replicas pending termination", total - updated));
    }
    Rollout::RolledOut {
        desired,
        available: available.min(updated),
    }
}

fn target(ctx: &Ctx<'_, '_>) -> Result<(Target, Api<Deployment>), RunnerError> {
    let namespace = ctx.param("namespace")?.to_string();
    let name = ctx.param("deployment")?.to_string();
    let api = Api::namespaced(ctx.client(), &namespace);
    Ok((Target::Deployment { namespace, name }, api))
}

fn annotation_of(d: &Value) -> Value {
    d.pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(RESTARTED_AT))
        .cloned()
        .unwrap_or(Value::Null)
}

fn restart_patch(value: Value) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: value}}}}})
}

pub(super) async fn restart(ctx: &Ctx<'_, '_>) -> Result<Report, RunnerError> {
    let (target, api) = target(ctx)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let changed = change_object(ctx, &api, target.clone(), PatchKind::Strategic, |d, earlier| {
        if d.pointer("/spec/paused") == Some(&json!(true)) {
            return Err("the deployment is paused; a restart would not roll out".into());
        }
        Ok(Plan {
            restore: restart_patch(annotation_of(d)),
            // Restarted already by an earlier run of this execute: do not restart twice.
            change: (!earlier).then(|| restart_patch(json!(now))),
        })
    })
    .await?;
    finish_change(ctx, &api, &target, changed).await
}

pub(super) async fn scale(ctx: &Ctx<'_, '_>) -> Result<Report, RunnerError> {
    let (target, api) = target(ctx)?;
    let raw = ctx.param("replicas")?;
    let replicas: i32 = raw
        .parse()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| RunnerError::Unsupported {
            runner: "kubernetes",
            reason: format!("param `replicas` is `{raw}`, not a replica count"),
        })?;
    let changed = change_object(ctx, &api, target.clone(), PatchKind::Strategic, |d, _| {
        let current = d.pointer("/spec/replicas").cloned().unwrap_or(json!(1));
        Ok(Plan {
            restore: json!({"spec": {"replicas": current}}),
            change: (current != json!(replicas)).then(|| json!({"spec": {"replicas": replicas}})),
        })
    })
    .await?;
    finish_change(ctx, &api, &target, changed).await
}

async fn finish_change(
    ctx: &Ctx<'_, '_>,
    api: &Api<Deployment>,
    target: &Target,
    changed: Changed<Deployment>,
) -> Result<Report, RunnerError> {
    match changed {
        Changed::NotFound => Ok(Report::failed(format!("{} not found", target.describe()))),
        Changed::Refused(why) => Ok(Report::failed(format!("{}: {why}", target.describe()))),
        Changed::Done {
            snapshot,
            object,
            line,
        } => {
            let mut report = wait_for_rollout(ctx, api, target, *object).await;
            report.lines.insert(0, line);
            report.snapshot = Some(*snapshot);
            Ok(report)
        }
    }
}

/// After a restore: the Deployment rolls back to its previous template; wait for that too.
pub(super) async fn after_restore(
    ctx: &Ctx<'_, '_>,
    api: &Api<Deployment>,
    snapshot: &Snapshot,
    line: String,
) -> Report {
    let object = match api.get(snapshot.target.name()).await {
        Ok(object) => object,
        Err(e) => {
            return Report {
                exit: PhaseExit::Failed {
                    code: None,
                    reason: poll_error(&snapshot.target.describe(), &e),
                },
                lines: vec![line, poll_error(&snapshot.target.describe(), &e)],
                snapshot: None,
            };
        }
    };
    let mut report = wait_for_rollout(ctx, api, &snapshot.target, object).await;
    report.lines.insert(0, line);
    report
}

/// Polls until the rollout is complete (Success), stuck (Failed) or the phase's time is up
/// (TimedOut). Poll errors are retried until the deadline.
async fn wait_for_rollout(
    ctx: &Ctx<'_, '_>,
    api: &Api<Deployment>,
    target: &Target,
    mut current: Deployment,
) -> Report {
    let what = target.describe();
    let mut last_error = None;
    loop {
        let state = rollout(&current);
        if state.complete() {
            return Report::new(PhaseExit::Success, format!("{what}: {}", state.describe()));
        }
        if let Rollout::Stuck(why) = &state {
            return Report::failed(format!("{what}: rollout stuck: {why}"));
        }
        if !ctx.wait_a_poll().await {
            let mut lines = vec![format!(
                "{what}: {} when the phase's time ran out",
                state.describe()
            )];
            lines.extend(last_error);
            return Report {
                exit: ctx.timed_out(),
                lines,
                snapshot: None,
            };
        }
        match api.get(target.name()).await {
            Ok(d) => current = d,
            Err(e) if is_not_found(&e) => {
                return Report::failed(format!("{what} was deleted during the rollout"));
            }
            Err(e) => last_error = Some(poll_error(&what, &e)),
        }
    }
}

pub(super) async fn healthy(ctx: &Ctx<'_, '_>) -> Result<Report, RunnerError> {
    let (target, api) = target(ctx)?;
    let what = target.describe();
    let d = match api.get(target.name()).await {
        Ok(d) => d,
        Err(e) if is_not_found(&e) => return Ok(Report::failed(format!("{what} not found"))),
        Err(e) => return Err(engine_error(&format!("reading {what}"), &e)),
    };
    let state = rollout(&d);
    let line = format!("{what}: {}", state.describe());
    let exit = match (ctx.request.phase, &state) {
        (PhaseName::Precheck, Rollout::RolledOut { .. }) => PhaseExit::Success,
        (PhaseName::Precheck, _) => PhaseExit::Failed {
            code: None,
            reason: format!("not safe to change now: {line}"),
        },
        (_, s) if s.complete() => PhaseExit::Success,
        _ => PhaseExit::Failed {
            code: None,
            reason: line.clone(),
        },
    };
    Ok(Report::new(exit, line))
}
