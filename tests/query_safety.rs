//! Query safety at the catalog's doors: the real `rootfix validate` refuses placeholders outside
//! a double-quoted string of a PromQL or LogQL query, each at its file:line:col, with exit code 1;
//! a hot reload of such a playbook is refused and the running set stays in force.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::Arc;

use rootfix::catalog::Catalog;
use rootfix::metrics::Metrics;
use rootfix::reload::{CatalogHandle, Reload, Watcher};
use support::repo_path;

const HOSTILE: &str = r#"apiVersion: rootfix/v1
kind: Playbook
metadata:
  name: hostile-queries
spec:
  match:
    - alertname="OrderServiceTimeout"
  evidence:
    single:
      prometheus:
        query: max(up{service='{{ $labels.service }}'})
    metric:
      prometheus:
        query: '{{ $labels.metric }}{service="x"}'
    range:
      prometheus:
        query: >-
          sum(rate(up{service="{{ $labels.service }}"}[5m]))
          / sum(rate(up[{{ $labels.window }}]))
    pipeline:
      loki:
        query: sum(count_over_time({service="x"} | {{ $labels.stage }} [5m]))
    raw:
      loki:
        query: '{service=`{{ $labels.service }}`}'
    format:
      loki:
        query: '{service="x"} | line_format "{{ $labels.service }}"'
    heap:
      prometheus:
        query: max(jvm_memory_used_bytes{service="{{ $labels.service }}"})
  tree:
    id: root
    children:
      - id: heap_high
        when: evidence.heap > 0.95
"#;

#[test]
fn validate_refuses_hostile_placeholders_at_their_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.yaml");
    std::fs::write(&file, HOSTILE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .arg("validate")
        .arg(&file)
        .arg(repo_path("actions"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let f = file.display();
    let outside = |r: &str, lang: &str| {
        format!(
            "placeholder `{{{{ {r} }}}}` is outside a string literal; an alert's label value there \
             would change the {lang} query itself: place it only inside a double-quoted string, \
             e.g. {{service=\"{{{{ {r} }}}}\"}}"
        )
    };
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{f}:11:32: spec.evidence.single.prometheus.query: placeholder `{{{{ $labels.service }}}}` \
                 is inside a '-quoted string; values are escaped for double quotes only; an alert's \
                 label value there would change the PromQL query itself: place it only inside a \
                 double-quoted string, e.g. {{service=\"{{{{ $labels.service }}}}\"}}"
            ),
            format!(
                "{f}:14:17: spec.evidence.metric.prometheus.query: {}",
                outside("$labels.metric", "PromQL")
            ),
            format!(
                "{f}:19:25: spec.evidence.range.prometheus.query: {}",
                outside("$labels.window", "PromQL")
            ),
            format!(
                "{f}:22:52: spec.evidence.pipeline.loki.query: {}",
                outside("$labels.stage", "LogQL")
            ),
            format!(
                "{f}:25:27: spec.evidence.raw.loki.query: placeholder `{{{{ $labels.service }}}}` is \
                 inside a backtick string, which has no escapes; an alert's label value there would \
                 change the LogQL query itself: place it only inside a double-quoted string, e.g. \
                 {{service=\"{{{{ $labels.service }}}}\"}}"
            ),
            format!(
                "{f}:28:46: spec.evidence.format.loki.query: placeholder `{{{{ $labels.service }}}}` is \
                 in a line_format template, which LogQL reads as more than a value; an alert's label \
                 value there would change the query itself: use it only as the value of `=` or `!=` \
                 in a stream selector or a label filter, or of a `|=` or `!=` line filter"
            ),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
    );
}

#[test]
fn a_reload_with_a_hostile_placeholder_is_refused_and_the_running_set_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (playbooks, actions) = (dir.path().join("playbooks"), dir.path().join("actions"));
    for (from, to) in [("playbooks", &playbooks), ("actions", &actions)] {
        copy_tree(&repo_path(from), to);
    }
    let paths = vec![playbooks.clone(), actions];
    let handle = CatalogHandle::new(Catalog::load(&paths).unwrap());
    let before = handle.current();
    let mut watcher = Watcher::new(handle.clone(), paths, Arc::new(Metrics::new()));

    // The Loki query's selector value moves from double quotes into a backtick string.
    let file = playbooks.join("order-service-timeout.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let good = r#"sum(count_over_time({service="{{ $labels.service }}"} |~ "timeout.*payment" [5m]))"#;
    assert!(text.contains(good));
    let hostile = text.replace(
        good,
        r#"sum(count_over_time({service="x"} |~ `{{ $labels.service }}` [5m]))"#,
    );
    std::fs::write(&file, hostile).unwrap();
    let Reload::Rejected(problems) = watcher.check() else {
        panic!("the hostile change was not rejected");
    };
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = lines[0].as_str();
    assert!(
        line.starts_with(&format!(
            "{}:108:49: spec.evidence.payment_timeout_logs.loki.query: placeholder `{{{{ $labels.service }}}}` is inside a backtick string",
            file.display()
        )),
        "{line}"
    );
    assert!(
        Arc::ptr_eq(&before, &handle.current()),
        "the running set was replaced"
    );

    // Putting it back is applied.
    std::fs::write(&file, text).unwrap();
    assert!(matches!(watcher.check(), Reload::Applied(_)));
    assert!(!Arc::ptr_eq(&before, &handle.current()));
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
