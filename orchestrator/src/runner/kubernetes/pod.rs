//! `delete-pod` (execute) and what its rollback can honestly do.
//!
//! execute: `GET /api/v1/namespaces/{ns}/pods/{name}`, then `DELETE` it with a `uid`
//! precondition (exactly the pod read, never a same-named successor) and the pod's own grace
//! period. Only a pod that a controller (ReplicaSet, StatefulSet, DaemonSet, Job) will recreate
//! is deleted; a bare pod is refused, since nothing could bring it back. A pod already gone
//! counts as done (`changed: false`).
//!
//! rollback cannot undelete a pod. What it does is check that the controller made up for it:
//! `GET /api/v1/namespaces/{ns}/pods?labelSelector=...` (the deleted pod's labels) every poll
//! interval until a pod owned by the same controller, other than the deleted one, is Ready —
//! Success — or the phase's time is up — TimedOut, which pages a human.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Preconditions};

use super::native::{Ctx, Report, poll_error};
use super::snapshot::{Controller, DeletedPod, Snapshot, Target};
use super::{api_reason, engine_error, is_not_found};
use crate::runner::{PhaseExit, RunnerError};

/// Labels that name one pod rather than its controller's pods.
const POD_SPECIFIC_LABELS: [&str; 4] = [
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "controller-revision-hash",
    "pod-template-generation",
];

pub(super) async fn delete(ctx: &Ctx<'_, '_>) -> Result<Report, RunnerError> {
    let namespace = ctx.param("namespace")?.to_string();
    let name = ctx.param("pod")?.to_string();
    let target = Target::Pod {
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let what = target.describe();
    let api: Api<Pod> = Api::namespaced(ctx.client(), &namespace);
    let pod = match api.get(&name).await {
        Ok(pod) => pod,
        Err(e) if is_not_found(&e) => {
            let mut report = Report::new(
                PhaseExit::Success,
                format!("{what}: already gone, nothing deleted"),
            );
            report.snapshot = Some(ctx.new_snapshot(target, false, None));
            return Ok(report);
        }
        Err(e) => return Err(engine_error(&format!("reading {what}"), &e)),
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let Some(owner) = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    else {
        return Ok(Report::failed(format!(
            "{what} has no controller that would recreate it; not deleting a pod nothing can bring back"
        )));
    };
    let mut snapshot = ctx.new_snapshot(target, true, None);
    snapshot.deleted_pod = Some(DeletedPod {
        uid: uid.clone(),
        controller: Controller {
            kind: owner.kind.clone(),
            name: owner.name.clone(),
            uid: owner.uid.clone(),
        },
        labels: pod
            .metadata
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !POD_SPECIFIC_LABELS.contains(&k.as_str()))
            .collect::<BTreeMap<_, _>>(),
    });
    let line = if pod.metadata.deletion_timestamp.is_some() {
        format!("{what}: already being deleted")
    } else {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => format!("{what}: deleted; {} {} will replace it", owner.kind, owner.name),
            Err(e) if is_not_found(&e) => format!("{what}: gone before the delete"),
            // The uid precondition failed: the pod of that name is already a successor.
            Err(e) if api_reason(&e).map(|(code, _)| code) == Some(409) => {
                format!("{what}: already replaced by a pod of the same name")
            }
            Err(e) => return Err(engine_error(&format!("deleting {what}"), &e)),
        }
    };
    let mut report = Report::new(PhaseExit::Success, line);
    report.snapshot = Some(snapshot);
    Ok(report)
}

/// Rollback of delete-pod: waits for a Ready replacement from the same controller.
pub(super) async fn verify_replacement(
    ctx: &Ctx<'_, '_>,
    snapshot: &Snapshot,
) -> Result<Report, RunnerError> {
    let (Target::Pod { namespace, name }, Some(deleted)) = (&snapshot.target, &snapshot.deleted_pod) else {
        return Ok(Report::failed("the snapshot does not name the deleted pod"));
    };
    let api: Api<Pod> = Api::namespaced(ctx.client(), namespace);
    let selector = deleted
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let params = ListParams::default().labels(&selector);
    let controller = format!("{} {}", deleted.controller.kind, deleted.controller.name);
    let mut last = format!("no pod of {controller} besides the deleted {name} yet");
    loop {
        match api.list(&params).await {
            Ok(list) => {
                let replacements: Vec<&Pod> = list
                    .items
                    .iter()
                    .filter(|p| p.metadata.uid.as_deref() != Some(deleted.uid.as_str()))
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .filter(|p| {
                        p.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|o| o.controller == Some(true) && o.uid == deleted.controller.uid)
                    })
                    .collect();
                if let Some(ready) = replacements.iter().find(|p| is_ready(p)) {
                    let ready_name = ready.metadata.name.clone().unwrap_or_default();
                    return Ok(Report::new(
                        PhaseExit::Success,
                        format!(
                            "pod {namespace}/{name} cannot be undeleted; {controller} replaced it with {ready_name}, which is Ready"
                        ),
                    ));
                }
                if let Some(p) = replacements.first() {
                    last = format!(
                        "replacement {} is not Ready yet",
                        p.metadata.name.clone().unwrap_or_default()
                    );
                }
            }
            Err(e) => last = poll_error(&format!("the pods of {controller}"), &e),
        }
        if !ctx.wait_a_poll().await {
            return Ok(Report {
                exit: ctx.timed_out(),
                lines: vec![format!(
                    "pod {namespace}/{name} was deleted and has no Ready replacement: {last}"
                )],
                snapshot: None,
            });
        }
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
