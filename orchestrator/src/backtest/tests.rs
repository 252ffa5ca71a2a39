//! The replay and the comparison in-process: a record made by the real walker over fixture
//! evidence, replayed under changed playbooks.

use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::compare::{Change, Known, Replayed, Summary, VerdictEffect};
use super::replay::{PruneMode, ReplayOptions, Replayer};
use crate::catalog::{Catalog, Source};
use crate::engine::fixture::FixtureEvidence;
use crate::engine::{WalkOptions, Walker};
use crate::incident::{Incident, IncidentFix, IncidentState, TimelineEvent, Verdict};
use crate::record::journal::FixOutcome;
use crate::state::memory::MemoryStateStore;

const ACTION: &str = r#"apiVersion: rootfix/v1
kind: Action
metadata: {name: t-fix}
spec:
  purpose: fix
  runner: docker
  image: t:1
  params:
    target: {pattern: '[a-z]+'}
  idempotency_key: '{{ $params.target }}'
  phases:
    precheck: {run: [/bin/true]}
    execute: {run: [/bin/true]}
    verify: {run: [/bin/true]}
    rollback: {run: [/bin/true]}
"#;

/// A playbook with a heap branch (remedy weights and threshold as given) and a probe branch
/// that reads `probe` (an http signal, so never fetched for the past).
fn playbook(threshold: f64, heap_query: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {{name: t}}
spec:
  match: ['alertname="T"']
  evidence:
    heap: {{prometheus: {{query: '{heap_query}'}}}}
    gc: {{prometheus: {{query: 't_gc{{service="{{{{ $labels.service }}}}"}}'}}}}
    probe: {{http: {{url: 'http://127.0.0.1:9/{{{{ $labels.service }}}}'}}}}
  tree:
    id: t_root
    children:
      - id: t_heap
        when: evidence.heap > 0.9
        remedy:
          action: t-fix
          params: {{target: '{{{{ $labels.service }}}}'}}
          confidence:
            threshold: {threshold}
            signals:
              - {{when: evidence.heap > 0.9, weight: 0.6}}
              - {{when: evidence.gc > 0.2, weight: 0.4}}
      - id: t_probe
        when: evidence.probe.status == 500
{extra}"#
    )
}

const HEAP: &str = "t_heap{service=\"{{ $labels.service }}\"}";

fn catalog(playbook: &str) -> Arc<Catalog> {
    let sources = [
        Source {
            path: "p.yaml".into(),
            text: playbook.into(),
        },
        Source {
            path: "a.yaml".into(),
            text: ACTION.into(),
        },
    ];
    Arc::new(Catalog::from_sources(&sources).unwrap_or_else(|p| {
        panic!(
            "{}",
            p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    }))
}

/// An incident of service `a` diagnosed by the real walker under `playbook` with heap 0.95,
/// gc `gc`, and the probe node pruned before the walk.
async fn recorded(playbook_text: &str, gc: f64) -> Incident {
    let catalog = catalog(playbook_text);
    let playbook = catalog.playbooks[0].clone();
    let at = Utc.with_ymd_and_hms(2026, 12, 1, 2, 17, 0).unwrap();
    let alert: crate::alert::Alert = serde_json::from_value(serde_json::json!({
        "status": "firing", "labels": {"alertname": "T", "service": "a"},
        "annotations": {"summary": "slow"}, "startsAt": at, "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "", "fingerprint": "f-a"
    }))
    .expect("alert");
    let state = Arc::new(MemoryStateStore::new());
    // Three misses prune the probe node (the default policy prunes after 3).
    let evidence = Arc::new(
        FixtureEvidence::from_yaml(&format!(
            "signals:\n  heap: 0.95\n  gc: {gc}\n  probe: {{value: {{status: 200}}}}\n"
        ))
        .expect("fixture"),
    );
    let walker = Walker::new(state, WalkOptions::default());
    let mut diagnosis = None;
    for _ in 0..4 {
        diagnosis = Some(
            walker
                .walk(&playbook, Arc::new(alert.clone()), evidence.clone(), at)
                .await,
        );
    }
    let diagnosis = diagnosis.expect("walked");
    assert_eq!(
        diagnosis.node("t_probe").map(|n| n.outcome),
        Some(crate::engine::NodeOutcome::Pruned),
        "{diagnosis:#?}"
    );
    let fix = diagnosis.actionable().next().map(|r| IncidentFix {
        action: r.action.clone(),
        node: r.node.clone(),
        params: r.params.clone(),
        steps: Vec::new(),
        waves: Vec::new(),
        confidence: r.score,
        scope: Some("s".into()),
        stage: None,
        approval: None,
        refused: None,
        gate: None,
        dry_run: false,
        outcome: Some(FixOutcome::Succeeded),
        verdict: None,
        silence: None,
    });
    Incident {
        id: "inc-1-0".into(),
        fingerprint: "f-a".into(),
        state: IncidentState::Resolved,
        alertname: "T".into(),
        service: Some("a".into()),
        playbook: Some("t".into()),
        alert,
        created_at: at,
        updated_at: at,
        resolved_at: Some(at),
        firings: 1,
        created_by_entry: "1-0".into(),
        applied_entries: vec![],
        diagnosis: Some(diagnosis),
        timeline: vec![],
        fix,
        last_seen: None,
        flaps: 0,
        version: 3,
    }
}

async fn replay(incident: &Incident, candidate: &str, prune: PruneMode) -> Replayed {
    let replayer = Replayer::new(
        catalog(candidate),
        ReplayOptions {
            prune,
            ..ReplayOptions::default()
        },
    );
    let rewalk = replayer.rewalk(incident).await;
    Replayed::compare(incident, &rewalk)
}

fn verdict(correct: bool) -> Option<Verdict> {
    Some(Verdict {
        correct,
        severity: None,
        by: "alice".into(),
        at: Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 0).unwrap(),
        comment: String::new(),
    })
}

#[tokio::test]
async fn the_same_playbook_replays_unchanged_with_its_recorded_prune_state() {
    let text = playbook(0.6, HEAP, "");
    let incident = recorded(&text, 0.05).await;
    let r = replay(&incident, &text, PruneMode::Recorded).await;
    assert_eq!(r.change, Change::Unchanged, "{r:#?}");
    assert_eq!(r.recorded_hash, r.candidate_hash);
    assert!(r.missing.is_empty(), "the pruned probe is not read: {r:#?}");
    assert_eq!(r.known, Some(Known::Held));
    // Ignoring the prune state evaluates the probe node, whose signal a walk that skipped it
    // never read: it is missing, and the node cannot be decided.
    let r = replay(&incident, &text, PruneMode::Ignored).await;
    assert_eq!(r.change, Change::Unchanged);
    assert_eq!(
        r.missing.get("probe").map(String::as_str),
        Some("not in the record"),
        "{r:#?}"
    );
}

#[tokio::test]
async fn a_misfix_still_chosen_is_repeated_and_one_no_longer_chosen_is_avoided() {
    let mut incident = recorded(&playbook(0.6, HEAP, ""), 0.05).await;
    incident.fix.as_mut().unwrap().verdict = verdict(false);
    let kept = replay(&incident, &playbook(0.55, HEAP, ""), PruneMode::Recorded).await;
    assert_eq!(
        (kept.change, kept.effect),
        (Change::Unchanged, Some(VerdictEffect::MisfixRepeated))
    );
    let raised = replay(&incident, &playbook(0.7, HEAP, ""), PruneMode::Recorded).await;
    assert_eq!(
        (raised.change, raised.effect),
        (Change::FixLost, Some(VerdictEffect::MisfixAvoided))
    );
    assert_eq!(raised.crossed.len(), 1, "{raised:#?}");
    let summary = Summary::of(&[kept, raised]);
    assert_eq!(
        (
            summary.misfixes_repeated,
            summary.misfixes_avoided,
            summary.decisions_changed
        ),
        (1, 1, 1)
    );
    assert_eq!(summary.playbook_changed, 2);
}

#[tokio::test]
async fn a_recurred_fix_chosen_again_is_a_repeated_recurrence_and_outranks_a_correct_verdict() {
    let mut incident = recorded(&playbook(0.6, HEAP, ""), 0.05).await;
    incident.fix.as_mut().unwrap().verdict = verdict(true);
    incident.timeline.push(TimelineEvent {
        at: incident.created_at,
        kind: "recurred".into(),
        message: "came back".into(),
    });
    let r = replay(&incident, &playbook(0.55, HEAP, ""), PruneMode::Recorded).await;
    assert_eq!(r.known, Some(Known::Recurred));
    assert_eq!(
        (r.change, r.effect),
        (Change::Unchanged, Some(VerdictEffect::RecurrenceRepeated))
    );
    // Without the recurrence, the confirmed-correct fix lost to a higher threshold is counted.
    incident.timeline.clear();
    let r = replay(&incident, &playbook(0.7, HEAP, ""), PruneMode::Recorded).await;
    assert_eq!(
        (r.known, r.effect),
        (Some(Known::Correct), Some(VerdictEffect::CorrectFixLost))
    );
}

#[tokio::test]
async fn a_changed_query_is_not_replayed_with_the_old_value_and_a_probe_is_never_fetched() {
    let incident = recorded(&playbook(0.6, HEAP, ""), 0.05).await;
    let changed = playbook(0.6, "max(t_heap{service=\"{{ $labels.service }}\"})", "");
    let r = replay(&incident, &changed, PruneMode::Recorded).await;
    assert_eq!(
        r.missing.get("heap").map(String::as_str),
        Some("changed since the record"),
        "{r:#?}"
    );
    assert_eq!(
        r.change,
        Change::FixLost,
        "the heap node cannot be decided: {r:#?}"
    );

    // A value too large to record is missing too, never replayed as no data.
    let mut large = incident.clone();
    if let Some(r) = large.diagnosis.as_mut().and_then(|d| d.evidence.get_mut("heap")) {
        r.value = None;
        r.omitted_bytes = Some(70_000);
    }
    let r = replay(&large, &playbook(0.6, HEAP, ""), PruneMode::Recorded).await;
    assert_eq!(
        r.missing.get("heap").map(String::as_str),
        Some("too large to record"),
        "{r:#?}"
    );

    let fetching = Replayer::new(
        catalog(&playbook(
            0.6,
            HEAP,
            "      - id: t_probe2\n        when: evidence.probe.status == 503\n",
        )),
        ReplayOptions {
            prune: PruneMode::Ignored,
            fetch_missing: Some(Arc::new(FixtureEvidence::default())),
            ..ReplayOptions::default()
        },
    );
    let mut unpruned = incident.clone();
    if let Some(d) = unpruned.diagnosis.as_mut() {
        d.evidence.remove("probe");
    }
    let rewalk = fetching.rewalk(&unpruned).await;
    assert_eq!(
        rewalk.missing.get("probe").map(String::as_str),
        Some("not in the record; a http signal cannot be read for a past instant"),
        "{rewalk:#?}"
    );
    assert!(rewalk.fetched.is_empty());
}
