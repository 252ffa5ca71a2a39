//! What a native `execute` hands to `rollback`: [`Snapshot`], returned in
//! `PhaseOutcome.snapshot` and given back in `PhaseRequest.snapshot`.
//!
//! A snapshot names the object and carries `restore`, the patch that puts back exactly the
//! fields execute changed, as they were before (a field execute added is `null`: removed).
//! execute also writes the snapshot onto the object it changes, in the same patch, as the
//! annotation [`CHANGE_ANNOTATION`]: a rootfix that dies during execute finds it there, so a
//! repeated execute neither repeats a restart nor loses the state from before the first run, and
//! a rollback without a snapshot from the journal still knows what to restore. The annotation
//! stays after a successful fix (it says what rootfix last changed) and is removed by rollback.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The annotation on a changed object that holds the [`Snapshot`] of the change, as JSON.
pub const CHANGE_ANNOTATION: &str = "rootfix.io/change";
pub const SNAPSHOT_VERSION: u32 = 1;
/// Largest snapshot kept on an object (annotations share 256 KiB per object).
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub version: u32,
    pub incident: String,
    pub action: String,
    /// The execute operation (`rollout-restart`, `scale`, ...).
    pub operation: String,
    pub target: Target,
    /// Whether execute changed the object; when not, rollback has nothing to put back.
    pub changed: bool,
    /// The patch that restores the fields execute changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<Value>,
    /// delete-pod: the pod deleted, to recognise its replacement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_pod: Option<DeletedPod>,
}

/// The object an operation acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Target {
    Deployment { namespace: String, name: String },
    ConfigMap { namespace: String, name: String },
    Node { name: String },
    Pod { namespace: String, name: String },
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Deployment { .. } => "Deployment",
            Target::ConfigMap { .. } => "ConfigMap",
            Target::Node { .. } => "Node",
            Target::Pod { .. } => "Pod",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Target::Deployment { name, .. }
            | Target::ConfigMap { name, .. }
            | Target::Node { name }
            | Target::Pod { name, .. } => name,
        }
    }

    /// `deployment shop/order-api`, `node worker-1`.
    pub fn describe(&self) -> String {
        match self {
            Target::Deployment { namespace, name } => format!("deployment {namespace}/{name}"),
            Target::ConfigMap { namespace, name } => format!("configmap {namespace}/{name}"),
            Target::Pod { namespace, name } => format!("pod {namespace}/{name}"),
            Target::Node { name } => format!("node {name}"),
        }
    }

    /// The fields a restore patch of this kind may touch: a snapshot comes back from the journal,
    /// and restoring must never become a general-purpose patch.
    fn restorable(&self) -> &'static [&'static [&'static str]] {
        match self {
            Target::Deployment { .. } => &[
                &["spec", "replicas"],
                &["spec", "template", "metadata", "annotations"],
            ],
            Target::ConfigMap { .. } => &[&["data"], &["binaryData"]],
            Target::Node { .. } => &[&["spec", "unschedulable"]],
            Target::Pod { .. } => &[],
        }
    }
}

/// The pod delete-pod removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedPod {
    pub uid: String,
    pub controller: Controller,
    /// The pod's labels, less the ones unique to one pod: selects its replacement's siblings.
    pub labels: BTreeMap<String, String>,
}

/// A pod's controlling owner (a ReplicaSet, StatefulSet, DaemonSet or Job).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Controller {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl Snapshot {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads and checks a snapshot handed back for rollback.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let snapshot: Snapshot = serde_json::from_value(value.clone())
            .map_err(|e| format!("not a rootfix Kubernetes snapshot: {e}"))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "snapshot version {} is not {SNAPSHOT_VERSION}",
                snapshot.version
            ));
        }
        snapshot.check_restore()?;
        Ok(snapshot)
    }

    /// The snapshot recorded on `object` by an earlier execute, if it holds a valid one.
    pub fn recorded_on(object: &Value) -> Option<Self> {
        let text = object
            .pointer("/metadata/annotations")?
            .get(CHANGE_ANNOTATION)?
            .as_str()?;
        let value: Value = serde_json::from_str(text).ok()?;
        Self::from_value(&value).ok()
    }

    /// Whether this is the record of the same incident's same action.
    pub fn is_of(&self, incident: &str, action: &str) -> bool {
        self.incident == incident && self.action == action
    }

    fn check_restore(&self) -> Result<(), String> {
        let Some(restore) = &self.restore else {
            return Ok(());
        };
        let allowed = self.target.restorable();
        let mut leaves = Vec::new();
        leaf_paths(restore, &mut Vec::new(), &mut leaves);
        for path in leaves {
            if !allowed
                .iter()
                .any(|prefix| path.len() >= prefix.len() && path[..prefix.len()] == prefix[..])
            {
                return Err(format!(
                    "the snapshot would restore `{}`, which no operation on a {} changes",
                    path.join("."),
                    self.target.kind()
                ));
            }
        }
        Ok(())
    }
}

fn leaf_paths<'a>(value: &'a Value, path: &mut Vec<&'a str>, out: &mut Vec<Vec<&'a str>>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key);
                leaf_paths(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

/// Deep merge of JSON objects (`b` wins), for composing patches.
pub fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                merge(a.entry(key).or_insert(Value::Null), value);
            }
        }
        (a, b) => *a = b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot(target: Target, restore: Value) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            incident: "inc-1".into(),
            action: "a".into(),
            operation: "scale".into(),
            target,
            changed: true,
            restore: Some(restore),
            deleted_pod: None,
        }
    }

    #[test]
    fn a_restore_may_only_touch_what_the_operations_change() {
        let dep = Target::Deployment {
            namespace: "shop".into(),
            name: "api".into(),
        };
        let ok = snapshot(
            dep.clone(),
            json!({"spec": {"replicas": 3, "template": {"metadata": {"annotations": {"x": null}}}}}),
        );
        assert_eq!(Snapshot::from_value(&ok.to_value()), Ok(ok.clone()));
        let bad = snapshot(dep, json!({"spec": {"template": {"spec": {"containers": []}}}}));
        let err = Snapshot::from_value(&bad.to_value()).unwrap_err();
        assert!(err.contains("spec.template.spec.containers"), "{err}");
        let node = snapshot(
            Target::Node { name: "n1".into() },
            json!({"metadata": {"labels": {"a": "b"}}}),
        );
        assert!(Snapshot::from_value(&node.to_value()).is_err());
        let mut wrong_version = ok.to_value();
        wrong_version["version"] = json!(2);
        assert!(Snapshot::from_value(&wrong_version).is_err());
    }

    #[test]
    fn merge_is_deep_and_the_right_side_wins() {
        let mut a = json!({"spec": {"replicas": 1, "x": 1}, "metadata": {}});
        merge(
            &mut a,
            json!({"spec": {"replicas": 2}, "metadata": {"resourceVersion": "7"}}),
        );
        assert_eq!(
            a,
            json!({"spec": {"replicas": 2, "x": 1}, "metadata": {"resourceVersion": "7"}})
        );
    }
}
