//! Alerts as Alertmanager sends them (webhook payload version 4), and the view of an alert that
//! conditions read (`alert.labels`, `alert.annotations`, `alert.startsAt`, ...).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The webhook body (`version: "4"`). Unknown fields are ignored, as Alertmanager adds fields over
/// time; missing required fields are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: AlertStatus,
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert of a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// Alertmanager sends `0001-01-01T00:00:00Z` while an alert fires.
    #[serde(default = "zero_time")]
    pub ends_at: DateTime<Utc>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

fn zero_time() -> DateTime<Utc> {
    DateTime::<Utc>::MIN_UTC
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not a valid Alertmanager webhook: {0}")]
    Malformed(String),
    #[error("unsupported payload version `{0}`; rootfix reads version 4")]
    Version(String),
    #[error("alerts[{index}]: {message}")]
    Alert { index: usize, message: String },
    #[error("the payload holds no alerts")]
    Empty,
}

impl WebhookPayload {
    /// Parses and validates a webhook body.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let payload: WebhookPayload =
            serde_json::from_slice(body).map_err(|e| PayloadError::Malformed(e.to_string()))?;
        if payload.version != "4" {
            return Err(PayloadError::Version(payload.version));
        }
        if payload.alerts.is_empty() {
            return Err(PayloadError::Empty);
        }
        for (index, alert) in payload.alerts.iter().enumerate() {
            alert
                .check()
                .map_err(|message| PayloadError::Alert { index, message })?;
        }
        Ok(payload)
    }
}

impl Alert {
    /// The checks Alertmanager's own data guarantees; a body that breaks them did not come from it.
    pub fn check(&self) -> Result<(), String> {
        if self.fingerprint.is_empty() || !self.fingerprint.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("fingerprint `{}` is not a hex string", self.fingerprint));
        }
        if !self.labels.contains_key("alertname") {
            return Err("labels.alertname is missing".into());
        }
        for name in self.labels.keys() {
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("label name `{name}` is not valid"));
            }
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// `endsAt` when the alert has one (resolved alerts).
    pub fn ended_at(&self) -> Option<DateTime<Utc>> {
        (self.ends_at > DateTime::<Utc>::MIN_UTC && self.ends_at.timestamp() > 0).then_some(self.ends_at)
    }

    /// What CEL conditions see as `alert`.
    pub fn condition_view(&self) -> serde_json::Value {
        serde_json::json!({
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "status": match self.status { AlertStatus::Firing => "firing", AlertStatus::Resolved => "resolved" },
            "fingerprint": self.fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRING: &str = include_str!("../../tests/fixtures/alertmanager/order-service-timeout.firing.json");
    const RESOLVED: &str =
        include_str!("../../tests/fixtures/alertmanager/order-service-timeout.resolved.json");

    #[test]
    fn reads_real_alertmanager_payloads() {
        let firing = WebhookPayload::parse(FIRING.as_bytes()).unwrap();
        assert_eq!(firing.status, AlertStatus::Firing);
        let alert = &firing.alerts[0];
        assert_eq!(alert.name(), "OrderServiceTimeout");
        assert_eq!(alert.labels["deployment"], "order-api");
        assert_eq!(alert.fingerprint, "cf12c1db58df9346");
        assert_eq!(alert.ended_at(), None);
        let resolved = WebhookPayload::parse(RESOLVED.as_bytes()).unwrap();
        assert_eq!(resolved.alerts[0].status, AlertStatus::Resolved);
        assert!(resolved.alerts[0].ended_at().is_some());
    }

    #[test]
    fn refuses_what_alertmanager_never_sends() {
        assert!(matches!(
            WebhookPayload::parse(b"{"),
            Err(PayloadError::Malformed(_))
        ));
        let v3 = FIRING.replace("\"version\":\"4\"", "\"version\":\"3\"");
        assert_eq!(
            WebhookPayload::parse(v3.as_bytes()),
            Err(PayloadError::Version("3".into()))
        );
        let no_fp = FIRING.replace("cf12c1db58df9346", "");
        assert!(matches!(
            WebhookPayload::parse(no_fp.as_bytes()),
            Err(PayloadError::Alert { index: 0, .. })
        ));
    }
}
