//! The `evidence:` section of rootfix's serve config: which Prometheus, Loki and JSON HTTP
//! backends the playbooks' `source` names refer to, and the trust roots of the HTTP probe.
//!
//! This file owns the user-facing shape (serde, unknown fields refused) and its validation.
//! [`EvidenceBackends::validate`] turns it into [`ValidBackends`], whose URLs, headers and
//! timeouts are known to be usable; nothing after it re-checks them.
//!
//! ```yaml
//! evidence:
//!   prometheus:
//!     default: {url: "http://prometheus:9090", timeout: 10s}
//!   loki:
//!     default: {url: "http://loki:3100", headers: {X-Scope-OrgID: shop}}
//!   jsonhttp:
//!     tracing: {url: "http://jaeger-query:16686", bearer_token: "..."}
//!   http:
//!     extra_ca_files: [/etc/rootfix/corp-ca.pem]
//!     timeout: 30s
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// Backends by kind, each keyed by the `source` name playbooks use (`default` when a signal
/// names none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct EvidenceBackends {
    /// Prometheus-compatible query APIs (Prometheus, Thanos, Mimir, VictoriaMetrics).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prometheus: BTreeMap<String, BackendConfig>,
    /// Loki query APIs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub loki: BTreeMap<String, BackendConfig>,
    /// Base URLs for `jsonhttp` signals that name a `source` (e.g. a tracing backend).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub jsonhttp: BTreeMap<String, BackendConfig>,
    /// The `http`, `dns` and `tcp` probes.
    #[serde(default)]
    pub http: ProbeConfig,
}

/// One backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct BackendConfig {
    /// Base URL, http or https (e.g. `http://prometheus:9090`, or with a path prefix
    /// `https://gateway/prometheus`).
    pub url: String,
    /// A query that has not answered after this long fails with a timeout (default `10s`).
    #[serde(default = "default_backend_timeout")]
    #[schemars(with = "String")]
    pub timeout: HumanDuration,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// Extra request headers (e.g. `X-Scope-OrgID` for a multi-tenant Loki or Mimir).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// The probes' settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ProbeConfig {
    /// PEM files of CAs trusted besides the system store (Debian's `/etc/ssl/certs`): for
    /// internal services signed by a private CA. They are trusted by the backends' clients too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_ca_files: Vec<PathBuf>,
    /// The longest any probe (`http`, `dns`, `tcp`) may take, whatever its signal asks
    /// (default `30s`). A signal's own `timeout` (default `5s`) applies below this ceiling.
    #[serde(default = "default_probe_timeout")]
    #[schemars(with = "String")]
    pub timeout: HumanDuration,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            extra_ca_files: Vec::new(),
            timeout: default_probe_timeout(),
        }
    }
}

fn default_backend_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_probe_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// A duration written the humantime way (`250ms`, `10s`, `1m30s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|_| {
                serde::de::Error::custom(format!("`{text}` is not a duration; write e.g. 500ms, 10s, 1m"))
            })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// A config value that cannot be used; `field` is its path under `evidence`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("evidence.{field}: {message}")]
pub struct EvidenceConfigError {
    pub field: String,
    pub message: String,
}

fn config_error(field: impl Into<String>, message: impl Into<String>) -> EvidenceConfigError {
    EvidenceConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// [`EvidenceBackends`] after validation.
#[derive(Debug, Clone)]
pub struct ValidBackends {
    pub prometheus: BTreeMap<String, ValidBackend>,
    pub loki: BTreeMap<String, ValidBackend>,
    pub jsonhttp: BTreeMap<String, ValidBackend>,
    /// Parsed `extra_ca_files`, in order.
    pub extra_cas: Vec<CertificateDer<'static>>,
    pub probe_timeout: Duration,
}

/// A backend whose URL, headers and timeout are usable.
#[derive(Clone)]
pub struct ValidBackend {
    pub name: String,
    /// Without a trailing `/`, so that `base + "/api/v1/query"` keeps any path prefix.
    pub base: Url,
    pub timeout: Duration,
    /// The configured headers and the bearer token, ready to send.
    pub headers: HeaderMap,
}

impl fmt::Debug for ValidBackend {
    /// Never prints header values: they hold tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidBackend")
            .field("name", &self.name)
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ValidBackend {
    /// `base` joined with an absolute `path_and_query` (`/api/v1/query?x=1`).
    pub fn url(&self, path_and_query: &str) -> Result<Url, url::ParseError> {
        Url::parse(&format!(
            "{}{}",
            self.base.as_str().trim_end_matches('/'),
            path_and_query
        ))
    }
}

impl EvidenceBackends {
    /// Checks every backend and reads the CA files; the error names the first bad field.
    pub fn validate(&self) -> Result<ValidBackends, EvidenceConfigError> {
        let check = |kind: &str, backends: &BTreeMap<String, BackendConfig>| {
            backends
                .iter()
                .map(|(name, backend)| Ok((name.clone(), backend.validate(&format!("{kind}.{name}"), name)?)))
                .collect::<Result<BTreeMap<_, _>, EvidenceConfigError>>()
        };
        let prometheus = check("prometheus", &self.prometheus)?;
        let loki = check("loki", &self.loki)?;
        let jsonhttp = check("jsonhttp", &self.jsonhttp)?;
        let mut extra_cas = Vec::new();
        for (i, path) in self.http.extra_ca_files.iter().enumerate() {
            let field = format!("http.extra_ca_files[{i}]");
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| config_error(&field, format!("cannot read {}: {e}", path.display())))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| config_error(&field, format!("{}: not a PEM file: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(config_error(
                    &field,
                    format!("{} holds no `BEGIN CERTIFICATE` block", path.display()),
                ));
            }
            for (n, cert) in certs.iter().enumerate() {
                if let Err(e) = x509_parser::parse_x509_certificate(cert.as_ref()) {
                    return Err(config_error(
                        &field,
                        format!("{}: certificate {} does not parse: {e}", path.display(), n + 1),
                    ));
                }
            }
            extra_cas.extend(certs);
        }
        if self.http.timeout.0.is_zero() {
            return Err(config_error("http.timeout", "must be more than 0"));
        }
        Ok(ValidBackends {
            prometheus,
            loki,
            jsonhttp,
            extra_cas,
            probe_timeout: self.http.timeout.0,
        })
    }
}

impl BackendConfig {
    fn validate(&self, field: &str, name: &str) -> Result<ValidBackend, EvidenceConfigError> {
        let url_field = format!("{field}.url");
        let base = Url::parse(&self.url)
            .map_err(|e| config_error(&url_field, format!("`{}` is not a URL: {e}", self.url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(config_error(
                &url_field,
                format!("`{}`: only http and https are supported", self.url),
            ));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(config_error(&url_field, format!("`{}` has no host", self.url)));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(config_error(
                &url_field,
                format!("`{}`: a base URL has no query or fragment", self.url),
            ));
        }
        if self.timeout.0.is_zero() {
            return Err(config_error(format!("{field}.timeout"), "must be more than 0"));
        }
        let mut headers = HeaderMap::new();
        for (key, value) in &self.headers {
            let hfield = format!("{field}.headers.{key}");
            let header_name = HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| config_error(&hfield, "not a valid HTTP header name"))?;
            let mut header_value = HeaderValue::from_str(value)
                .map_err(|_| config_error(&hfield, "not a valid HTTP header value"))?;
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }
        if let Some(token) = &self.bearer_token {
            let tfield = format!("{field}.bearer_token");
            if headers.contains_key(AUTHORIZATION) {
                return Err(config_error(
                    &tfield,
                    "set either bearer_token or an Authorization header, not both",
                ));
            }
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| config_error(&tfield, "not usable in an HTTP header"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(ValidBackend {
            name: name.to_string(),
            base,
            timeout: self.timeout.0,
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<EvidenceBackends, serde_yaml::Error> {
        serde_yaml::from_str(yaml)
    }

    #[test]
    fn defaults_and_shape() {
        let config = parse(
            "prometheus:\n  default: {url: 'http://prom:9090/'}\njsonhttp:\n  tracing: {url: 'https://gw/jaeger', timeout: 2s, bearer_token: t, headers: {X-Scope-OrgID: shop}}\n",
        )
        .unwrap();
        let valid = config.validate().unwrap();
        let prom = &valid.prometheus["default"];
        assert_eq!(prom.timeout, Duration::from_secs(10));
        assert_eq!(
            prom.url("/api/v1/query").unwrap().as_str(),
            "http://prom:9090/api/v1/query"
        );
        let tracing = &valid.jsonhttp["tracing"];
        assert_eq!(
            tracing.url("/api/x?a=1").unwrap().as_str(),
            "https://gw/jaeger/api/x?a=1"
        );
        assert_eq!(tracing.headers[AUTHORIZATION], "Bearer t");
        assert_eq!(tracing.headers["x-scope-orgid"], "shop");
        assert_eq!(valid.probe_timeout, Duration::from_secs(30));
        assert!(!format!("{tracing:?}").contains("Bearer"));
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse("loki:\n  default: {url: 'ftp://x'}\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "loki.default.url");
        assert!(
            err.to_string().starts_with("evidence.loki.default.url: "),
            "{err}"
        );
        let err = parse("prometheus:\n  p: {url: 'not a url'}\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "prometheus.p.url");
        let err = parse("prometheus:\n  p: {url: 'http://x', headers: {'bad header': v}}\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "prometheus.p.headers.bad header");
        let err = parse("http: {extra_ca_files: [/nonexistent/ca.pem]}\n")
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.field, "http.extra_ca_files[0]");
        assert!(parse("prometheus:\n  p: {url: 'http://x', timeout: soon}\n").is_err());
        assert!(parse("prometheus:\n  p: {url: 'http://x', tls: {}}\n").is_err());
        assert!(parse("graphite: {}\n").is_err());
    }
}
