//! The catalog against the files a user writes: the shipped playbooks and actions load, every
//! broken file of the corpus is reported at the exact line, column and field, documents survive a
//! read → write → read, and the committed JSON Schemas are current.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use rootfix::catalog::{Catalog, Source, read_sources};
use rootfix::document::action::ActionDocument;
use rootfix::document::playbook::PlaybookDocument;
use support::{repo_path, repo_root, shipped_paths};

#[test]
fn shipped_playbooks_and_actions_are_valid() {
    let catalog = Catalog::load(&shipped_paths()).unwrap_or_else(|problems| {
        panic!(
            "shipped files are invalid:\n{}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let names: Vec<_> = catalog.playbooks.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["go-module-proxy", "order-service-timeout"]);
    for action in [
        "restart-jvm-pod",
        "restart-container",
        "kafka-partition-rebalance",
        "nginx-upstream-failover",
        "fix-db-leak",
        "mysql-replica-lag",
        "http-set-value",
        "go-proxy-switch",
        "network-troubleshoot",
        "dump-thread-stack",
    ] {
        assert!(catalog.actions.contains_key(action), "missing action {action}");
    }
    // The seed's tree: three layers under the root, each with its checks.
    let order = catalog.playbook("order-service-timeout").unwrap();
    let layers: Vec<_> = order
        .root()
        .children
        .iter()
        .map(|&i| order.nodes[i].id.as_str())
        .collect();
    assert_eq!(layers, ["network_layer", "application_layer", "data_layer"]);
    let remedies: Vec<_> = order
        .nodes
        .iter()
        .filter_map(|n| n.remedy.as_ref().map(|r| (n.id.as_str(), r.action.as_str())))
        .collect();
    assert_eq!(
        remedies,
        [
            ("payment_upstream_failing", "nginx-upstream-failover"),
            ("jvm_heap_exhausted", "restart-jvm-pod"),
            ("container_memory_exhausted", "restart-container"),
            ("db_connection_leak", "fix-db-leak"),
            ("replica_lag", "replica-lag-response"),
            ("kafka_under_replicated", "kafka-partition-rebalance"),
        ]
    );
}

/// The `# expect:` lines at the end of a corpus file.
fn expectations(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_broken_file_is_reported_at_its_exact_place() {
    let corpus = repo_path("tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "the corpus has {} files", files.len());
    let actions = read_sources(&[repo_path("actions")]).unwrap();
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expected = expectations(&text);
        assert!(!expected.is_empty(), "{} has no expectations", file.display());
        let mut sources = actions.clone();
        sources.push(Source {
            path: file.clone(),
            text,
        });
        let problems = match Catalog::from_sources(&sources) {
            Ok(_) => Vec::new(),
            Err(p) => p,
        };
        let (here, elsewhere): (Vec<_>, Vec<_>) = problems.iter().partition(|p| p.file == *file);
        assert!(
            elsewhere.is_empty(),
            "{}: problems reported in other files: {elsewhere:?}",
            file.display()
        );
        let actual: Vec<String> = here
            .iter()
            .map(|p| {
                format!(
                    "{}:{}: {}: {}",
                    p.position.line, p.position.column, p.field, p.message
                )
            })
            .collect();
        if actual != expected {
            failures.push(format!(
                "{}\n  expected: {expected:#?}\n  actual:   {actual:#?}",
                file.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_problem_in_one_file_does_not_hide_problems_in_others() {
    let corpus = repo_path("tests/fixtures/invalid");
    let problems = Catalog::load(&[corpus, repo_path("actions")]).unwrap_err();
    let files: std::collections::BTreeSet<_> = problems.iter().map(|p| p.file.clone()).collect();
    // Every file of the corpus has at least one problem, all reported in one run.
    let corpus_files = std::fs::read_dir(repo_path("tests/fixtures/invalid"))
        .unwrap()
        .count();
    assert_eq!(files.len(), corpus_files);
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn documents_survive_read_write_read() {
    let mut rewritten = Vec::new();
    for path in yaml_files(&repo_path("playbooks")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let first: PlaybookDocument = serde_yaml::from_str(&text).unwrap();
        let written = serde_yaml::to_string(&first).unwrap();
        let second: PlaybookDocument = serde_yaml::from_str(&written).unwrap();
        assert_eq!(first, second, "{}", path.display());
        rewritten.push(Source { path, text: written });
    }
    for path in yaml_files(&repo_path("actions")) {
        let text = std::fs::read_to_string(&path).unwrap();
        let first: ActionDocument = serde_yaml::from_str(&text).unwrap();
        let written = serde_yaml::to_string(&first).unwrap();
        let second: ActionDocument = serde_yaml::from_str(&written).unwrap();
        assert_eq!(first, second, "{}", path.display());
        rewritten.push(Source { path, text: written });
    }
    // What was written is still a valid catalog with the same shape.
    let catalog = Catalog::from_sources(&rewritten).unwrap_or_else(|p| panic!("{p:#?}"));
    let original = Catalog::load(&shipped_paths()).unwrap();
    assert_eq!(catalog.playbooks.len(), original.playbooks.len());
    for (a, b) in catalog.playbooks.iter().zip(&original.playbooks) {
        let ids = |p: &rootfix::model::Playbook| p.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(a), ids(b));
    }
}

#[test]
fn committed_schemas_are_current() {
    for (name, text) in rootfix::schema::all() {
        let path = repo_path(&format!("schemas/{name}"));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} is stale: run `cargo run -- schema --out schemas` and commit it",
            path.display()
        );
    }
}

#[test]
fn validate_command_exit_codes_and_output() {
    let ok = Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .arg("validate")
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        "2 playbooks (25 nodes), 10 actions: all valid"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .args([
            "validate",
            "tests/fixtures/invalid/unknown-fields.yaml",
            "actions",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stdout).lines().collect::<Vec<_>>(),
        [
            "tests/fixtures/invalid/unknown-fields.yaml:6:3: spec.windoww: unknown field `windoww`",
            "tests/fixtures/invalid/unknown-fields.yaml:17:9: spec.tree.children[0].whne: unknown field `whne`",
        ]
    );
}
