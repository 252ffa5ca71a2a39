//! The Kubernetes runners against the Kubernetes API contract. No cluster runs here: a mocked API
//! server sits behind a real `kube::Client` (tests/support/kube_api.rs), each test asserts every
//! request's method, path, query and body, and answers as the API server does — objects, `Status`
//! errors, `409 AlreadyExists`, `404 NotFound`.
//!
//! Each scenario is also run by `rbac_grants_exactly_the_requests_the_runners_make`, which checks
//! deploy/kubernetes/rbac.yaml against the requests the scenarios observed.

#[path = "support/kube_api.rs"]
mod kube_api;
#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kube_api::*;
use rootfix::catalog::{Catalog, Source, read_sources};
use rootfix::model::action::{Action, PhaseName};
use rootfix::runner::kubernetes::naming::job_name;
use rootfix::runner::kubernetes::snapshot::{CHANGE_ANNOTATION, Snapshot};
use rootfix::runner::kubernetes::{KubeRunner, KubeSettings};
use rootfix::runner::{PhaseExit, PhaseOutcome, PhaseRequest, Runner, RunnerError};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const INCIDENT: &str = "inc-1712345678901-0";
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Actions the shipped ones do not cover: one per native operation, and Job actions with every
/// phase and with a param that accepts anything.
const TEST_ACTIONS: &str = r#"
apiVersion: rootfix/v1
kind: Action
metadata: {name: kube-job-fix}
spec:
  purpose: fix
  runner: kubernetes-job
  image: rootfix/kube-job-fix:1
  params:
    namespace: {pattern: '[a-z0-9-]{1,63}'}
  idempotency_key: '{{ $params.namespace }}'
  resources: {memory: 64Mi, cpus: 0.25}
  phases:
    precheck: {run: [/rootfix/precheck, --mode, check], timeout: 30s}
    execute: {run: [/rootfix/execute], timeout: 1m}
    verify: {run: [/rootfix/verify], timeout: 30s}
    rollback: {run: [/rootfix/rollback], timeout: 1m}
---
apiVersion: rootfix/v1
kind: Action
metadata: {name: kube-job-anything}
spec:
  purpose: diagnostic
  runner: kubernetes-job
  image: rootfix/kube-job-anything:1
  params:
    note: {pattern: '.*'}
  writable_root_fs: true
  phases:
    execute: {run: [/rootfix/execute], timeout: 1m}
---
apiVersion: rootfix/v1
kind: Action
metadata: {name: kube-scale}
spec:
  purpose: fix
  runner: kubernetes
  params:
    namespace: {pattern: '[a-z0-9-]{1,63}'}
    deployment: {pattern: '[a-z0-9-]{1,63}'}
    replicas: {pattern: '[0-9]{1,3}'}
  idempotency_key: '{{ $params.namespace }}/{{ $params.deployment }}'
  phases:
    precheck: {operation: rollout-healthy, timeout: 30s}
    execute: {operation: scale, timeout: 5m}
    verify: {operation: rollout-healthy, timeout: 30s}
    rollback: {operation: restore-snapshot, timeout: 5m}
---
apiVersion: rootfix/v1
kind: Action
metadata: {name: kube-delete-pod}
spec:
  purpose: fix
  runner: kubernetes
  params:
    namespace: {pattern: '[a-z0-9-]{1,63}'}
    pod: {pattern: '[a-z0-9-]{1,253}'}
    deployment: {pattern: '[a-z0-9-]{1,63}', required: false}
  idempotency_key: '{{ $params.namespace }}/{{ $params.pod }}'
  phases:
    precheck: {operation: rollout-healthy, timeout: 30s}
    execute: {operation: delete-pod, timeout: 1m}
    verify: {operation: rollout-healthy, timeout: 30s}
    rollback: {operation: restore-snapshot, timeout: 2m}
---
apiVersion: rootfix/v1
kind: Action
metadata: {name: kube-patch-configmap}
spec:
  purpose: fix
  runner: kubernetes
  params:
    namespace: {pattern: '[a-z0-9-]{1,63}'}
    configmap: {pattern: '[a-z0-9.-]{1,253}'}
    patch: {pattern: '\{.*\}'}
    deployment: {pattern: '[a-z0-9-]{1,63}', required: false}
  idempotency_key: '{{ $params.namespace }}/{{ $params.configmap }}'
  phases:
    precheck: {operation: rollout-healthy, timeout: 30s}
    execute: {operation: patch-configmap, timeout: 30s}
    verify: {operation: rollout-healthy, timeout: 30s}
    rollback: {operation: restore-snapshot, timeout: 30s}
---
apiVersion: rootfix/v1
kind: Action
metadata: {name: kube-cordon}
spec:
  purpose: fix
  runner: kubernetes
  params:
    node: {pattern: '[a-z0-9.-]{1,253}'}
    # A fix's precheck and verify can only be rollout-healthy: the workload the node carries.
    namespace: {pattern: '[a-z0-9-]{1,63}', required: false}
    deployment: {pattern: '[a-z0-9-]{1,63}', required: false}
  idempotency_key: '{{ $params.node }}'
  phases:
    precheck: {operation: rollout-healthy, timeout: 30s}
    execute: {operation: cordon, timeout: 30s}
    verify: {operation: rollout-healthy, timeout: 30s}
    rollback: {operation: restore-snapshot, timeout: 30s}
---
apiVersion: rootfix/v1
kind: Action
metadata: {name: kube-uncordon}
spec:
  purpose: fix
  runner: kubernetes
  params:
    node: {pattern: '[a-z0-9.-]{1,253}'}
    # A fix's precheck and verify can only be rollout-healthy: the workload the node carries.
    namespace: {pattern: '[a-z0-9-]{1,63}', required: false}
    deployment: {pattern: '[a-z0-9-]{1,63}', required: false}
  idempotency_key: '{{ $params.node }}'
  phases:
    precheck: {operation: rollout-healthy, timeout: 30s}
    execute: {operation: uncordon, timeout: 30s}
    verify: {operation: rollout-healthy, timeout: 30s}
    rollback: {operation: restore-snapshot, timeout: 30s}
"#;

fn action(name: &str) -> Arc<Action> {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    let catalog = CATALOG.get_or_init(|| {
        let mut sources = read_sources(&[support::repo_path("actions")]).expect("shipped actions");
        for (i, doc) in TEST_ACTIONS.split("\n---\n").enumerate() {
            sources.push(Source {
                path: format!("test-action-{i}.yaml").into(),
                text: doc.to_string(),
            });
        }
        Catalog::from_sources(&sources).unwrap_or_else(|problems| {
            panic!(
                "{}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
    });
    catalog
        .actions
        .get(name)
        .unwrap_or_else(|| panic!("no action {name}"))
        .clone()
}

/// One phase to run against the mock.
struct Run {
    action: Arc<Action>,
    phase: PhaseName,
    params: BTreeMap<String, String>,
    attempt: u32,
    timeout: Duration,
    snapshot: Option<Value>,
}

impl Run {
    fn new(action_name: &str, phase: PhaseName, params: &[(&str, &str)]) -> Self {
        let action = action(action_name);
        let timeout = action.phases.get(phase).expect("phase").timeout;
        Self {
            action,
            phase,
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            attempt: 1,
            timeout,
            snapshot: None,
        }
    }

    fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn snapshot(mut self, snapshot: Option<Value>) -> Self {
        self.snapshot = snapshot;
        self
    }

    /// Runs the phase on a runner whose client is `client`, in a task of its own.
    fn start(self, client: kube::Client) -> JoinHandle<Result<PhaseOutcome, RunnerError>> {
        let runner = KubeRunner::new(client, "rootfix").with_settings(KubeSettings {
            poll_interval: Duration::from_secs(2),
            ..KubeSettings::default()
        });
        tokio::spawn(async move {
            runner
                .run_phase(PhaseRequest {
                    incident: INCIDENT,
                    action: &self.action,
                    phase: self.phase,
                    params: &self.params,
                    attempt: self.attempt,
                    timeout: self.timeout,
                    snapshot: self.snapshot.as_ref(),
                })
                .await
        })
    }
}

async fn outcome(task: JoinHandle<Result<PhaseOutcome, RunnerError>>) -> PhaseOutcome {
    finished(task).await.expect("the phase ran")
}

/// The runner's result. The clock is paused, so a runner stuck on a request the test never
/// answers makes this time out at once instead of hanging the test.
async fn finished(task: JoinHandle<Result<PhaseOutcome, RunnerError>>) -> Result<PhaseOutcome, RunnerError> {
    tokio::time::timeout(Duration::from_secs(24 * 3600), task)
        .await
        .expect("the runner is stuck waiting for an answer the test did not give")
        .expect("runner task")
}

fn env_of(job: &Value) -> BTreeMap<String, String> {
    job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The record execute wrote onto the object, from a patch body.
fn record_in(patch: &Value) -> Snapshot {
    let text = patch["metadata"]["annotations"][CHANGE_ANNOTATION]
        .as_str()
        .expect("change record in the patch");
    Snapshot::from_value(&serde_json::from_str(text).expect("record is JSON")).expect("record is a snapshot")
}

/// `object` after a patch: `patch` merged in (JSON merge patch semantics), a new resourceVersion.
fn patched(object: &Value, patch: &Value, rv: &str) -> Value {
    fn apply(target: &mut Value, patch: &Value) {
        match patch {
            Value::Object(map) => {
                if !target.is_object() {
                    *target = json!({});
                }
                let t = target.as_object_mut().unwrap();
                for (k, v) in map {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        apply(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            other => *target = other.clone(),
        }
    }
    let mut out = object.clone();
    apply(&mut out, patch);
    out["metadata"]["resourceVersion"] = json!(rv);
    out
}

const JOBS_SHOP: &str = "/apis/batch/v1/namespaces/shop/jobs";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/order-api";

/// Answers the end of a Job's life: the poll that sees it ended, its pod, its log, its delete.
async fn finish_job(
    api: &mut MockApi,
    ns: &str,
    ended: &Value,
    state: Value,
    phase: &str,
    log: Option<&str>,
) {
    let name = ended["metadata"]["name"].as_str().unwrap().to_string();
    api.expect("GET", &format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}"))
        .await
        .ok(ended.clone());
    let list = api.expect("GET", &format!("/api/v1/namespaces/{ns}/pods")).await;
    assert_eq!(
        list.query("labelSelector"),
        Some(format!("job-name={name}").as_str())
    );
    list.ok(job_pods(ended, state, phase));
    if let Some(log) = log {
        let call = api
            .expect("GET", &format!("/api/v1/namespaces/{ns}/pods/{name}-x7k2p/log"))
            .await;
        assert_eq!(call.query("container"), Some("action"));
        call.respond_text(log);
    }
    let delete = api
        .expect("DELETE", &format!("/apis/batch/v1/namespaces/{ns}/jobs/{name}"))
        .await;
    assert_eq!(delete.body["propagationPolicy"], "Foreground", "{}", delete.body);
    delete.ok(job_deleting(ended));
}

mod scenario {
    use super::*;

    /// The shipped diagnostic: create (every field that matters), poll twice, pod, log, delete.
    pub async fn job_runs_to_success() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new(
            "dump-thread-stack",
            PhaseName::Execute,
            &[("namespace", "shop"), ("deployment", "order-api")],
        )
        .start(client);
        let name = job_name(INCIDENT, "dump-thread-stack", PhaseName::Execute, 1);
        assert!(name.len() <= 63, "{name}");

        let create = api.expect("POST", JOBS_SHOP).await;
        assert_eq!(create.query("fieldManager"), Some("rootfix"));
        let job = create.body.clone();
        assert_eq!(job["kind"], "Job");
        assert_eq!(job["metadata"]["name"], name.as_str());
        assert_eq!(job["metadata"]["namespace"], "shop");
        let labels = &job["metadata"]["labels"];
        assert_eq!(labels["rootfix.io/incident"], INCIDENT);
        assert_eq!(labels["rootfix.io/action"], "dump-thread-stack");
        assert_eq!(labels["rootfix.io/phase"], "execute");
        assert_eq!(labels["rootfix.io/attempt"], "1");
        assert_eq!(job["spec"]["template"]["metadata"]["labels"], *labels);
        assert_eq!(job["spec"]["activeDeadlineSeconds"], 60, "the phase's timeout");
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 3600);
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "rootfix/dump-thread-stack:1");
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["command"], json!(["/rootfix/diagnose"]));
        assert!(c.get("args").is_none());
        let env = env_of(&job);
        assert_eq!(env["ROOTFIX_PARAM_NAMESPACE"], "shop");
        assert_eq!(env["ROOTFIX_PARAM_DEPLOYMENT"], "order-api");
        assert_eq!(env["ROOTFIX_INCIDENT"], INCIDENT);
        assert_eq!(env["ROOTFIX_ACTION"], "dump-thread-stack");
        assert_eq!(env["ROOTFIX_PHASE"], "execute");
        assert_eq!(
            c["resources"]["limits"],
            json!({"memory": "67108864", "cpu": "250m"})
        );
        assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(c["volumeMounts"], json!([{"name": "tmp", "mountPath": "/tmp"}]));

        let created = job_as_created(&job);
        create.respond(201, created.clone());
        let get = format!("{JOBS_SHOP}/{name}");
        api.expect("GET", &get).await.ok(job_running(&created));
        let log = "{\"threads\": 212, \"blocked\": 3}\n";
        finish_job(
            &mut api,
            "shop",
            &job_complete(&created),
            terminated(0, "Completed", None),
            "Succeeded",
            Some(log),
        )
        .await;

        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        assert_eq!(out.stdout, log);
        assert_eq!(out.stderr, "");
        assert_eq!(out.snapshot, None);
        api.done().await
    }

    /// A non-zero exit: Failed with the code and the container's reason and message.
    pub async fn job_failure_reports_the_exit_code() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-job-fix", PhaseName::Execute, &[("namespace", "shop")]).start(client);
        let create = api.expect("POST", JOBS_SHOP).await;
        assert_eq!(
            create.body["spec"]["template"]["spec"]["containers"][0]["command"],
            json!(["/rootfix/execute"])
        );
        let created = job_as_created(&create.body);
        create.respond(201, created.clone());
        let failed = job_failed(
            &created,
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        );
        let state = terminated(2, "Error", Some("pool still exhausted"));
        finish_job(
            &mut api,
            "shop",
            &failed,
            state,
            "Failed",
            Some("draining pool...\nerror: pool still exhausted\n"),
        )
        .await;
        let out = outcome(task).await;
        assert_eq!(
            out.exit,
            PhaseExit::Failed {
                code: Some(2),
                reason: "exit 2 (Error): pool still exhausted".into()
            }
        );
        assert!(out.stdout.ends_with("error: pool still exhausted\n"));
        api.done().await
    }

    /// Exit 3 is "already healthy" in a precheck, and an ordinary failure in any other phase.
    pub async fn job_exit_3_is_already_healthy_only_in_precheck() -> Vec<Seen> {
        let mut seen = Vec::new();
        for (phase, want) in [
            (PhaseName::Precheck, PhaseExit::AlreadyHealthy),
            (
                PhaseName::Verify,
                PhaseExit::Failed {
                    code: Some(3),
                    reason: "exit 3 (Error)".into(),
                },
            ),
        ] {
            let (client, mut api) = MockApi::new("rootfix");
            let task = Run::new("kube-job-fix", phase, &[("namespace", "shop")]).start(client);
            let create = api.expect("POST", JOBS_SHOP).await;
            let job = &create.body;
            assert_eq!(job["metadata"]["labels"]["rootfix.io/phase"], phase.as_str());
            assert_eq!(job["spec"]["activeDeadlineSeconds"], 30);
            if phase == PhaseName::Precheck {
                // The argv as written, not a shell line.
                assert_eq!(
                    job["spec"]["template"]["spec"]["containers"][0]["command"],
                    json!(["/rootfix/precheck", "--mode", "check"])
                );
            }
            let created = job_as_created(job);
            create.respond(201, created.clone());
            let failed = job_failed(
                &created,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            finish_job(
                &mut api,
                "shop",
                &failed,
                terminated(3, "Error", None),
                "Failed",
                Some(""),
            )
            .await;
            assert_eq!(outcome(task).await.exit, want, "{phase:?}");
            seen.extend(api.done().await);
        }
        seen
    }

    /// A Job that never ends: polled until the phase's timeout, then its pod is read and the
    /// Job deleted; TimedOut, with why the container never ran.
    pub async fn job_timeout_deletes_the_job() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let started = tokio::time::Instant::now();
        let task = Run::new("kube-job-fix", PhaseName::Execute, &[("namespace", "shop")]).start(client);
        let create = api.expect("POST", JOBS_SHOP).await;
        let created = job_as_created(&create.body);
        let name = created["metadata"]["name"].as_str().unwrap().to_string();
        create.respond(201, created.clone());
        let mut polls = 0;
        let list = loop {
            let call = api.next().await;
            if call.method == "GET" && call.path == format!("{JOBS_SHOP}/{name}") {
                polls += 1;
                call.ok(job_running(&created));
            } else {
                break call;
            }
        };
        assert_eq!(polls, 30, "one GET every 2 s for the 1 min timeout");
        assert_eq!(
            (list.method.as_str(), list.path.as_str()),
            ("GET", "/api/v1/namespaces/shop/pods")
        );
        let waiting = json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"rootfix/kube-job-fix:1\""}});
        list.ok(job_pods(&created, waiting, "Pending"));
        // No log to read from a container that never started: straight to the delete.
        let delete = api.expect("DELETE", &format!("{JOBS_SHOP}/{name}")).await;
        assert_eq!(delete.body["propagationPolicy"], "Foreground");
        delete.ok(job_deleting(&created));
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::TimedOut { after_ms: 60_000 });
        assert!(out.stderr.contains("ImagePullBackOff"), "{}", out.stderr);
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        api.done().await
    }

    /// The Job's own deadline (activeDeadlineSeconds) ending it counts as a timeout too.
    pub async fn job_deadline_exceeded_is_a_timeout() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-job-fix", PhaseName::Rollback, &[("namespace", "shop")]).start(client);
        let create = api.expect("POST", JOBS_SHOP).await;
        let created = job_as_created(&create.body);
        create.respond(201, created.clone());
        let failed = job_failed(
            &created,
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        );
        let state = terminated(137, "Error", None);
        finish_job(
            &mut api,
            "shop",
            &failed,
            state,
            "Failed",
            Some("rolling back...\n"),
        )
        .await;
        assert_eq!(outcome(task).await.exit, PhaseExit::TimedOut { after_ms: 60_000 });
        api.done().await
    }

    /// A restarted rootfix runs the same attempt again: the create answers 409 AlreadyExists,
    /// the Job found is ours, and it is adopted — its result read, no second Job created.
    pub async fn job_409_adopts_our_own_job() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-job-fix", PhaseName::Execute, &[("namespace", "shop")]).start(client);
        let create = api.expect("POST", JOBS_SHOP).await;
        let name = create.body["metadata"]["name"].as_str().unwrap().to_string();
        assert_eq!(
            name,
            job_name(INCIDENT, "kube-job-fix", PhaseName::Execute, 1),
            "deterministic"
        );
        let earlier = job_as_created(&create.body);
        create.respond(409, already_exists("batch", "jobs", &name));
        api.expect("GET", &format!("{JOBS_SHOP}/{name}"))
            .await
            .ok(job_complete(&earlier));
        let list = api.expect("GET", "/api/v1/namespaces/shop/pods").await;
        list.ok(job_pods(&earlier, terminated(0, "Completed", None), "Succeeded"));
        api.expect("GET", &format!("/api/v1/namespaces/shop/pods/{name}-x7k2p/log"))
            .await
            .respond_text("done\n");
        let delete = api.expect("DELETE", &format!("{JOBS_SHOP}/{name}")).await;
        assert_eq!(delete.body["propagationPolicy"], "Foreground");
        delete.ok(job_deleting(&job_complete(&earlier)));
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        assert_eq!(out.stdout, "done\n");
        assert!(out.stderr.contains("adopted Job"), "{}", out.stderr);
        api.done().await
    }

    /// Our Job of an earlier run, caught in its foreground deletion: waited out, then created anew.
    pub async fn job_409_waits_out_our_job_being_deleted() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-job-fix", PhaseName::Execute, &[("namespace", "shop")]).start(client);
        let create = api.expect("POST", JOBS_SHOP).await;
        let name = create.body["metadata"]["name"].as_str().unwrap().to_string();
        let request = create.body.clone();
        let earlier = job_as_created(&request);
        create.respond(409, already_exists("batch", "jobs", &name));
        api.expect("GET", &format!("{JOBS_SHOP}/{name}"))
            .await
            .ok(job_deleting(&job_complete(&earlier)));
        let again = api.expect("POST", JOBS_SHOP).await;
        assert_eq!(again.body, request);
        again.respond(409, already_exists("batch", "jobs", &name));
        api.expect("GET", &format!("{JOBS_SHOP}/{name}"))
            .await
            .respond(404, not_found("batch", "jobs", &name));
        let third = api.expect("POST", JOBS_SHOP).await;
        let created = job_as_created(&third.body);
        third.respond(201, created.clone());
        finish_job(
            &mut api,
            "shop",
            &job_complete(&created),
            terminated(0, "Completed", None),
            "Succeeded",
            Some("ok\n"),
        )
        .await;
        assert_eq!(outcome(task).await.exit, PhaseExit::Success);
        api.done().await
    }

    /// A Job of that name that rootfix did not create for this phase is left alone.
    pub async fn job_409_of_a_foreign_job_is_an_error() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-job-fix", PhaseName::Execute, &[("namespace", "shop")]).start(client);
        let create = api.expect("POST", JOBS_SHOP).await;
        let name = create.body["metadata"]["name"].as_str().unwrap().to_string();
        let mut foreign = job_complete(&job_as_created(&create.body));
        foreign["metadata"]["annotations"]["rootfix.io/incident"] = json!("inc-other");
        create.respond(409, already_exists("batch", "jobs", &name));
        api.expect("GET", &format!("{JOBS_SHOP}/{name}"))
            .await
            .ok(foreign);
        let err = finished(task).await.unwrap_err();
        assert!(
            matches!(&err, RunnerError::Engine(m) if m.contains("did not create")),
            "{err}"
        );
        api.done().await
    }

    /// A hostile param value reaches the Job only as an environment variable's value; an action
    /// without a namespace param runs in the default namespace; a 403 is an engine error.
    pub async fn job_params_are_only_env_values() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let hostile = "x; rm -rf /";
        let task = Run::new("kube-job-anything", PhaseName::Execute, &[("note", hostile)]).start(client);
        let create = api.expect("POST", "/apis/batch/v1/namespaces/rootfix/jobs").await;
        let job = create.body.clone();
        let c = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["command"], json!(["/rootfix/execute"]));
        assert!(c.get("args").is_none());
        assert_eq!(env_of(&job)["ROOTFIX_PARAM_NOTE"], hostile);
        assert_eq!(
            job.to_string().matches("rm -rf").count(),
            1,
            "only in the env value: {job}"
        );
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"], false,
            "writable_root_fs"
        );
        assert!(c.get("volumeMounts").is_none());
        let message = "jobs.batch is forbidden: User \"system:serviceaccount:rootfix:rootfix\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"rootfix\"";
        create.respond(403, status(403, "Forbidden", message, "batch", "jobs", ""));
        let err = finished(task).await.unwrap_err();
        assert!(
            matches!(&err, RunnerError::Engine(m) if m.contains("403 Forbidden")),
            "{err}"
        );
        api.done().await
    }

    /// rollout-restart: GET, a strategic merge patch of the template annotation like kubectl's
    /// with the change record and resourceVersion, then polls until the rollout is complete.
    pub async fn rollout_restart_patches_and_waits() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new(
            "restart-jvm-pod",
            PhaseName::Execute,
            &[("namespace", "shop"), ("deployment", "order-api")],
        )
        .start(client);
        let before = deployment(
            "shop",
            "order-api",
            3,
            json!({"prometheus.io/scrape": "true"}),
            "1001",
        );
        api.expect("GET", DEPLOYMENT).await.ok(before.clone());
        let patch = api.expect("PATCH", DEPLOYMENT).await;
        patch.assert_patch_type("strategic");
        let at = patch.body["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
            .as_str()
            .unwrap()
            .to_string();
        chrono::DateTime::parse_from_rfc3339(&at).expect("restartedAt is RFC 3339");
        assert_eq!(
            patch.body["spec"],
            json!({"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}})
        );
        assert_eq!(patch.body["metadata"]["resourceVersion"], "1001");
        let record = record_in(&patch.body);
        assert_eq!(
            record.restore,
            Some(json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: null}}}}}))
        );
        assert!(record.changed);
        let mut after = patched(&before, &patch.body, "1002");
        after["metadata"]["generation"] = json!(5);
        patch.ok(after.clone());
        after["status"] = rollout_status(5, 4, 2, 3, 3);
        api.expect("GET", DEPLOYMENT).await.ok(after.clone());
        after["status"] = rollout_status(5, 3, 3, 3, 3);
        api.expect("GET", DEPLOYMENT).await.ok(after);
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        assert!(out.stdout.contains("rollout complete: 3 of 3"), "{}", out.stdout);
        assert_eq!(out.snapshot, Some(record.to_value()));
        api.done().await
    }

    /// Snapshot → restore: rollback puts the previous restartedAt back exactly, removes the
    /// record, and waits for that rollout.
    pub async fn rollout_restart_round_trip() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let params = [("namespace", "shop"), ("deployment", "order-api")];
        let task = Run::new("restart-jvm-pod", PhaseName::Execute, &params).start(client);
        let before = deployment(
            "shop",
            "order-api",
            3,
            json!({RESTARTED_AT: "2026-02-01T00:00:00Z"}),
            "1001",
        );
        api.expect("GET", DEPLOYMENT).await.ok(before.clone());
        let patch = api.expect("PATCH", DEPLOYMENT).await;
        let mut after = patched(&before, &patch.body, "1002");
        patch.ok(after.clone()); // generation 4 = observed 4: complete at once
        let snapshot = outcome(task).await.snapshot.expect("execute returns a snapshot");
        let mut seen = api.done().await;

        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("restart-jvm-pod", PhaseName::Rollback, &params)
            .snapshot(Some(snapshot.clone()))
            .start(client);
        api.expect("GET", DEPLOYMENT).await.ok(after.clone());
        let restore = api.expect("PATCH", DEPLOYMENT).await;
        restore.assert_patch_type("strategic");
        assert_eq!(
            restore.body,
            json!({
                "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: "2026-02-01T00:00:00Z"}}}},
                "metadata": {"resourceVersion": "1002", "annotations": {CHANGE_ANNOTATION: null}},
            })
        );
        after = patched(&after, &restore.body, "1003");
        assert_eq!(
            after["spec"], before["spec"],
            "the spec is exactly as before execute"
        );
        after["metadata"]["generation"] = json!(6);
        restore.ok(after.clone());
        after["status"] = rollout_status(6, 3, 3, 3, 3);
        api.expect("GET", DEPLOYMENT).await.ok(after);
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success, "{}", out.stdout);
        assert_eq!(out.snapshot, Some(snapshot));
        seen.extend(api.done().await);
        seen
    }

    /// Execute run again for the same incident (rootfix restarted mid-phase): the record on the
    /// Deployment says it restarted already — no second restart, the first run's snapshot.
    pub async fn rollout_restart_twice_restarts_once() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let params = [("namespace", "shop"), ("deployment", "order-api")];
        let task = Run::new("restart-jvm-pod", PhaseName::Execute, &params).start(client);
        let before = deployment("shop", "order-api", 3, json!({}), "1001");
        api.expect("GET", DEPLOYMENT).await.ok(before.clone());
        let patch = api.expect("PATCH", DEPLOYMENT).await;
        let after = patched(&before, &patch.body, "1002");
        patch.ok(after.clone());
        let first = outcome(task).await.snapshot;
        let mut seen = api.done().await;

        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("restart-jvm-pod", PhaseName::Execute, &params).start(client);
        api.expect("GET", DEPLOYMENT).await.ok(after);
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        assert_eq!(out.snapshot, first, "the first run's snapshot");
        assert!(out.stdout.contains("earlier run"), "{}", out.stdout);
        seen.extend(api.done().await); // no PATCH
        seen
    }

    /// A 409 Conflict on the patch (the object changed since the read): read again, patch again
    /// with the new resourceVersion.
    pub async fn rollout_restart_retries_a_conflict() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new(
            "restart-jvm-pod",
            PhaseName::Execute,
            &[("namespace", "shop"), ("deployment", "order-api")],
        )
        .start(client);
        let before = deployment("shop", "order-api", 3, json!({}), "1001");
        api.expect("GET", DEPLOYMENT).await.ok(before.clone());
        let first = api.expect("PATCH", DEPLOYMENT).await;
        assert_eq!(first.body["metadata"]["resourceVersion"], "1001");
        first.respond(409, conflict("apps", "deployments", "order-api"));
        let newer = deployment("shop", "order-api", 3, json!({}), "1005");
        api.expect("GET", DEPLOYMENT).await.ok(newer.clone());
        let second = api.expect("PATCH", DEPLOYMENT).await;
        assert_eq!(second.body["metadata"]["resourceVersion"], "1005");
        let after = patched(&newer, &second.body, "1006");
        second.ok(after);
        assert_eq!(outcome(task).await.exit, PhaseExit::Success);
        api.done().await
    }

    /// A rollout that does not finish in the phase's time: TimedOut, and the snapshot is kept.
    pub async fn rollout_restart_timeout_keeps_the_snapshot() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new(
            "restart-jvm-pod",
            PhaseName::Execute,
            &[("namespace", "shop"), ("deployment", "order-api")],
        )
        .timeout(Duration::from_secs(10))
        .start(client);
        let before = deployment("shop", "order-api", 3, json!({}), "1001");
        api.expect("GET", DEPLOYMENT).await.ok(before.clone());
        let patch = api.expect("PATCH", DEPLOYMENT).await;
        let mut after = patched(&before, &patch.body, "1002");
        after["metadata"]["generation"] = json!(5);
        after["status"] = rollout_status(5, 4, 1, 3, 3);
        patch.ok(after.clone());
        for _ in 0..5 {
            api.expect("GET", DEPLOYMENT).await.ok(after.clone());
        }
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::TimedOut { after_ms: 10_000 });
        let snapshot = Snapshot::from_value(out.snapshot.as_ref().expect("snapshot kept")).unwrap();
        assert!(snapshot.changed);
        assert!(out.stdout.contains("1 of 3 replicas updated"), "{}", out.stdout);
        api.done().await
    }

    /// rollout-healthy, in precheck ("safe to change now?") and verify ("fully rolled out and
    /// available?"), from one GET each.
    pub async fn rollout_healthy_in_precheck_and_verify() -> Vec<Seen> {
        let healthy = deployment("shop", "order-api", 3, json!({}), "1");
        let mut unavailable = healthy.clone();
        unavailable["status"] = rollout_status(4, 3, 3, 1, 1);
        let mut in_progress = healthy.clone();
        in_progress["status"] = rollout_status(4, 4, 1, 3, 3);
        let mut unobserved = healthy.clone();
        unobserved["metadata"]["generation"] = json!(5);
        let mut paused = healthy.clone();
        paused["spec"]["paused"] = json!(true);
        let mut stuck = in_progress.clone();
        stuck["status"]["conditions"][1] = json!({
            "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"order-api-5c8f\" has timed out progressing.",
            "lastUpdateTime": "2026-03-02T09:10:00Z", "lastTransitionTime": "2026-03-02T09:10:00Z",
        });
        let cases = [
            (PhaseName::Precheck, healthy.clone(), true),
            // The symptom a restart is for: rolled out, replicas unavailable → proceed.
            (PhaseName::Precheck, unavailable.clone(), true),
            (PhaseName::Precheck, in_progress.clone(), false),
            (PhaseName::Precheck, unobserved, false),
            (PhaseName::Precheck, paused, false),
            (PhaseName::Verify, healthy, true),
            (PhaseName::Verify, unavailable, false),
            (PhaseName::Verify, in_progress, false),
            (PhaseName::Verify, stuck, false),
            (PhaseName::Verify, json!(null), false),
        ];
        let mut seen = Vec::new();
        for (phase, object, success) in cases {
            let (client, mut api) = MockApi::new("rootfix");
            let task = Run::new(
                "restart-jvm-pod",
                phase,
                &[("namespace", "shop"), ("deployment", "order-api")],
            )
            .start(client);
            let get = api.expect("GET", DEPLOYMENT).await;
            if object.is_null() {
                get.respond(404, not_found("apps", "deployments", "order-api"));
            } else {
                get.ok(object.clone());
            }
            let out = outcome(task).await;
            if success {
                assert_eq!(out.exit, PhaseExit::Success, "{phase:?} {}", out.stdout);
            } else {
                assert!(
                    matches!(out.exit, PhaseExit::Failed { code: None, .. }),
                    "{phase:?} {:?} {}",
                    out.exit,
                    object["status"]
                );
            }
            assert_eq!(out.snapshot, None);
            seen.extend(api.done().await);
        }
        seen
    }

    /// scale: patch spec.replicas, wait; rollback patches the previous count back.
    pub async fn scale_round_trip() -> Vec<Seen> {
        let params = [
            ("namespace", "shop"),
            ("deployment", "order-api"),
            ("replicas", "5"),
        ];
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-scale", PhaseName::Execute, &params).start(client);
        let before = deployment("shop", "order-api", 3, json!({}), "2001");
        api.expect("GET", DEPLOYMENT).await.ok(before.clone());
        let patch = api.expect("PATCH", DEPLOYMENT).await;
        patch.assert_patch_type("strategic");
        let record = record_in(&patch.body);
        assert_eq!(
            patch.body,
            json!({"spec": {"replicas": 5}, "metadata": {"resourceVersion": "2001", "annotations": {CHANGE_ANNOTATION: serde_json::to_string(&record).unwrap()}}})
        );
        assert_eq!(record.restore, Some(json!({"spec": {"replicas": 3}})));
        let mut after = patched(&before, &patch.body, "2002");
        after["metadata"]["generation"] = json!(5);
        patch.ok(after.clone());
        after["status"] = rollout_status(5, 5, 5, 5, 5);
        api.expect("GET", DEPLOYMENT).await.ok(after.clone());
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        let snapshot = out.snapshot.expect("snapshot");
        let mut seen = api.done().await;

        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-scale", PhaseName::Rollback, &params)
            .snapshot(Some(snapshot))
            .start(client);
        api.expect("GET", DEPLOYMENT).await.ok(after.clone());
        let restore = api.expect("PATCH", DEPLOYMENT).await;
        assert_eq!(
            restore.body,
            json!({"spec": {"replicas": 3}, "metadata": {"resourceVersion": "2002", "annotations": {CHANGE_ANNOTATION: null}}})
        );
        let mut restored = patched(&after, &restore.body, "2003");
        restore.ok(restored.clone());
        restored["status"] = rollout_status(5, 3, 3, 3, 3);
        api.expect("GET", DEPLOYMENT).await.ok(restored);
        assert_eq!(outcome(task).await.exit, PhaseExit::Success);
        seen.extend(api.done().await);
        seen
    }

    /// Scaling to the current count changes nothing, and its rollback sends no request at all.
    pub async fn scale_to_the_current_count_changes_nothing() -> Vec<Seen> {
        let params = [
            ("namespace", "shop"),
            ("deployment", "order-api"),
            ("replicas", "3"),
        ];
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-scale", PhaseName::Execute, &params).start(client);
        api.expect("GET", DEPLOYMENT)
            .await
            .ok(deployment("shop", "order-api", 3, json!({}), "2001"));
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        let snapshot = out.snapshot.expect("snapshot");
        assert_eq!(snapshot["changed"], false);
        let seen = api.done().await;

        let (client, api) = MockApi::new("rootfix");
        let task = Run::new("kube-scale", PhaseName::Rollback, &params)
            .snapshot(Some(snapshot))
            .start(client);
        assert_eq!(outcome(task).await.exit, PhaseExit::Success);
        assert!(api.done().await.is_empty());
        seen
    }

    fn replica_pod(name: &str, uid: &str, ready: bool, deleting: bool) -> Value {
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name, "namespace": "shop", "uid": uid, "resourceVersion": "5001",
                "creationTimestamp": "2026-03-01T00:00:00Z", "generateName": "order-api-7d9f8b6c5-",
                "labels": {"app": "order-api", "pod-template-hash": "7d9f8b6c5"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "order-api-7d9f8b6c5",
                    "uid": "9e3f0c1a-77aa-4e2b-8f44-1c2d3e4f5a6b", "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": {"containers": [{"name": "app", "image": "registry.example/order-api:4.2.0"}], "nodeName": "worker-3"},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2026-03-02T10:00:00Z"}]},
        });
        if deleting {
            pod["metadata"]["deletionTimestamp"] = json!("2026-03-02T10:00:30Z");
            pod["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        }
        pod
    }

    /// delete-pod: GET, DELETE with a uid precondition; rollback cannot undelete, it waits for a
    /// Ready replacement from the same ReplicaSet.
    pub async fn delete_pod_and_rollback_finds_the_replacement() -> Vec<Seen> {
        let pod_path = "/api/v1/namespaces/shop/pods/order-api-7d9f8b6c5-abcde";
        let params = [("namespace", "shop"), ("pod", "order-api-7d9f8b6c5-abcde")];
        let old_uid = "1b2c3d4e-0000-4000-8000-00000000000a";
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-delete-pod", PhaseName::Execute, &params).start(client);
        let pod = replica_pod("order-api-7d9f8b6c5-abcde", old_uid, true, false);
        api.expect("GET", pod_path).await.ok(pod.clone());
        let delete = api.expect("DELETE", pod_path).await;
        assert_eq!(delete.body, json!({"preconditions": {"uid": old_uid}}));
        delete.ok(replica_pod("order-api-7d9f8b6c5-abcde", old_uid, true, true));
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        let snapshot = out.snapshot.expect("snapshot");
        assert_eq!(
            snapshot["deletedPod"]["controller"]["name"],
            "order-api-7d9f8b6c5"
        );
        let mut seen = api.done().await;

        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-delete-pod", PhaseName::Rollback, &params)
            .snapshot(Some(snapshot))
            .start(client);
        let list_of = |items: Vec<Value>| json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "5010"}, "items": items});
        let old = replica_pod("order-api-7d9f8b6c5-abcde", old_uid, true, true);
        let new_uid = "1b2c3d4e-0000-4000-8000-00000000000b";
        for ready in [false, true] {
            let list = api.expect("GET", "/api/v1/namespaces/shop/pods").await;
            assert_eq!(
                list.query("labelSelector"),
                Some("app=order-api,pod-template-hash=7d9f8b6c5")
            );
            list.ok(list_of(vec![
                old.clone(),
                replica_pod("order-api-7d9f8b6c5-xyz12", new_uid, ready, false),
            ]));
        }
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        assert!(out.stdout.contains("order-api-7d9f8b6c5-xyz12"), "{}", out.stdout);
        seen.extend(api.done().await);
        seen
    }

    /// A pod no controller would recreate is not deleted; a pod already gone is done.
    pub async fn delete_pod_refuses_a_bare_pod_and_accepts_a_gone_one() -> Vec<Seen> {
        let pod_path = "/api/v1/namespaces/shop/pods/debug-shell";
        let params = [("namespace", "shop"), ("pod", "debug-shell")];
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-delete-pod", PhaseName::Execute, &params).start(client);
        let mut bare = replica_pod("debug-shell", "1b2c3d4e-0000-4000-8000-00000000000c", true, false);
        bare["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        api.expect("GET", pod_path).await.ok(bare);
        let out = outcome(task).await;
        assert!(
            matches!(&out.exit, PhaseExit::Failed { reason, .. } if reason.contains("no controller")),
            "{:?}",
            out.exit
        );
        assert_eq!(out.snapshot, None);
        let mut seen = api.done().await; // no DELETE

        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-delete-pod", PhaseName::Execute, &params).start(client);
        api.expect("GET", pod_path)
            .await
            .respond(404, not_found("", "pods", "debug-shell"));
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        assert_eq!(out.snapshot.expect("snapshot")["changed"], false);
        seen.extend(api.done().await);
        seen
    }

    /// patch-configmap: a JSON merge patch of data; rollback restores the keys it named (the
    /// added one removed), and only those.
    pub async fn patch_configmap_round_trip() -> Vec<Seen> {
        let path = "/api/v1/namespaces/shop/configmaps/order-api-config";
        let params = [
            ("namespace", "shop"),
            ("configmap", "order-api-config"),
            (
                "patch",
                r#"{"data": {"pool.max": "50", "pool.leak-detection": "30s"}}"#,
            ),
        ];
        let before = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "order-api-config", "namespace": "shop", "uid": "77d2c9a0-1111-4f00-9000-0000000000c1",
                "resourceVersion": "3001", "creationTimestamp": "2026-01-10T08:00:00Z"},
            "data": {"pool.max": "20", "pool.min": "5"},
        });
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-patch-configmap", PhaseName::Execute, &params).start(client);
        api.expect("GET", path).await.ok(before.clone());
        let patch = api.expect("PATCH", path).await;
        patch.assert_patch_type("merge");
        let record = record_in(&patch.body);
        assert_eq!(
            patch.body["data"],
            json!({"pool.max": "50", "pool.leak-detection": "30s"})
        );
        assert_eq!(patch.body["metadata"]["resourceVersion"], "3001");
        assert_eq!(
            record.restore,
            Some(json!({"data": {"pool.max": "20", "pool.leak-detection": null}}))
        );
        let after = patched(&before, &patch.body, "3002");
        patch.ok(after.clone());
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        let mut seen = api.done().await;

        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-patch-configmap", PhaseName::Rollback, &params)
            .snapshot(out.snapshot)
            .start(client);
        api.expect("GET", path).await.ok(after.clone());
        let restore = api.expect("PATCH", path).await;
        restore.assert_patch_type("merge");
        assert_eq!(
            restore.body,
            json!({"data": {"pool.max": "20", "pool.leak-detection": null},
                   "metadata": {"resourceVersion": "3002", "annotations": {CHANGE_ANNOTATION: null}}})
        );
        let restored = patched(&after, &restore.body, "3003");
        assert_eq!(restored["data"], before["data"]);
        restore.ok(restored);
        assert_eq!(outcome(task).await.exit, PhaseExit::Success);
        seen.extend(api.done().await);
        seen
    }

    fn node(unschedulable: Option<bool>, rv: &str) -> Value {
        let mut node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "worker-3", "uid": "5a6b7c8d-2222-4f00-9000-0000000000d1", "resourceVersion": rv,
                "creationTimestamp": "2025-12-01T00:00:00Z", "labels": {"kubernetes.io/hostname": "worker-3"}},
            "spec": {"podCIDR": "10.244.3.0/24", "providerID": "kind://docker/kind/worker-3"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "lastHeartbeatTime": "2026-03-02T10:00:00Z", "lastTransitionTime": "2025-12-01T00:00:00Z"}]},
        });
        if let Some(u) = unschedulable {
            node["spec"]["unschedulable"] = json!(u);
            if u {
                node["spec"]["taints"] = json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                    "timeAdded": "2026-03-02T10:00:00Z"}]);
            }
        }
        node
    }

    /// cordon and uncordon, each with its rollback: the previous unschedulable put back (or
    /// removed, when it was unset).
    pub async fn cordon_and_uncordon_round_trips() -> Vec<Seen> {
        let path = "/api/v1/nodes/worker-3";
        let mut seen = Vec::new();
        for (action, before, wanted, previous) in [
            ("kube-cordon", node(None, "4001"), true, Value::Null),
            ("kube-uncordon", node(Some(true), "4001"), false, json!(true)),
        ] {
            let (client, mut api) = MockApi::new("rootfix");
            let task = Run::new(action, PhaseName::Execute, &[("node", "worker-3")]).start(client);
            api.expect("GET", path).await.ok(before.clone());
            let patch = api.expect("PATCH", path).await;
            patch.assert_patch_type("strategic");
            assert_eq!(patch.body["spec"], json!({"unschedulable": wanted}), "{action}");
            assert_eq!(patch.body["metadata"]["resourceVersion"], "4001");
            assert_eq!(
                record_in(&patch.body).restore,
                Some(json!({"spec": {"unschedulable": previous}}))
            );
            let after = patched(&before, &patch.body, "4002");
            patch.ok(after.clone());
            let out = outcome(task).await;
            assert_eq!(out.exit, PhaseExit::Success);
            seen.extend(api.done().await);

            let (client, mut api) = MockApi::new("rootfix");
            let task = Run::new(action, PhaseName::Rollback, &[("node", "worker-3")])
                .snapshot(out.snapshot)
                .start(client);
            api.expect("GET", path).await.ok(after.clone());
            let restore = api.expect("PATCH", path).await;
            restore.assert_patch_type("strategic");
            assert_eq!(
                restore.body,
                json!({"spec": {"unschedulable": previous}, "metadata": {"resourceVersion": "4002", "annotations": {CHANGE_ANNOTATION: null}}})
            );
            let restored = patched(&after, &restore.body, "4003");
            assert_eq!(
                restored["spec"]["unschedulable"], before["spec"]["unschedulable"],
                "{action}"
            );
            restore.ok(restored);
            assert_eq!(outcome(task).await.exit, PhaseExit::Success);
            seen.extend(api.done().await);
        }
        seen
    }

    /// Cordoning a node someone else cordoned changes nothing, so rollback will not uncordon it.
    pub async fn cordon_of_a_cordoned_node_changes_nothing() -> Vec<Seen> {
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-cordon", PhaseName::Execute, &[("node", "worker-3")]).start(client);
        api.expect("GET", "/api/v1/nodes/worker-3")
            .await
            .ok(node(Some(true), "4001"));
        let out = outcome(task).await;
        assert_eq!(out.exit, PhaseExit::Success);
        let snapshot = out.snapshot.expect("snapshot");
        assert_eq!(snapshot["changed"], false);
        let seen = api.done().await;
        let (client, api) = MockApi::new("rootfix");
        let task = Run::new("kube-cordon", PhaseName::Rollback, &[("node", "worker-3")])
            .snapshot(Some(snapshot))
            .start(client);
        assert_eq!(outcome(task).await.exit, PhaseExit::Success);
        assert!(api.done().await.is_empty());
        seen
    }

    /// Rollback without a snapshot (rootfix died during execute, the journal has none): the
    /// record on the Deployment is this incident's, so it is restored from there.
    pub async fn rollback_without_snapshot_uses_the_record_on_the_object() -> Vec<Seen> {
        let params = [("namespace", "shop"), ("deployment", "order-api")];
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("restart-jvm-pod", PhaseName::Execute, &params).start(client);
        let before = deployment("shop", "order-api", 3, json!({}), "1001");
        api.expect("GET", DEPLOYMENT).await.ok(before.clone());
        let patch = api.expect("PATCH", DEPLOYMENT).await;
        let after = patched(&before, &patch.body, "1002");
        patch.ok(after.clone());
        outcome(task).await;
        let mut seen = api.done().await;

        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("restart-jvm-pod", PhaseName::Rollback, &params).start(client);
        api.expect("GET", DEPLOYMENT).await.ok(after.clone()); // find the record
        api.expect("GET", DEPLOYMENT).await.ok(after.clone()); // read before the restore
        let restore = api.expect("PATCH", DEPLOYMENT).await;
        assert_eq!(
            restore.body["spec"],
            json!({"template": {"metadata": {"annotations": {RESTARTED_AT: null}}}})
        );
        let restored = patched(&after, &restore.body, "1003");
        assert_eq!(restored["spec"], before["spec"]);
        restore.ok(restored.clone());
        api.expect("GET", DEPLOYMENT).await.ok(restored);
        assert_eq!(outcome(task).await.exit, PhaseExit::Success);
        seen.extend(api.done().await);
        seen
    }

    /// A rollback does not restore over a later change by another incident.
    pub async fn rollback_refuses_over_another_incidents_change() -> Vec<Seen> {
        let params = [
            ("namespace", "shop"),
            ("deployment", "order-api"),
            ("replicas", "5"),
        ];
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-scale", PhaseName::Execute, &params).start(client);
        let before = deployment("shop", "order-api", 3, json!({}), "2001");
        api.expect("GET", DEPLOYMENT).await.ok(before.clone());
        let patch = api.expect("PATCH", DEPLOYMENT).await;
        let mut after = patched(&before, &patch.body, "2002");
        after["status"] = rollout_status(4, 5, 5, 5, 5);
        patch.ok(after.clone());
        let ours = outcome(task).await.snapshot;
        let mut seen = api.done().await;

        let mut theirs: Value = serde_json::from_str(
            after["metadata"]["annotations"][CHANGE_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        theirs["incident"] = json!("inc-1712349999999-0");
        let mut later = after.clone();
        later["spec"]["replicas"] = json!(8);
        later["metadata"]["annotations"][CHANGE_ANNOTATION] = json!(theirs.to_string());
        let (client, mut api) = MockApi::new("rootfix");
        let task = Run::new("kube-scale", PhaseName::Rollback, &params)
            .snapshot(ours)
            .start(client);
        api.expect("GET", DEPLOYMENT).await.ok(later);
        let out = outcome(task).await;
        assert!(
            matches!(&out.exit, PhaseExit::Failed { reason, .. } if reason.contains("inc-1712349999999-0")),
            "{:?}",
            out.exit
        );
        seen.extend(api.done().await); // no PATCH
        seen
    }
}

/// Every scenario is a test of its own, and all of them feed the RBAC check.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(start_paused = true)]
            async fn $name() {
                scenario::$name().await;
            }
        )*

        async fn every_scenario() -> Vec<Seen> {
            let mut seen = Vec::new();
            $( seen.extend(scenario::$name().await); )*
            seen
        }
    };
}

scenarios!(
    job_runs_to_success,
    job_failure_reports_the_exit_code,
    job_exit_3_is_already_healthy_only_in_precheck,
    job_timeout_deletes_the_job,
    job_deadline_exceeded_is_a_timeout,
    job_409_adopts_our_own_job,
    job_409_waits_out_our_job_being_deleted,
    job_409_of_a_foreign_job_is_an_error,
    job_params_are_only_env_values,
    rollout_restart_patches_and_waits,
    rollout_restart_round_trip,
    rollout_restart_twice_restarts_once,
    rollout_restart_retries_a_conflict,
    rollout_restart_timeout_keeps_the_snapshot,
    rollout_healthy_in_precheck_and_verify,
    scale_round_trip,
    scale_to_the_current_count_changes_nothing,
    delete_pod_and_rollback_finds_the_replacement,
    delete_pod_refuses_a_bare_pod_and_accepts_a_gone_one,
    patch_configmap_round_trip,
    cordon_and_uncordon_round_trips,
    cordon_of_a_cordoned_node_changes_nothing,
    rollback_without_snapshot_uses_the_record_on_the_object,
    rollback_refuses_over_another_incidents_change,
);

// ---------------------------------------------------------------------------------------------
// RBAC: deploy/kubernetes/rbac.yaml grants exactly what the scenarios requested.

/// One permission: `verb` on `resource` (`pods/log` for a subresource) of `group`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Grant {
    group: String,
    resource: String,
    verb: String,
}

/// The permission a request needs, and whether its resource is cluster-scoped.
fn grant_of(seen: &Seen) -> (Grant, bool) {
    let segments: Vec<&str> = seen.path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("not an API path: {}", seen.path),
    };
    let (cluster_scoped, rest) = match rest {
        ["namespaces", _ns, rest @ ..] if !rest.is_empty() => (false, rest),
        rest => (true, rest),
    };
    let (resource, named) = match rest {
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, sub] => (format!("{resource}/{sub}"), true),
        _ => panic!("unexpected path {}", seen.path),
    };
    let verb = match (seen.method.as_str(), named) {
        ("GET", true) => "get",
        ("GET", false) if seen.query.get("watch").map(String::as_str) == Some("true") => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("POST", true) => "create", // a subresource such as pods/eviction
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => panic!("unexpected method {m}"),
    };
    (
        Grant {
            group: group.to_string(),
            resource,
            verb: verb.to_string(),
        },
        cluster_scoped,
    )
}

fn rbac_documents() -> Vec<Value> {
    let text = std::fs::read_to_string(support::repo_path("deploy/kubernetes/rbac.yaml")).expect("rbac.yaml");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).expect("YAML")).expect("JSON"))
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize;

fn grants_of_role(role: &Value) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(
            rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(),
            "{rule}"
        );
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    for v in [group, resource, verb] {
                        assert_ne!(v.as_str(), Some("*"), "no wildcards: {rule}");
                    }
                    out.insert(Grant {
                        group: group.as_str().unwrap().into(),
                        resource: resource.as_str().unwrap().into(),
                        verb: verb.as_str().unwrap().into(),
                    });
                }
            }
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn rbac_grants_exactly_the_requests_the_runners_make() {
    let seen = every_scenario().await;
    let mut cluster_requests = BTreeSet::new();
    let mut namespaced_requests = BTreeSet::new();
    for s in &seen {
        let (grant, cluster_scoped) = grant_of(s);
        if cluster_scoped {
            cluster_requests.insert(grant)
        } else {
            namespaced_requests.insert(grant)
        };
    }

    let docs = rbac_documents();
    let role = |kind: &str, name: &str| -> Value {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("rbac.yaml has no {kind} {name}"))
            .clone()
    };
    let mut cluster_grants = BTreeSet::new();
    let mut namespaced_grants = BTreeSet::new();
    let mut role_bindings = 0;
    for binding in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding" || d["kind"] == "RoleBinding")
    {
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "rootfix", "namespace": "rootfix"}]),
            "every binding is for rootfix's service account: {binding}"
        );
        let role = role(
            binding["roleRef"]["kind"].as_str().unwrap(),
            binding["roleRef"]["name"].as_str().unwrap(),
        );
        if binding["kind"] == "ClusterRoleBinding" {
            cluster_grants.extend(grants_of_role(&role));
        } else {
            role_bindings += 1;
            // Every namespace rootfix acts in gets the same grants.
            assert_eq!(
                binding["roleRef"],
                json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "rootfix-runner"})
            );
            namespaced_grants = grants_of_role(&role);
        }
    }
    assert!(role_bindings >= 1, "no RoleBinding");
    // No more, no less: a grant no request needs is a finding, and so is a request not granted.
    assert_eq!(
        namespaced_grants, namespaced_requests,
        "namespaced grants (ClusterRole rootfix-runner) vs requests"
    );
    assert_eq!(
        cluster_grants, cluster_requests,
        "cluster-wide grants vs cluster-scoped requests"
    );
    // Nothing namespaced is granted cluster-wide.
    assert!(
        cluster_grants.iter().all(|g| g.resource == "nodes"),
        "{cluster_grants:?}"
    );
}

/// With `job_service_account` set, the Job's pod runs as that account with its token mounted
/// (dump-thread-stack needs the API); by default it gets no token at all. Pure: no request.
#[tokio::test]
async fn jobs_run_without_an_api_token_unless_an_account_is_configured() {
    use rootfix::runner::kubernetes::job::build_job;
    let action = action("dump-thread-stack");
    let params: BTreeMap<String, String> = [("namespace", "shop"), ("deployment", "order-api")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    let request = PhaseRequest {
        incident: INCIDENT,
        action: &action,
        phase: PhaseName::Execute,
        params: &params,
        attempt: 2,
        timeout: Duration::from_secs(90),
        snapshot: None,
    };
    let argv = ["/rootfix/diagnose".to_string()];
    let (client, _api) = MockApi::new("rootfix");
    let plain = KubeRunner::new(client.clone(), "rootfix");
    let job = serde_json::to_value(build_job(&plain, &request, &argv, "shop").unwrap()).unwrap();
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(pod.get("serviceAccountName").is_none());
    assert_eq!(
        job["metadata"]["name"],
        job_name(INCIDENT, "dump-thread-stack", PhaseName::Execute, 2).as_str()
    );
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 90);
    let with_account = KubeRunner::new(client, "rootfix").with_settings(KubeSettings {
        job_service_account: Some("rootfix-action".into()),
        job_ttl_after_finished: Duration::from_secs(600),
        ..KubeSettings::default()
    });
    let job = serde_json::to_value(build_job(&with_account, &request, &argv, "shop").unwrap()).unwrap();
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["serviceAccountName"], "rootfix-action");
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 600);
}

#[test]
fn grant_of_maps_paths_and_methods_to_rbac_verbs() {
    let seen = |method: &str, path: &str, query: &[(&str, &str)]| Seen {
        method: method.into(),
        path: path.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let g = |group: &str, resource: &str, verb: &str| Grant {
        group: group.into(),
        resource: resource.into(),
        verb: verb.into(),
    };
    assert_eq!(
        grant_of(&seen("POST", "/apis/batch/v1/namespaces/a/jobs", &[])),
        (g("batch", "jobs", "create"), false)
    );
    assert_eq!(
        grant_of(&seen("GET", "/api/v1/namespaces/a/pods/p/log", &[])),
        (g("", "pods/log", "get"), false)
    );
    assert_eq!(
        grant_of(&seen("GET", "/api/v1/namespaces/a/pods", &[])),
        (g("", "pods", "list"), false)
    );
    assert_eq!(
        grant_of(&seen("GET", "/api/v1/namespaces/a/pods", &[("watch", "true")])),
        (g("", "pods", "watch"), false)
    );
    assert_eq!(
        grant_of(&seen("PATCH", "/api/v1/nodes/n", &[])),
        (g("", "nodes", "patch"), true)
    );
    assert_eq!(
        grant_of(&seen("DELETE", "/apis/apps/v1/namespaces/a/deployments/d", &[])),
        (g("apps", "deployments", "delete"), false)
    );
}

/// kube's rustls needs a crypto provider; with the `ring` feature (and no aws-lc) a client for an
/// HTTPS cluster builds, and the process provider is ring's.
#[tokio::test]
async fn a_client_for_an_https_cluster_builds_on_rustls_with_ring() {
    let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
    let client = kube::Client::try_from(config).expect("client");
    drop(client);
    let provider =
        rustls::crypto::CryptoProvider::get_default().expect("a process-wide provider was installed");
    // rustls names its providers' key providers `Ring` and `AwsLcRs`.
    assert_eq!(format!("{:?}", provider.key_provider), "Ring");
    assert_eq!(format!("{:?}", provider.secure_random), "Ring");
}
