//! `retention:`: how long closed incidents are kept (with their journals and approvals), the
//! JSONL file they are exported to before removal (a backtest corpus), how long audit events are
//! kept, and how many incidents one run of the leader's job removes at most.
//!
//! ```yaml
//! retention:
//!   incidents: 30d                            # closed (resolved, stale) incidents, from when they closed
//!   export: /var/lib/rootfix/incidents.jsonl  # optional: one JSON line per removed incident, fsynced first
//!   audit: 90d                                # audit events (besides the 100,000-entry cap)
//!   batch: 1000                               # incidents removed per leader run at most
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::report::Reporter;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(super) struct RetentionDocument {
    #[serde(default)]
    incidents: Option<String>,
    #[serde(default)]
    export: Option<PathBuf>,
    #[serde(default)]
    audit: Option<String>,
    #[serde(default)]
    batch: Option<usize>,
}

/// What is kept, and for how long (the `retention:` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// A closed incident is removed this long after it closed, with its journal and approvals.
    pub incidents: Duration,
    /// Where removed incidents are appended first, one JSON line each (fsynced before removal).
    pub export: Option<PathBuf>,
    /// Audit events older than this are trimmed.
    pub audit: Duration,
    /// Incidents removed per run of the leader's job at most (the rest in the next runs).
    pub batch: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            incidents: Duration::from_secs(30 * 24 * 3600),
            export: None,
            audit: Duration::from_secs(90 * 24 * 3600),
            batch: 1000,
        }
    }
}

/// `retention:` with its defaults; `export` relative to the config file.
pub(super) fn check_retention(
    doc: &RetentionDocument,
    relative: &dyn Fn(PathBuf) -> PathBuf,
    r: &mut Reporter<'_>,
) -> RetentionConfig {
    let defaults = RetentionConfig::default();
    let incidents = r.duration(
        "retention.incidents",
        doc.incidents.as_deref(),
        defaults.incidents,
    );
    let audit = r.duration("retention.audit", doc.audit.as_deref(), defaults.audit);
    let batch = doc.batch.unwrap_or(defaults.batch);
    if batch == 0 || batch > 100_000 {
        r.at_value("retention.batch", "must be in 1..=100000");
    }
    let export = doc.export.clone().map(relative);
    if let Some(path) = &export
        && path.as_os_str().is_empty()
    {
        r.at_value(
            "retention.export",
            "must be a file path (leave it out for no export)",
        );
    }
    if let Some(parent) = export.as_ref().and_then(|p| p.parent())
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        r.at_value(
            "retention.export",
            format!("directory {} does not exist", parent.display()),
        );
    }
    RetentionConfig {
        incidents,
        export,
        audit,
        batch,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::load::tests::{BASE, parse, problem_lines};

    #[test]
    fn reads_the_retention_section_and_its_defaults() {
        let c = parse(&format!(
            "{BASE}retention: {{incidents: 7d, export: /tmp/corpus.jsonl, audit: 12h, batch: 50}}\n"
        ))
        .unwrap()
        .retention;
        assert_eq!(c.incidents, Duration::from_secs(7 * 86400));
        assert_eq!(
            c.export.as_deref(),
            Some(std::path::Path::new("/tmp/corpus.jsonl"))
        );
        assert_eq!((c.audit, c.batch), (Duration::from_secs(12 * 3600), 50));
        let d = parse(BASE).unwrap().retention;
        assert_eq!(d.incidents, Duration::from_secs(30 * 86400));
        assert_eq!(d.export, None);
        assert_eq!(d.audit, Duration::from_secs(90 * 86400));
    }

    #[test]
    fn reports_retention_problems_with_their_place() {
        let lines = problem_lines(&format!(
            "{BASE}retention:\n  incidents: forever\n  audit: 0s\n  batch: 0\n  export: /nonexistent-dir-rootfix/x.jsonl\n"
        ));
        // A relative export is read next to the config file (here /etc/rootfix, which is absent).
        assert!(
            problem_lines(&format!("{BASE}retention: {{export: corpus.jsonl}}\n"))
                .iter()
                .any(|l| l.ends_with("retention.export: directory /etc/rootfix does not exist"))
        );
        // A relative export is read next to the config file (here /etc/rootfix, which is absent).
        assert!(
            problem_lines(&format!("{BASE}retention: {{export: corpus.jsonl}}\n"))
                .iter()
                .any(|l| l.ends_with("retention.export: directory /etc/rootfix does not exist"))
        );
        for e in [
            "4:14: retention.incidents: `forever` is not a duration; write e.g. 250ms, 30s, 5m, 1h30m",
            "5:10: retention.audit: must be longer than zero",
            "6:10: retention.batch: must be in 1..=100000",
            "7:11: retention.export: directory /nonexistent-dir-rootfix does not exist",
        ] {
            assert!(lines.iter().any(|l| l == e), "missing `{e}` in {lines:#?}");
        }
    }
}
