//! The playbook's verify condition (`remedy.verify`) as a [`VerifyCheck`]: after execute, the
//! signals the condition reads are fetched afresh and it is evaluated with `evidence` (fresh) and
//! `baseline` (the values at diagnosis), e.g. the seed's "active JDBC connections dropped ≥ 80 %":
//! `evidence.db_active_connection_ratio <= baseline.db_active_connection_ratio * 0.2`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::executor::VerifyCheck;
use crate::alert::Alert;
use crate::engine::{EvidenceContext, EvidenceProvider};
use crate::model::condition::{AlertValue, ConditionInputs};
use crate::model::playbook::{Playbook, VerifyCondition};
use crate::record::incident::Incident;

pub struct ConditionVerify {
    pub playbook: Arc<Playbook>,
    pub condition: VerifyCondition,
    pub alert: Arc<Alert>,
    /// Signal values at diagnosis (`Diagnosis.evidence`).
    pub baseline: BTreeMap<String, serde_json::Value>,
    pub evidence: Arc<dyn EvidenceProvider>,
}

impl ConditionVerify {
    /// The verify condition of the remedy at `node` (with `step`, that step's of a remedy of
    /// steps), over the incident's alert and its diagnosis's values as the baseline.
    pub fn of_remedy(
        playbook: Arc<Playbook>,
        incident: &Incident,
        node: &str,
        step: Option<u32>,
        evidence: Arc<dyn EvidenceProvider>,
    ) -> Option<Arc<dyn VerifyCheck>> {
        let remedy = playbook.node(node)?.remedy.as_ref()?;
        let condition = match step {
            None => remedy.verify.clone()?,
            Some(number) => remedy
                .steps
                .get((number as usize).checked_sub(1)?)?
                .verify
                .clone()?,
        };
        let baseline: BTreeMap<String, serde_json::Value> = incident
            .diagnosis
            .as_ref()
            .map(|d| {
                d.evidence
                    .iter()
                    .filter_map(|(k, r)| r.value.clone().map(|v| (k.clone(), v)))
                    .collect()
            })
            .unwrap_or_default();
        Some(Arc::new(ConditionVerify {
            playbook,
            condition,
            alert: Arc::new(incident.alert.clone()),
            baseline,
            evidence,
        }))
    }
}

#[async_trait]
impl VerifyCheck for ConditionVerify {
    async fn holds(&self) -> Result<bool, String> {
        // Fresh evidence is read now, not at the alert's start.
        let ctx = EvidenceContext {
            alert: self.alert.clone(),
            at: chrono::Utc::now(),
            window: self.playbook.window,
            incident: None,
        };
        let mut fresh = BTreeMap::new();
        for name in self.condition.when.signal_names() {
            let Some(signal) = self.playbook.evidence.get(name) else {
                return Err(format!("signal `{name}` is not in the playbook"));
            };
            let value = self
                .evidence
                .fetch(signal, &ctx)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
            fresh.insert(name.to_string(), value);
        }
        let inputs = ConditionInputs {
            alert: &AlertValue::from_json(&self.alert.condition_view()),
            evidence: &fresh,
            baseline: Some(&self.baseline),
        };
        self.condition.when.evaluate(&inputs).map_err(|e| e.to_string())
    }

    fn retries(&self) -> u32 {
        self.condition.retries
    }

    fn interval(&self) -> Duration {
        self.condition.interval
    }
}
