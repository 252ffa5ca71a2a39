//! A mocked Kubernetes API server behind a real `kube::Client` (kube's own testing pattern:
//! `tower_test::mock::pair`), and the objects a real API server answers with.
//!
//! Every request the client sends arrives at [`MockApi::next`] as a [`Call`]: the test asserts
//! its method, path, query and JSON body, then answers with a status code and a JSON body.
//! Every call is also recorded ([`MockApi::seen`]) for the RBAC test, which checks that
//! `deploy/kubernetes/rbac.yaml` grants exactly the requests the runners make.
#![allow(dead_code)]

use std::collections::BTreeMap;

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle, SendResponse};

/// One request as the RBAC check sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
}

pub struct MockApi {
    handle: Handle<Request<Body>, Response<Body>>,
    pub seen: Vec<Seen>,
}

/// A request waiting for its answer.
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The body parsed as JSON (`Value::Null` when empty).
    pub body: Value,
    send: SendResponse<Response<Body>>,
}

impl MockApi {
    /// A client whose requests arrive here; `default` is the client's default namespace.
    pub fn new(default: &str) -> (kube::Client, MockApi) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        (
            kube::Client::new(service, default),
            MockApi {
                handle,
                seen: Vec::new(),
            },
        )
    }

    /// The next request; panics when the client is gone without sending one.
    pub async fn next(&mut self) -> Call {
        let (request, send) = self
            .handle
            .next_request()
            .await
            .expect("the runner ended without sending the request the test expected");
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("request body is not JSON ({e}): {bytes:?}"))
        };
        let query: BTreeMap<String, String> =
            url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        let call = Call {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query,
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap_or_default().to_string()),
            body,
            send,
        };
        self.seen.push(Seen {
            method: call.method.clone(),
            path: call.path.clone(),
            query: call.query.clone(),
        });
        call
    }

    /// The next request, which must be `method path`.
    pub async fn expect(&mut self, method: &str, path: &str) -> Call {
        let call = self.next().await;
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            (method, path),
            "unexpected request (query {:?}, body {})",
            call.query,
            call.body
        );
        call
    }

    /// Asserts the client sent nothing more (it has been dropped with the runner).
    pub async fn done(mut self) -> Vec<Seen> {
        if let Some((request, _)) = self.handle.next_request().await {
            panic!(
                "unexpected further request {} {}",
                request.method(),
                request.uri()
            );
        }
        self.seen
    }
}

impl Call {
    pub fn respond(self, status: u16, body: Value) {
        let response = Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        self.send.send_response(response);
    }

    pub fn respond_text(self, text: &str) {
        let response = Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "text/plain")
            .body(Body::from(text.as_bytes().to_vec()))
            .unwrap();
        self.send.send_response(response);
    }

    pub fn ok(self, body: Value) {
        self.respond(200, body);
    }

    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// Asserts the patch's content type (`strategic`, `merge`).
    pub fn assert_patch_type(&self, kind: &str) {
        let want = match kind {
            "strategic" => "application/strategic-merge-patch+json",
            "merge" => "application/merge-patch+json",
            other => panic!("unknown patch type {other}"),
        };
        assert_eq!(self.content_type.as_deref(), Some(want), "patch type");
        assert_eq!(self.query("fieldManager"), Some("rootfix"), "fieldManager");
    }
}

// ---------------------------------------------------------------------------------------------
// What the API server answers: Status objects for errors, and objects as it returns them.

/// A `Status` error, as the API server sends it (`kind`, `group` as in `details`).
pub fn status(code: u16, reason: &str, message: &str, group: &str, kind: &str, name: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "group": group, "kind": kind},
        "code": code,
    })
}

pub fn not_found(group: &str, kind: &str, name: &str) -> Value {
    let resource = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    status(
        404,
        "NotFound",
        &format!("{resource} \"{name}\" not found"),
        group,
        kind,
        name,
    )
}

pub fn already_exists(group: &str, kind: &str, name: &str) -> Value {
    let resource = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    status(
        409,
        "AlreadyExists",
        &format!("{resource} \"{name}\" already exists"),
        group,
        kind,
        name,
    )
}

pub fn conflict(group: &str, kind: &str, name: &str) -> Value {
    let resource = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
        group,
        kind,
        name,
    )
}

pub const JOB_UID: &str = "6f1b7c2e-0a4d-4b8e-9a55-3c0f3a1d2e11";
pub const CREATED: &str = "2026-03-02T10:00:00Z";

/// The Job the API server returns for a create: the request plus what the server adds
/// (uid, resourceVersion, the controller-uid selector and labels, defaults, empty status).
pub fn job_as_created(request: &Value) -> Value {
    let mut job = request.clone();
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    let meta = job["metadata"].as_object_mut().unwrap();
    meta.insert("uid".into(), json!(JOB_UID));
    meta.insert("resourceVersion".into(), json!("48213"));
    meta.insert("generation".into(), json!(1));
    meta.insert("creationTimestamp".into(), json!(CREATED));
    let spec = job["spec"].as_object_mut().unwrap();
    spec.insert("parallelism".into(), json!(1));
    spec.insert("completions".into(), json!(1));
    spec.insert("completionMode".into(), json!("NonIndexed"));
    spec.insert("suspend".into(), json!(false));
    spec.insert("podReplacementPolicy".into(), json!("TerminatingOrFailed"));
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": JOB_UID}}),
    );
    let labels = job["spec"]["template"]["metadata"]["labels"]
        .as_object_mut()
        .unwrap();
    labels.insert("batch.kubernetes.io/controller-uid".into(), json!(JOB_UID));
    labels.insert("batch.kubernetes.io/job-name".into(), json!(name));
    labels.insert("controller-uid".into(), json!(JOB_UID));
    labels.insert("job-name".into(), json!(name));
    job["status"] = json!({});
    job
}

/// `job` while its pod runs.
pub fn job_running(job: &Value) -> Value {
    let mut job = job.clone();
    job["metadata"]["resourceVersion"] = json!("48220");
    job["status"] = json!({
        "startTime": CREATED, "active": 1, "ready": 1, "terminating": 0,
        "uncountedTerminatedPods": {},
    });
    job
}

/// `job` after its pod exited 0.
pub fn job_complete(job: &Value) -> Value {
    let mut job = job.clone();
    job["metadata"]["resourceVersion"] = json!("48240");
    job["status"] = json!({
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods",
             "lastProbeTime": "2026-03-02T10:00:07Z", "lastTransitionTime": "2026-03-02T10:00:07Z"},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached",
             "message": "Reached expected number of succeeded pods",
             "lastProbeTime": "2026-03-02T10:00:07Z", "lastTransitionTime": "2026-03-02T10:00:07Z"},
        ],
        "startTime": CREATED, "completionTime": "2026-03-02T10:00:07Z",
        "succeeded": 1, "terminating": 0, "ready": 0, "uncountedTerminatedPods": {},
    });
    job
}

/// `job` after its pod exited non-zero (backoffLimit 0).
pub fn job_failed(job: &Value, reason: &str, message: &str) -> Value {
    let mut job = job.clone();
    job["metadata"]["resourceVersion"] = json!("48241");
    job["status"] = json!({
        "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": reason, "message": message,
             "lastProbeTime": "2026-03-02T10:00:07Z", "lastTransitionTime": "2026-03-02T10:00:07Z"},
            {"type": "Failed", "status": "True", "reason": reason, "message": message,
             "lastProbeTime": "2026-03-02T10:00:07Z", "lastTransitionTime": "2026-03-02T10:00:07Z"},
        ],
        "startTime": CREATED, "failed": 1, "terminating": 0, "ready": 0,
        "uncountedTerminatedPods": {},
    });
    job
}

/// `job` as the foreground delete returns it: still there, with the foregroundDeletion finalizer.
pub fn job_deleting(job: &Value) -> Value {
    let mut job = job.clone();
    job["metadata"]["deletionTimestamp"] = json!("2026-03-02T10:00:09Z");
    job["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    job["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
    job
}

/// The container state of the Job's pod (`{"terminated": {...}}` etc.).
pub fn terminated(exit_code: i32, reason: &str, message: Option<&str>) -> Value {
    let mut t = json!({
        "exitCode": exit_code, "reason": reason,
        "startedAt": "2026-03-02T10:00:02Z", "finishedAt": "2026-03-02T10:00:06Z",
        "containerID": "containerd://9a1c0d55e2",
    });
    if let Some(m) = message {
        t["message"] = json!(m);
    }
    json!({"terminated": t})
}

/// A PodList holding the one pod of `job`, its `action` container in `state`.
pub fn job_pods(job: &Value, state: Value, phase: &str) -> Value {
    let name = job["metadata"]["name"].as_str().unwrap();
    let ns = job["metadata"]["namespace"].as_str().unwrap();
    let pod = json!({
        "metadata": {
            "name": format!("{name}-x7k2p"),
            "generateName": format!("{name}-"),
            "namespace": ns,
            "uid": "0c8d1c7e-5b1e-4c55-9d3a-7b9e7e2f4a10",
            "resourceVersion": "48230",
            "creationTimestamp": "2026-03-02T10:00:01Z",
            "labels": {
                "batch.kubernetes.io/controller-uid": JOB_UID,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": JOB_UID,
                "job-name": name,
            },
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": JOB_UID,
                "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": job["spec"]["template"]["spec"].clone(),
        "status": {
            "phase": phase,
            "containerStatuses": [{
                "name": "action",
                "state": state,
                "lastState": {},
                "ready": false,
                "restartCount": 0,
                "image": job["spec"]["template"]["spec"]["containers"][0]["image"],
                "imageID": "",
                "started": false,
            }],
        },
    });
    json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "48250"}, "items": [pod]})
}

/// A Deployment as the API server returns it.
pub fn deployment(ns: &str, name: &str, replicas: i32, template_annotations: Value, rv: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name, "namespace": ns, "uid": "3d5b1a7e-2f64-4f7c-8c1d-6a2b9e0c4d21",
            "resourceVersion": rv, "generation": 4, "creationTimestamp": "2026-01-10T08:00:00Z",
            "labels": {"app": name},
            "annotations": {"deployment.kubernetes.io/revision": "4"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": template_annotations},
                "spec": {"containers": [{"name": "app", "image": "registry.example/order-api:4.2.0"}]},
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": rollout_status(4, replicas, replicas, replicas, replicas),
    })
}

/// A Deployment's status (`observedGeneration`, `replicas`, `updatedReplicas`, `availableReplicas`).
pub fn rollout_status(observed: i64, total: i32, updated: i32, ready: i32, available: i32) -> Value {
    json!({
        "observedGeneration": observed,
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (total - available).max(0),
        "conditions": [
            {"type": "Available", "status": if available > 0 { "True" } else { "False" },
             "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.",
             "lastUpdateTime": "2026-03-02T09:00:00Z", "lastTransitionTime": "2026-03-02T09:00:00Z"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": "ReplicaSet \"order-api-7d9f8b6c5\" has successfully progressed.",
             "lastUpdateTime": "2026-03-02T09:00:00Z", "lastTransitionTime": "2026-03-02T09:00:00Z"},
        ],
    })
}
