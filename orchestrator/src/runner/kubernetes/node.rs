//! `cordon` and `uncordon` (execute): a Node's `spec.unschedulable`, as `kubectl cordon` sets it.
//!
//! Requests: `GET` and `PATCH /api/v1/nodes/{name}` (strategic merge patch). A node already in
//! the wanted state is not patched (`changed: false`), so rollback will not undo someone else's
//! cordon. The snapshot restores the previous value (or removes the field, which was unset).
//! Cordoning does not evict anything; draining is not a rootfix operation.

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use serde_json::{Value, json};

use super::native::{Changed, Ctx, PatchKind, Plan, Report, change_object};
use super::snapshot::Target;
use crate::runner::{PhaseExit, RunnerError};

pub(super) async fn set_unschedulable(ctx: &Ctx<'_, '_>, unschedulable: bool) -> Result<Report, RunnerError> {
    let name = ctx.param("node")?.to_string();
    let target = Target::Node { name };
    let api: Api<Node> = Api::all(ctx.client());
    let changed = change_object(ctx, &api, target.clone(), PatchKind::Strategic, |node, _| {
        let current = node
            .pointer("/spec/unschedulable")
            .cloned()
            .unwrap_or(Value::Null);
        let effective = current.as_bool().unwrap_or(false);
        Ok(Plan {
            restore: json!({"spec": {"unschedulable": current}}),
            change: (effective != unschedulable).then(|| json!({"spec": {"unschedulable": unschedulable}})),
        })
    })
    .await?;
    Ok(match changed {
        Changed::NotFound => Report::failed(format!("{} not found", target.describe())),
        Changed::Refused(why) => Report::failed(format!("{}: {why}", target.describe())),
        Changed::Done { snapshot, line, .. } => {
            let mut report = Report::new(PhaseExit::Success, line);
            report.snapshot = Some(*snapshot);
            report
        }
    })
}
