//! `kubernetes-job` actions: each phase attempt is one `batch/v1` Job in the target namespace.
//!
//! Requests, in order (what `deploy/kubernetes/rbac.yaml` grants):
//! 1. `POST /apis/batch/v1/namespaces/{ns}/jobs` — on `409 AlreadyExists`, `GET` the Job of
//!    that name: rootfix created it before it restarted (its annotations say so), so it is
//!    adopted instead of run twice. A Job still being deleted is waited out, then created anew.
//! 2. `GET /apis/batch/v1/namespaces/{ns}/jobs/{name}` every `poll_interval` until the Job has a
//!    `Complete` or `Failed` condition, or until the phase's timeout.
//! 3. `GET /api/v1/namespaces/{ns}/pods?labelSelector=job-name={name}`: the pod the Job owns,
//!    for the container's exit code and termination reason.
//! 4. `GET /api/v1/namespaces/{ns}/pods/{pod}/log?container=action`: what the phase printed.
//!    Kubernetes keeps one log for stdout and stderr; it becomes the outcome's `stdout`, capped
//!    by [`cap_output`]. The outcome's `stderr` holds the runner's own notes (adoption, why a
//!    container never started, a log that could not be read).
//! 5. `DELETE /apis/batch/v1/namespaces/{ns}/jobs/{name}` with `propagationPolicy: Foreground`
//!    (the pod goes first). A timed-out phase is deleted the same way, after its log is read.
//!
//! Polling rather than watching: a phase lasts seconds to minutes, one GET every two seconds is
//! cheap, it needs only the `get` verb, and nothing has to survive a watch's reconnects.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use serde_json::json;
use tokio::time::Instant;

use super::naming::{job_name, label_value};
use super::{KubeRunner, api_reason, describe, engine_error, is_not_found};
use crate::model::action::{Action, PhaseName};
use crate::runner::{
    EXIT_ALREADY_HEALTHY, PhaseExit, PhaseOutcome, PhaseRequest, RunnerError, cap_output, param_env,
};

/// The one container of every Job.
pub const CONTAINER: &str = "action";
/// The uid the container runs as: `nobody`. Kubernetes actions talk to APIs; none needs root.
pub const RUN_AS_USER: i64 = 65534;

pub const LABEL_INCIDENT: &str = "rootfix.io/incident";
pub const LABEL_ACTION: &str = "rootfix.io/action";
pub const LABEL_PHASE: &str = "rootfix.io/phase";
pub const LABEL_ATTEMPT: &str = "rootfix.io/attempt";

/// The namespace a Job of `request` runs in: the `namespace` param, else the runner's default.
pub fn namespace_for(runner: &KubeRunner, request: &PhaseRequest<'_>) -> String {
    request
        .params
        .get("namespace")
        .cloned()
        .unwrap_or_else(|| runner.default_namespace().to_string())
}

/// The Job for one attempt of one phase. Params reach it only as environment variables; the
/// command is the action's argv, untouched.
pub fn build_job(
    runner: &KubeRunner,
    request: &PhaseRequest<'_>,
    argv: &[String],
    namespace: &str,
) -> Result<Job, RunnerError> {
    let action = request.action;
    let image = action.image.as_deref().ok_or_else(|| RunnerError::Unsupported {
        runner: "kubernetes-job",
        reason: format!("action `{}` has no image", action.name),
    })?;
    let name = job_name(request.incident, &action.name, request.phase, request.attempt);
    let labels = json!({
        LABEL_INCIDENT: label_value(request.incident),
        LABEL_ACTION: label_value(&action.name),
        LABEL_PHASE: request.phase.as_str(),
        LABEL_ATTEMPT: request.attempt.to_string(),
        "app.kubernetes.io/managed-by": "rootfix",
    });
    // Label values are cut to what a label may hold; the annotations keep them whole, and are
    // what adoption compares.
    let annotations = json!({
        LABEL_INCIDENT: request.incident,
        LABEL_ACTION: action.name,
        LABEL_PHASE: request.phase.as_str(),
        LABEL_ATTEMPT: request.attempt.to_string(),
    });
    let env: Vec<serde_json::Value> = param_env(
        request.params,
        request.incident,
        &action.name,
        request.phase.as_str(),
    )
    .into_iter()
    .map(|(name, value)| json!({"name": name, "value": value}))
    .collect();
    let host_network = match action.network.as_str() {
        // Kubernetes has no per-pod "no network": a pod always has the pod network, and the
        // cluster's NetworkPolicies decide what it reaches.
        "none" | "bridge" | "default" => false,
        "host" => true,
        other => {
            return Err(RunnerError::Unsupported {
                runner: "kubernetes-job",
                reason: format!("network `{other}` has no Kubernetes equivalent (none or host)"),
            });
        }
    };
    let mut container = json!({
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": argv,
        "env": env,
        "securityContext": {
            "readOnlyRootFilesystem": !action.writable_root_fs,
            "allowPrivilegeEscalation": false,
            "privileged": false,
            "runAsNonRoot": true,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    });
    let resources = resources(action);
    if !resources.is_empty() {
        container["resources"] = json!({"requests": resources, "limits": resources});
    }
    let mut volumes = Vec::new();
    if !action.writable_root_fs {
        // A read-only root still gets a scratch /tmp, like the Docker runner's tmpfs.
        container["volumeMounts"] = json!([{"name": "tmp", "mountPath": "/tmp"}]);
        volumes.push(json!({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}));
    }
    let settings = runner.settings();
    let mut pod_spec = json!({
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
        "enableServiceLinks": false,
        "automountServiceAccountToken": settings.job_service_account.is_some(),
    });
    if let Some(account) = &settings.job_service_account {
        pod_spec["serviceAccountName"] = json!(account);
    }
    if host_network {
        pod_spec["hostNetwork"] = json!(true);
        pod_spec["dnsPolicy"] = json!("ClusterFirstWithHostNet");
    }
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "activeDeadlineSeconds": whole_seconds(request.timeout),
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": whole_seconds(settings.job_ttl_after_finished),
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    });
    serde_json::from_value(job).map_err(|e| RunnerError::Engine(format!("building Job {name}: {e}")))
}

/// `{memory: "67108864", cpu: "250m"}` from the action's resources.
fn resources(action: &Action) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    if let Some(bytes) = action.memory_bytes {
        out.insert("memory", bytes.to_string());
    }
    if let Some(cpus) = action.cpus {
        out.insert("cpu", format!("{}m", ((cpus * 1000.0).round() as i64).max(1)));
    }
    out
}

fn whole_seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs().max(1)).unwrap_or(i64::MAX)
}

pub(super) async fn run(
    runner: &KubeRunner,
    request: &PhaseRequest<'_>,
    argv: &[String],
) -> Result<PhaseOutcome, RunnerError> {
    let started_at = Utc::now();
    let deadline = Instant::now() + request.timeout;
    let namespace = namespace_for(runner, request);
    let job = build_job(runner, request, argv, &namespace)?;
    let name = job.metadata.name.clone().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(runner.client().clone(), &namespace);
    let mut notes = Vec::new();

    let mut current = create_or_adopt(runner, &jobs, &job, request, deadline, &mut notes).await?;
    tracing::info!(incident = request.incident, job = %name, namespace = %namespace, "job running");

    // Poll until the Job ends or the phase's time is up.
    let mut last_error = None;
    let end = loop {
        if let Some(end) = job_end(&current) {
            break Some(end);
        }
        let now = Instant::now();
        if now >= deadline {
            break None;
        }
        tokio::time::sleep(runner.settings().poll_interval.min(deadline - now)).await;
        match jobs.get(&name).await {
            Ok(job) => current = job,
            Err(e) if is_not_found(&e) => {
                notes.push(format!("job {namespace}/{name} was deleted while it ran"));
                return Ok(outcome(
                    PhaseExit::Failed {
                        code: None,
                        reason: format!("job {name} was deleted by someone else"),
                    },
                    String::new(),
                    notes,
                    started_at,
                ));
            }
            Err(e) => last_error = Some(describe(&e)),
        }
    };
    if let Some(e) = last_error.filter(|_| end.is_none()) {
        notes.push(format!("last poll failed: {e}"));
    }

    let uid = current.metadata.uid.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(runner.client().clone(), &namespace);
    let pod = job_pod(&pods, &name, &uid, &mut notes).await;
    let container = pod.as_ref().and_then(container_state);
    let stdout = match &pod {
        Some(pod) => read_log(&pods, pod, &mut notes).await,
        None => String::new(),
    };
    delete_job(&jobs, &name, &mut notes).await;

    let exit = match &end {
        None => PhaseExit::TimedOut {
            after_ms: millis(request.timeout),
        },
        Some(JobEnd::Failed { reason, .. }) if reason == "DeadlineExceeded" => PhaseExit::TimedOut {
            after_ms: millis(request.timeout),
        },
        Some(end) => exit_of(request.phase, end, container.as_ref()),
    };
    if let (None, Some(ContainerState::Waiting { reason, message })) = (&end, &container) {
        notes.push(format!("the container never started: {reason}: {message}"));
    }
    Ok(outcome(exit, stdout, notes, started_at))
}

async fn create_or_adopt(
    runner: &KubeRunner,
    jobs: &Api<Job>,
    job: &Job,
    request: &PhaseRequest<'_>,
    deadline: Instant,
    notes: &mut Vec<String>,
) -> Result<Job, RunnerError> {
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let params = PostParams {
        dry_run: false,
        field_manager: Some(runner.settings().field_manager.clone()),
    };
    loop {
        let err = match jobs.create(&params, job).await {
            Ok(created) => return Ok(created),
            Err(err) => err,
        };
        if api_reason(&err).map(|(_, reason)| reason) != Some("AlreadyExists") {
            return Err(engine_error(&format!("creating Job {name}"), &err));
        }
        let existing = match jobs.get(name).await {
            Ok(existing) => existing,
            // Gone between the create and the get: create again.
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(engine_error(&format!("reading the existing Job {name}"), &e)),
        };
        let annotations = existing.metadata.annotations.clone().unwrap_or_default();
        let ours = |key: &str, want: &str| annotations.get(key).map(String::as_str) == Some(want);
        if !(ours(LABEL_INCIDENT, request.incident)
            && ours(LABEL_ACTION, &request.action.name)
            && ours(LABEL_PHASE, request.phase.as_str())
            && ours(LABEL_ATTEMPT, &request.attempt.to_string()))
        {
            return Err(RunnerError::Engine(format!(
                "a Job named {name} exists that rootfix did not create for this phase; not touching it"
            )));
        }
        if existing.metadata.deletion_timestamp.is_none() {
            notes.push(format!(
                "adopted Job {name}, created by an earlier run of this phase"
            ));
            return Ok(existing);
        }
        // Our Job of an earlier run, being deleted: wait until it is gone, then run anew.
        let now = Instant::now();
        if now >= deadline {
            return Err(RunnerError::Engine(format!(
                "Job {name} of an earlier run is still being deleted"
            )));
        }
        tokio::time::sleep(runner.settings().poll_interval.min(deadline - now)).await;
    }
}

/// How a Job ended, from its conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    Complete,
    Failed { reason: String, message: String },
}

pub fn job_end(job: &Job) -> Option<JobEnd> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(JobEnd::Complete),
            "Failed" => Some(JobEnd::Failed {
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            }),
            _ => None,
        })
}

/// The action container's state in its pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Terminated {
        exit_code: i32,
        reason: String,
        message: String,
    },
    Waiting {
        reason: String,
        message: String,
    },
    Running,
}

fn container_state(pod: &Pod) -> Option<ContainerState> {
    let status = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|s| s.name == CONTAINER)?;
    let state = status.state.as_ref()?;
    if let Some(t) = &state.terminated {
        return Some(ContainerState::Terminated {
            exit_code: t.exit_code,
            reason: t.reason.clone().unwrap_or_default(),
            message: t.message.clone().unwrap_or_default(),
        });
    }
    if let Some(w) = &state.waiting {
        return Some(ContainerState::Waiting {
            reason: w.reason.clone().unwrap_or_default(),
            message: w.message.clone().unwrap_or_default(),
        });
    }
    Some(ContainerState::Running)
}

/// The phase contract: exit 0 proceeds, exit 3 in a precheck is "already healthy", the rest fails.
pub fn exit_of(phase: PhaseName, end: &JobEnd, container: Option<&ContainerState>) -> PhaseExit {
    match (end, container) {
        (_, Some(ContainerState::Terminated { exit_code: 0, .. })) | (JobEnd::Complete, None) => {
            PhaseExit::Success
        }
        (_, Some(ContainerState::Terminated { exit_code, .. }))
            if phase == PhaseName::Precheck && i64::from(*exit_code) == EXIT_ALREADY_HEALTHY =>
        {
            PhaseExit::AlreadyHealthy
        }
        (
            _,
            Some(ContainerState::Terminated {
                exit_code,
                reason,
                message,
            }),
        ) => PhaseExit::Failed {
            code: Some(i64::from(*exit_code)),
            reason: match (reason.is_empty(), message.trim().is_empty()) {
                (true, _) => format!("exit {exit_code}"),
                (false, true) => format!("exit {exit_code} ({reason})"),
                (false, false) => format!("exit {exit_code} ({reason}): {}", message.trim()),
            },
        },
        (JobEnd::Failed { reason, message }, _) => PhaseExit::Failed {
            code: None,
            reason: format!("job failed without an exit code: {reason}: {message}"),
        },
        (JobEnd::Complete, Some(_)) => PhaseExit::Success,
    }
}

async fn job_pod(pods: &Api<Pod>, job: &str, job_uid: &str, notes: &mut Vec<String>) -> Option<Pod> {
    let list = match pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
    {
        Ok(list) => list,
        Err(e) => {
            notes.push(format!("listing the pods of Job {job} failed: {}", describe(&e)));
            return None;
        }
    };
    let owned = list.items.into_iter().filter(|pod| {
        pod.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Job" && o.uid == job_uid)
    });
    // backoffLimit 0: one pod; should there be more, the newest tells how the Job ended.
    let pod = owned.max_by_key(|pod| pod.metadata.creation_timestamp.clone().map(|t| t.0));
    if pod.is_none() {
        notes.push(format!("Job {job} has no pod"));
    }
    pod
}

async fn read_log(pods: &Api<Pod>, pod: &Pod, notes: &mut Vec<String>) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if matches!(container_state(pod), None | Some(ContainerState::Waiting { .. })) {
        return String::new();
    }
    let params = LogParams {
        container: Some(CONTAINER.to_string()),
        ..LogParams::default()
    };
    match pods.logs(name, &params).await {
        Ok(text) => cap_output(&text),
        Err(e) => {
            notes.push(format!("reading the log of pod {name} failed: {}", describe(&e)));
            String::new()
        }
    }
}

async fn delete_job(jobs: &Api<Job>, name: &str, notes: &mut Vec<String>) {
    match jobs.delete(name, &DeleteParams::foreground()).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            // ttlSecondsAfterFinished removes it later; the outcome stands.
            tracing::warn!(job = name, error = %describe(&e), "could not delete the Job");
            notes.push(format!("deleting Job {name} failed: {}", describe(&e)));
        }
    }
}

fn outcome(
    exit: PhaseExit,
    stdout: String,
    notes: Vec<String>,
    started_at: chrono::DateTime<Utc>,
) -> PhaseOutcome {
    PhaseOutcome {
        exit,
        stdout,
        stderr: notes.iter().map(|n| format!("rootfix: {n}\n")).collect(),
        started_at,
        finished_at: Utc::now(),
        snapshot: None,
        timing: None,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
