//! deploy/kubernetes: the manifests for running rootfix in a cluster. No cluster runs here, and
//! `kubectl apply|create --dry-run=client` still asks a server for discovery (Debian's kubectl
//! 1.20 and newer ones alike), so the manifests are checked offline three ways:
//! - `kubectl label --local -k deploy/kubernetes -o json` builds the kustomization and decodes
//!   every object with kubectl's own decoder;
//! - each object is read into its k8s-openapi type and written back: the same JSON back means
//!   no unknown or misspelled field and no value of the wrong type;
//! - the ConfigMap's rootfix.yaml is a valid `rootfix serve` config, wired to the Deployment.
//!
//! The RBAC rules are checked against the runners' requests in tests/kube_runner.rs.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

const FILES: [&str; 5] = [
    "namespace.yaml",
    "rbac.yaml",
    "action-rbac.yaml",
    "config.yaml",
    "deployment.yaml",
];

fn documents(file: &str) -> Vec<Value> {
    let path = support::repo_path(&format!("deploy/kubernetes/{file}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml_documents(&text)
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).expect("YAML")).expect("JSON"))
        .filter(|v| !v.is_null())
        .collect()
}

fn all_documents() -> Vec<Value> {
    FILES.iter().flat_map(|f| documents(f)).collect()
}

fn identity(v: &Value) -> (String, String, String) {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (s("/kind"), s("/metadata/namespace"), s("/metadata/name"))
}

/// Runs kubectl offline: no kubeconfig, a HOME of its own.
fn kubectl(args: &[&str]) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    Command::new("kubectl")
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", home.path())
        .output()
        .expect("kubectl is installed (scripts/lib.sh installs Debian's kubernetes-client)")
}

fn kubectl_objects(dir: &Path) -> Result<Vec<Value>, String> {
    let dir = dir.to_str().unwrap();
    let out = kubectl(&[
        "label",
        "--local",
        "-k",
        dir,
        "-o",
        "json",
        "rootfix.io/checked=true",
    ]);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

#[test]
fn kubectl_builds_and_decodes_every_manifest_offline() {
    let objects =
        kubectl_objects(&support::repo_path("deploy/kubernetes")).unwrap_or_else(|e| panic!("kubectl: {e}"));
    for o in &objects {
        assert_eq!(
            o["metadata"]["labels"]["rootfix.io/checked"], "true",
            "{}",
            o["metadata"]
        );
    }
    let got: BTreeSet<_> = objects.iter().map(identity).collect();
    let want: BTreeSet<_> = all_documents().iter().map(identity).collect();
    assert_eq!(got, want, "the kustomization holds every manifest");
    assert_eq!(got.len(), 14);

    // The check can fail: kubectl refuses an object whose metadata does not decode.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("kustomization.yaml"), "resources: [bad.yaml]\n").unwrap();
    std::fs::write(
        bad.path().join("bad.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: [1]}\n",
    )
    .unwrap();
    assert!(kubectl_objects(bad.path()).is_err());
}

#[test]
fn the_kustomization_lists_every_manifest_file() {
    let k = &documents("kustomization.yaml")[0];
    let listed: BTreeSet<&str> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(support::repo_path("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, files.iter().map(String::as_str).collect());
    assert_eq!(listed, FILES.into_iter().collect());
}

/// Reads `doc` into its k8s-openapi type and writes it back; `Err` names what did not survive.
fn round_trip(doc: &Value) -> Result<(), String> {
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, policy::v1 as policy, rbac::v1 as rbac};
    fn via<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Result<Value, String> {
        let typed: T = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
        serde_json::to_value(typed).map_err(|e| e.to_string())
    }
    let back = match doc["kind"].as_str().unwrap_or_default() {
        "Namespace" => via::<core::Namespace>(doc),
        "ServiceAccount" => via::<core::ServiceAccount>(doc),
        "ConfigMap" => via::<core::ConfigMap>(doc),
        "Service" => via::<core::Service>(doc),
        "Deployment" => via::<apps::Deployment>(doc),
        "PodDisruptionBudget" => via::<policy::PodDisruptionBudget>(doc),
        "ClusterRole" => via::<rbac::ClusterRole>(doc),
        "ClusterRoleBinding" => via::<rbac::ClusterRoleBinding>(doc),
        "Role" => via::<rbac::Role>(doc),
        "RoleBinding" => via::<rbac::RoleBinding>(doc),
        other => return Err(format!("no type for kind {other}")),
    }?;
    if &back == doc {
        Ok(())
    } else {
        Err(format!(
            "not the same after a round trip through the typed object:\n  wrote {doc}\n  read  {back}"
        ))
    }
}

#[test]
fn every_manifest_is_a_well_typed_kubernetes_object() {
    for doc in all_documents() {
        round_trip(&doc).unwrap_or_else(|e| panic!("{:?}: {e}", identity(&doc)));
    }
    // The check can fail: a misspelled field and a wrong type do not survive.
    let mut typo = documents("deployment.yaml")[0].clone();
    typo["spec"]["replicaz"] = typo["spec"]["replicas"].take();
    assert!(round_trip(&typo).is_err());
    let mut wrong = documents("deployment.yaml")[0].clone();
    wrong["spec"]["replicas"] = serde_json::json!("two");
    assert!(round_trip(&wrong).is_err());
}

#[test]
fn the_shipped_config_is_a_valid_serve_config_wired_to_the_deployment() {
    let config = &documents("config.yaml")[0];
    let text = config["data"]["rootfix.yaml"].as_str().unwrap();
    let deployment = documents("deployment.yaml")
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env: Vec<&Value> = container["env"].as_array().unwrap().iter().collect();
    let from_secret = |name: &str| {
        env.iter()
            .any(|e| e["name"] == name && e["valueFrom"]["secretKeyRef"]["name"] == "rootfix-secrets")
    };
    let asked = std::cell::RefCell::new(Vec::new());
    let lookup = |name: &str| {
        asked.borrow_mut().push(name.to_string());
        Some(if name.contains("REDIS") {
            "redis://redis.rootfix.svc:6379/".to_string()
        } else {
            format!("secret-of-{name}")
        })
    };
    let parsed = rootfix::config::ServeConfig::parse(Path::new("/etc/rootfix/rootfix.yaml"), text, &lookup);
    parsed.unwrap_or_else(|e| panic!("{e}"));
    let asked = asked.into_inner();
    assert!(!asked.is_empty());
    for name in &asked {
        assert!(
            from_secret(name),
            "the config reads ${name}, which the Deployment does not set from the Secret"
        );
    }
    assert_eq!(
        container["args"],
        serde_json::json!(["serve", "--config", "/etc/rootfix/rootfix.yaml"])
    );
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/etc/rootfix");
    assert_eq!(pod["volumes"][0]["configMap"]["name"], config["metadata"]["name"]);
    let rbac = documents("rbac.yaml");
    let account = rbac.iter().find(|d| d["kind"] == "ServiceAccount").unwrap();
    assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);
    assert_eq!(
        deployment["metadata"]["namespace"],
        account["metadata"]["namespace"]
    );
}
