//! Evidence from a file instead of live backends: for `rootfix simulate`, the tests and the
//! benchmark. Each signal gives a value (JSON `null` = no data) or an error, and an optional
//! latency, so that a walk over fixtures behaves in time like one over real backends.
//!
//! ```yaml
//! signals:
//!   jvm_heap_used_ratio: 0.97                      # shorthand: the value itself
//!   trace_p99_ms: {value: 6200, latency: 150ms}
//!   payment_timeout_logs: {error: loki timed out, latency: 2s}
//! diagnostics:
//!   thread_dump: {value: {total: 200, blocked_on_payment: 150}}
//! ```
//! A signal that is not listed has no data.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::evidence::{EvidenceContext, EvidenceError, EvidenceProvider};
use crate::catalog::values::parse_duration;
use crate::model::playbook::{Diagnose, Signal};

#[derive(Debug, Clone, PartialEq)]
pub struct FixtureEntry {
    pub result: Result<serde_json::Value, String>,
    pub latency: Duration,
}

#[derive(Debug, Default)]
pub struct FixtureEvidence {
    signals: HashMap<String, FixtureEntry>,
    diagnostics: HashMap<String, FixtureEntry>,
    /// Signals changed after construction ([`FixtureEvidence::set_signal`]); they win.
    changed: Mutex<HashMap<String, FixtureEntry>>,
    fetches: Mutex<BTreeMap<String, usize>>,
}

#[derive(Debug, thiserror::Error)]
#[error("evidence fixture: {0}")]
pub struct FixtureError(String);

impl FixtureEvidence {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the YAML format above.
    pub fn from_yaml(text: &str) -> Result<Self, FixtureError> {
        let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| FixtureError(e.to_string()))?;
        let mut fixture = Self::new();
        if let Some(map) = doc.as_mapping() {
            for key in map.keys() {
                if !matches!(key.as_str(), Some("signals" | "diagnostics")) {
                    return Err(FixtureError(format!(
                        "unknown top-level key {key:?}; expected signals, diagnostics"
                    )));
                }
            }
        } else if !doc.is_null() {
            return Err(FixtureError(
                "expected a mapping with `signals` and `diagnostics`".into(),
            ));
        }
        for (section, target) in [
            ("signals", &mut fixture.signals),
            ("diagnostics", &mut fixture.diagnostics),
        ] {
            let Some(entries) = doc.get(section) else { continue };
            let entries = entries
                .as_mapping()
                .ok_or_else(|| FixtureError(format!("`{section}` must be a mapping of name → value")))?;
            for (name, raw) in entries {
                let name = name
                    .as_str()
                    .ok_or_else(|| FixtureError(format!("`{section}` keys must be names")))?
                    .to_string();
                let entry = parse_entry(raw).map_err(|e| FixtureError(format!("{section}.{name}: {e}")))?;
                target.insert(name, entry);
            }
        }
        Ok(fixture)
    }

    pub fn with_signal(mut self, name: &str, value: serde_json::Value, latency: Duration) -> Self {
        self.signals.insert(
            name.to_string(),
            FixtureEntry {
                result: Ok(value),
                latency,
            },
        );
        self
    }

    pub fn with_signal_error(mut self, name: &str, error: &str, latency: Duration) -> Self {
        self.signals.insert(
            name.to_string(),
            FixtureEntry {
                result: Err(error.to_string()),
                latency,
            },
        );
        self
    }

    pub fn with_diagnostic(mut self, name: &str, value: serde_json::Value, latency: Duration) -> Self {
        self.diagnostics.insert(
            name.to_string(),
            FixtureEntry {
                result: Ok(value),
                latency,
            },
        );
        self
    }

    /// Changes a signal's value from now on, e.g. evidence that grows while an alert fires.
    pub fn set_signal(&self, name: &str, value: serde_json::Value) {
        if let Ok(mut changed) = self.changed.lock() {
            changed.insert(
                name.to_string(),
                FixtureEntry {
                    result: Ok(value),
                    latency: Duration::ZERO,
                },
            );
        }
    }

    /// Sets the latency of every signal (the benchmark's zero-latency run).
    pub fn with_all_latencies(mut self, latency: Duration) -> Self {
        for entry in self.signals.values_mut().chain(self.diagnostics.values_mut()) {
            entry.latency = latency;
        }
        self
    }

    pub fn latency_of(&self, name: &str) -> Duration {
        self.signals
            .get(name)
            .or_else(|| self.diagnostics.get(name))
            .map_or(Duration::ZERO, |e| e.latency)
    }

    /// How many times each name was fetched.
    pub fn fetch_counts(&self) -> BTreeMap<String, usize> {
        self.fetches.lock().map(|m| m.clone()).unwrap_or_default()
    }

    async fn serve(
        &self,
        name: &str,
        entry: Option<&FixtureEntry>,
        diagnostic: Option<&str>,
    ) -> Result<serde_json::Value, EvidenceError> {
        if let Ok(mut counts) = self.fetches.lock() {
            *counts.entry(name.to_string()).or_default() += 1;
        }
        let Some(entry) = entry else {
            return Ok(serde_json::Value::Null);
        };
        if !entry.latency.is_zero() {
            tokio::time::sleep(entry.latency).await;
        }
        entry.result.clone().map_err(|message| match diagnostic {
            Some(action) => EvidenceError::Diagnostic {
                action: action.to_string(),
                message,
            },
            None => EvidenceError::Backend(message),
        })
    }
}

fn parse_entry(raw: &serde_yaml::Value) -> Result<FixtureEntry, String> {
    let to_json = |v: &serde_yaml::Value| serde_json::to_value(v).map_err(|e| e.to_string());
    let is_entry = raw
        .as_mapping()
        .is_some_and(|m| m.contains_key("value") || m.contains_key("error"));
    if !is_entry {
        return Ok(FixtureEntry {
            result: Ok(to_json(raw)?),
            latency: Duration::ZERO,
        });
    }
    let latency = match raw.get("latency") {
        None => Duration::ZERO,
        Some(l) => parse_duration(l.as_str().ok_or("latency must be a duration like 200ms")?)?,
    };
    if let Some(m) = raw.as_mapping() {
        for key in m.keys() {
            if !matches!(key.as_str(), Some("value" | "error" | "latency")) {
                return Err(format!("unknown key {key:?}; expected value, error, latency"));
            }
        }
    }
    let result = match (raw.get("value"), raw.get("error")) {
        (Some(_), Some(_)) => return Err("give either value or error, not both".into()),
        (Some(v), None) => Ok(to_json(v)?),
        (None, Some(e)) => Err(e.as_str().map_or_else(|| format!("{e:?}"), str::to_string)),
        (None, None) => Ok(serde_json::Value::Null),
    };
    Ok(FixtureEntry { result, latency })
}

#[async_trait]
impl EvidenceProvider for FixtureEvidence {
    async fn fetch(
        &self,
        signal: &Signal,
        _ctx: &EvidenceContext,
    ) -> Result<serde_json::Value, EvidenceError> {
        let changed = self
            .changed
            .lock()
            .ok()
            .and_then(|c| c.get(&signal.name).cloned());
        let entry = changed.as_ref().or_else(|| self.signals.get(&signal.name));
        self.serve(&signal.name, entry, None).await
    }

    async fn diagnose(
        &self,
        diagnose: &Diagnose,
        _ctx: &EvidenceContext,
    ) -> Result<serde_json::Value, EvidenceError> {
        self.serve(
            &diagnose.output,
            self.diagnostics.get(&diagnose.output),
            Some(&diagnose.action),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_shorthand_and_entries() {
        let f = FixtureEvidence::from_yaml(
            "signals:\n  a: 0.5\n  b: {value: {x: 1}, latency: 20ms}\n  c: {error: down}\n  d: {value: null}\ndiagnostics:\n  dump: {value: {total: 3}}\n",
        )
        .unwrap();
        assert_eq!(f.signals["a"].result, Ok(serde_json::json!(0.5)));
        assert_eq!(f.signals["b"].latency, Duration::from_millis(20));
        assert_eq!(f.signals["c"].result, Err("down".to_string()));
        assert_eq!(f.signals["d"].result, Ok(serde_json::Value::Null));
        assert_eq!(f.diagnostics["dump"].result, Ok(serde_json::json!({"total": 3})));
        assert!(FixtureEvidence::from_yaml("signals:\n  a: {value: 1, eror: x}\n").is_err());
        assert!(FixtureEvidence::from_yaml("signal:\n  a: 1\n").is_err());
    }
}
