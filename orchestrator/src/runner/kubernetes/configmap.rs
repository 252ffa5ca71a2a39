//! `patch-configmap` (execute): the `patch` param is a JSON merge patch of the ConfigMap's
//! `data` and/or `binaryData` (`{"data": {"key": "value", "gone": null}}`); nothing else of the
//! object may be patched.
//!
//! Requests: `GET` and `PATCH /api/v1/namespaces/{ns}/configmaps/{name}`
//! (`application/merge-patch+json`). The snapshot restores the previous value of every key the
//! patch names, and removes the keys it added; keys it did not name are left alone, whoever
//! changed them since. Applying the same patch twice equals once. Pods read a ConfigMap at start
//! (env) or eventually (volumes); restarting them is another action's business.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::{Map, Value};

use super::native::{Changed, Ctx, PatchKind, Plan, Report, change_object};
use super::snapshot::Target;
use crate::runner::{PhaseExit, RunnerError};

const SECTIONS: [&str; 2] = ["data", "binaryData"];

/// Checks the `patch` param: an object of `data`/`binaryData`, each of string or null values.
pub fn parse_patch(text: &str) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(patch) = value else {
        return Err("not a JSON object".into());
    };
    if patch.is_empty() {
        return Err("an empty patch".into());
    }
    for (section, entries) in &patch {
        if !SECTIONS.contains(&section.as_str()) {
            return Err(format!("`{section}`: only data and binaryData may be patched"));
        }
        let Value::Object(entries) = entries else {
            return Err(format!("`{section}` is not an object"));
        };
        if let Some((key, _)) = entries.iter().find(|(_, v)| !(v.is_string() || v.is_null())) {
            return Err(format!("`{section}.{key}` is neither a string nor null"));
        }
    }
    Ok(patch)
}

pub(super) async fn patch(ctx: &Ctx<'_, '_>) -> Result<Report, RunnerError> {
    let namespace = ctx.param("namespace")?.to_string();
    let name = ctx.param("configmap")?.to_string();
    let patch = parse_patch(ctx.param("patch")?).map_err(|e| RunnerError::Unsupported {
        runner: "kubernetes",
        reason: format!("param `patch` is not a merge patch of a ConfigMap's data: {e}"),
    })?;
    let target = Target::ConfigMap {
        namespace: namespace.clone(),
        name,
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.client(), &namespace);
    let changed = change_object(ctx, &api, target.clone(), PatchKind::Merge, |cm, _| {
        let mut restore = Map::new();
        let mut differs = false;
        for (section, entries) in &patch {
            let mut previous = Map::new();
            for (key, wanted) in entries.as_object().into_iter().flatten() {
                let current = cm
                    .get(section)
                    .and_then(|s| s.get(key))
                    .cloned()
                    .unwrap_or(Value::Null);
                differs |= &current != wanted;
                previous.insert(key.clone(), current);
            }
            restore.insert(section.clone(), Value::Object(previous));
        }
        Ok(Plan {
            restore: Value::Object(restore),
            change: differs.then(|| Value::Object(patch.clone())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_and_binary_data_of_strings_may_be_patched() {
        assert!(parse_patch(r#"{"data": {"a": "1", "b": null}}"#).is_ok());
        assert!(parse_patch(r#"{"binaryData": {"a": "AAE="}}"#).is_ok());
        for bad in [
            r#"{"metadata": {"labels": {"a": "b"}}}"#,
            r#"{"data": {"a": 1}}"#,
            r#"{"data": "x"}"#,
            r#"[1]"#,
            r#"{}"#,
            "x; rm -rf /",
        ] {
            assert!(parse_patch(bad).is_err(), "{bad}");
        }
    }
}
