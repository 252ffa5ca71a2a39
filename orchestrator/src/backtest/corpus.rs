//! A corpus of recorded incidents: JSON lines, each an incident (what `rootfix incidents export`
//! and `GET /api/v1/incidents/export` write, `{"incident": {...}}`), the retention export's line
//! (`{"incident", "journal", "approvals"}`, the rest ignored), or a bare incident.

use crate::incident::Incident;

/// A line that is not an incident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}: {message}")]
pub struct CorpusError {
    pub source_name: String,
    pub line: usize,
    pub message: String,
}

/// One line of the export.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct CorpusLine<I> {
    pub incident: I,
}

/// Parses `text` (named `source_name` in errors); blank lines are skipped. Fails on the first
/// bad line, naming it: a corpus is replayed whole or not at all.
pub fn parse_corpus(source_name: &str, text: &str) -> Result<Vec<Incident>, CorpusError> {
    let mut incidents = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        incidents.push(parse_line(line).map_err(|message| CorpusError {
            source_name: source_name.to_string(),
            line: n + 1,
            message,
        })?);
    }
    Ok(incidents)
}

fn parse_line(line: &str) -> Result<Incident, String> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let incident = match value {
        serde_json::Value::Object(mut map) if map.contains_key("incident") => {
            map.remove("incident").unwrap_or_default()
        }
        other => other,
    };
    serde_json::from_value(incident).map_err(|e| format!("not an incident: {e}"))
}

/// One export line for `incident`.
pub fn corpus_line(incident: &Incident) -> String {
    let mut line = serde_json::to_string(&CorpusLine { incident }).unwrap_or_default();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident_json() -> serde_json::Value {
        let payload = crate::alert::WebhookPayload::parse(include_bytes!(
            "../../../tests/fixtures/alertmanager/order-service-timeout.firing.json"
        ))
        .expect("fixture");
        let alert = payload.alerts[0].clone();
        let at = alert.starts_at;
        let incident = Incident {
            id: "inc-1-0".into(),
            fingerprint: alert.fingerprint.clone(),
            state: crate::incident::IncidentState::Open,
            alertname: alert.name().to_string(),
            service: None,
            playbook: None,
            alert,
            created_at: at,
            updated_at: at,
            resolved_at: None,
            firings: 1,
            created_by_entry: "1-0".into(),
            applied_entries: vec!["1-0".into()],
            diagnosis: None,
            timeline: vec![],
            fix: None,
            last_seen: None,
            flaps: 0,
            version: 1,
        };
        serde_json::to_value(&incident).expect("encode")
    }

    #[test]
    fn reads_export_lines_retention_lines_and_bare_incidents() {
        let bare = incident_json();
        let export = serde_json::json!({"incident": bare});
        let retention = serde_json::json!({"incident": bare, "journal": [], "approvals": []});
        let text = format!("{export}\n\n{retention}\n{bare}\n");
        let corpus = parse_corpus("c.jsonl", &text).expect("three incidents");
        assert_eq!(corpus.len(), 3);
        assert!(corpus.iter().all(|i| i.id == "inc-1-0"));
        let line = corpus_line(&corpus[0]);
        assert_eq!(
            parse_corpus("again", &line).expect("round trip"),
            vec![corpus[0].clone()]
        );
    }

    #[test]
    fn a_bad_line_is_named_with_its_number() {
        let good = serde_json::json!({"incident": incident_json()});
        let err = parse_corpus("c.jsonl", &format!("{good}\n{{\"incident\": {{\"id\": 3}}}}\n"))
            .expect_err("line 2 is no incident");
        assert_eq!(err.line, 2);
        assert!(
            err.to_string().starts_with("c.jsonl:2: not an incident: "),
            "{err}"
        );
        let err = parse_corpus("c.jsonl", "{oops\n").expect_err("not JSON");
        assert!(err.to_string().starts_with("c.jsonl:1: not JSON: "), "{err}");
    }
}
