//! The page's HTML. Every value that comes from an alert, a param, a token name or an error goes
//! through [`escape`](fn@escape) (ids in URLs through [`seg`] first); nothing else builds markup.
//! No script anywhere: forms post, the server redirects.
//!
//! One module a page — `login`, `dashboard`, `incident_page` — around the `layout` they share;
//! `approvals` (the approvals table both pages show) and `journal` (the fix's journal) are parts
//! of pages; `stage_picture` is the stages view's SVG of outcomes and stages; `escape`, `values`
//! and `fix_text` say how values are shown.

mod approvals;
mod dashboard;
mod escape;
mod fix_text;
mod incident_page;
mod journal;
mod layout;
mod login;
mod stage_picture;
mod values;

pub use dashboard::{Dashboard, dashboard};
pub use escape::{back_to, escape, path_segment, seg};
pub use fix_text::{can_confirm, fix_duration, resolve_text};
pub use incident_page::incident;
pub use layout::{error_page, layout};
pub use login::login_page;

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::dashboard::fix_cell;
    use super::fix_text::tests::ran;
    use super::*;
    use crate::incident::{Incident, IncidentState, Verdict};
    use crate::server::auth::Identity;
    use crate::server::ui::session::Flash;

    #[test]
    fn a_script_in_a_label_is_text() {
        let mut labels = std::collections::BTreeMap::new();
        labels.insert("service".to_string(), "<script>alert(1)</script>".to_string());
        let alert = crate::alert::Alert {
            status: crate::alert::AlertStatus::Firing,
            labels,
            annotations: Default::default(),
            starts_at: Utc::now(),
            ends_at: Utc::now(),
            generator_url: "javascript:alert(1)".into(),
            fingerprint: "f\"><script>".into(),
        };
        let incident = Incident {
            id: "inc-1".into(),
            fingerprint: "f\"><script>".into(),
            state: IncidentState::Open,
            alertname: "<b>X</b>".into(),
            service: Some("<script>alert(1)</script>".into()),
            playbook: None,
            alert,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            resolved_at: None,
            firings: 1,
            created_by_entry: "1-0".into(),
            applied_entries: vec![],
            diagnosis: None,
            timeline: vec![],
            fix: None,
            last_seen: None,
            flaps: 0,
            version: 0,
        };
        let who = Identity {
            name: "<img src=x>".into(),
            role: crate::config::Role::Viewer,
        };
        let page = super::incident(&incident, &[], None, false, (&who, "csrf"), None, None);
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>X"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        let dash = dashboard(
            &Dashboard {
                killswitch: None,
                approvals: vec![],
                incidents: vec![incident],
                stages: Ok(vec![]),
                can_decide: false,
            },
            (&who, "csrf"),
            Some(&Flash {
                ok: false,
                text: "<script>x</script>".into(),
            }),
        );
        assert!(!dash.contains("<script>"), "{dash}");
        assert!(dash.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn a_verdict_replaces_the_confirm_form() {
        let who = Identity {
            name: "approver".into(),
            role: crate::config::Role::Approver,
        };
        let waiting = ran(None);
        assert!(can_confirm(&waiting));
        let page = super::incident(&waiting, &[], None, true, (&who, "c"), None, None);
        assert!(page.contains("class=\"confirm\""), "{page}");
        assert!(!page.contains("verdict-given"), "{page}");
        let confirmed = ran(Some(Verdict {
            correct: false,
            severity: Some(crate::autonomy::outcome::Severity::P2),
            by: "<alice>".into(),
            at: DateTime::<Utc>::UNIX_EPOCH,
            comment: "wrong pod".into(),
        }));
        assert!(!can_confirm(&confirmed), "a second verdict is a 409 in the API");
        let page = super::incident(&confirmed, &[], None, true, (&who, "c"), None, None);
        assert!(!page.contains("class=\"confirm\""), "{page}");
        assert!(
            page.contains(
                "<p id=\"verdict-given\" class=\"verdict\">misfix (P2) by &lt;alice&gt; at 1970-01-01 00:00:00 UTC: wrong pod</p>"
            ),
            "{page}"
        );
        let cell = fix_cell(&confirmed);
        assert!(cell.contains("verdict: misfix (P2) by &lt;alice&gt;"), "{cell}");
        assert!(!cell.contains("to-confirm"), "{cell}");
        assert!(fix_cell(&waiting).contains("href=\"/ui/incidents/inc-1#confirm\""));
    }

    #[test]
    fn the_confirm_form_is_offered_only_for_a_fix_that_executed() {
        use crate::fix::journal::FixOutcome;
        let who = Identity {
            name: "approver".into(),
            role: crate::config::Role::Approver,
        };
        for (outcome, offered) in [
            (FixOutcome::Succeeded, true),
            (FixOutcome::RolledBack("verify failed".into()), true),
            (FixOutcome::RollbackFailed("rollback failed".into()), true),
            (FixOutcome::Aborted("precheck: exit code 1".into()), false),
            (FixOutcome::AlreadyHealthy, false),
            (FixOutcome::DryRun("dry run".into()), false),
            (FixOutcome::Refused("another fix holds the target".into()), false),
        ] {
            let mut i = ran(None);
            if let Some(f) = i.fix.as_mut() {
                f.outcome = Some(outcome.clone());
            }
            assert_eq!(can_confirm(&i), offered, "{outcome:?}");
            let page = super::incident(&i, &[], None, true, (&who, "c"), None, None);
            assert_eq!(page.contains("Was the fix right?"), offered, "{outcome:?}");
        }
    }
}
