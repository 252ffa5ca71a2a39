//! `kubernetes:`: whether the Kubernetes runners are on, and the namespace of Jobs whose action
//! names none.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(super) struct KubernetesDocument {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    default_namespace: Option<String>,
}

/// The Kubernetes runners: on when `enabled`, with the in-cluster or kubeconfig credentials.
#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    pub enabled: bool,
    /// Namespace of Jobs whose action has no `namespace` param.
    pub default_namespace: String,
}

/// `kubernetes:` with its defaults: off, Jobs in `rootfix`.
pub(super) fn kubernetes_config(doc: &KubernetesDocument) -> KubernetesConfig {
    KubernetesConfig {
        enabled: doc.enabled.unwrap_or(false),
        default_namespace: doc.default_namespace.clone().unwrap_or_else(|| "rootfix".into()),
    }
}
