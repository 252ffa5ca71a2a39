//! The files in `deploy/` are accepted by the tools that will read them: Prometheus rules by
//! `promtool`, the Alertmanager receiver by `amtool`, the example config by rootfix itself.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use support::repo_path;

fn tool(name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(name)
        .args(args)
        .current_dir(repo_path("."))
        .output()
        .unwrap_or_else(|e| {
            panic!("{name} is installed with Prometheus/Alertmanager (scripts/test-all.sh): {e}")
        });
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn prometheus_rules_pass_promtool() {
    for file in ["deploy/prometheus/rootfix-rules.yml", "deploy/demo/rules.yml"] {
        let (ok, out) = tool("promtool", &["check", "rules", file]);
        assert!(ok, "{file}: {out}");
        assert!(out.contains("SUCCESS"), "{file}: {out}");
    }
}

#[test]
fn the_alertmanager_receiver_passes_amtool() {
    let (ok, out) = tool("amtool", &["check-config", "deploy/alertmanager/receiver.yml"]);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_example_config_is_a_valid_rootfix_config() {
    let path = repo_path("deploy/rootfix.example.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let env = |name: &str| {
        name.starts_with("ROOTFIX_")
            .then(|| format!("{}-0123456789abcdef", name.to_lowercase()))
    };
    let config = rootfix::config::ServeConfig::parse(&path, &text, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.tokens.len(), 4);
    assert!(config.evidence.prometheus.contains_key("default"));
    assert!(config.playbooks.ends_with("deploy/playbooks"));
    let scopes: Vec<&str> = config.autonomy.scopes.0.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(scopes, ["staging", "prod-core", "prod"]);
    assert_eq!(
        config.autonomy.scopes.get("prod-core").unwrap().max_stage,
        rootfix::autonomy::stage::Stage::Silent
    );
    assert!(config.silences.is_some());
    let a = &config.autonomy;
    assert_eq!(a.recurrence_window, std::time::Duration::from_secs(3600));
    assert_eq!(a.max_recurrences, 2);
    assert_eq!(
        (a.budget.fixes_per_hour, a.budget.per_service),
        (Some(20), Some(5))
    );
    assert!(!a.promotion.require_lower_bound);
}

#[test]
fn the_demo_files_pass_their_tools() {
    // mtail compiles the programs that turn the demo's logs into metrics.
    let (ok, out) = tool(
        "mtail",
        &[
            "--compile_only",
            "--progs",
            "deploy/demo",
            "--logtostderr",
            "--port",
            "0",
        ],
    );
    assert!(ok, "{out}");
    // Prometheus accepts the demo's config (as scripts/demo.sh config prometheus fills it in).
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(repo_path("deploy/demo/prometheus.yml"))
        .unwrap()
        .replace("@PROMETHEUS@", "127.0.0.1:9090")
        .replace("@ALERTMANAGER@", "127.0.0.1:9093")
        .replace("@ROOTFIX@", "127.0.0.1:5001");
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    for rules in ["deploy/demo/rules.yml", "deploy/prometheus/rootfix-rules.yml"] {
        let name = Path::new(rules).file_name().unwrap();
        std::fs::copy(repo_path(rules), dir.path().join(name)).unwrap();
    }
    let file = dir.path().join("prometheus.yml").display().to_string();
    let (ok, out) = tool("promtool", &["check", "config", &file]);
    assert!(ok && out.contains("SUCCESS"), "{out}");
}
