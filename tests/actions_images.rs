//! `actions/build.sh` builds every action's image offline (busybox-static + the action's scripts,
//! `docker import`): afterwards each action.yaml's `image:` is on the engine, every phase's
//! argv[0] is an executable in it, and every phase script parses as POSIX sh for busybox ash.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use rootfix::catalog::Catalog;
use rootfix::model::action::{PhaseName, PhaseStep, RunnerKind};

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI runs")
}

#[test]
fn build_sh_builds_every_image_and_every_phase_program_is_in_it() {
    // Always runs build.sh, even when scripts/test-all.sh built the images just before.
    actions::run_build_sh(&[]);
    let listed = Command::new("bash")
        .arg(support::repo_path("actions/build.sh"))
        .arg("--list")
        .output()
        .expect("build.sh --list");
    assert!(listed.status.success());
    let listed: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(String::from)
        .collect();

    let catalog = Catalog::load(&support::shipped_paths()).expect("shipped catalog is valid");
    let mut images = Vec::new();
    for action in catalog.actions.values() {
        let Some(image) = &action.image else {
            // Only actions made of native operations (kubernetes, or docker operations) have none.
            let all_operations = PhaseName::ALL
                .iter()
                .filter_map(|p| action.phases.get(*p))
                .all(|p| matches!(p.step, PhaseStep::Operation(_)));
            assert!(
                action.runner == RunnerKind::Kubernetes
                    || (action.runner == RunnerKind::Docker && all_operations),
                "{} has no image",
                action.name
            );
            continue;
        };
        images.push(image.clone());
        assert!(
            listed.contains(image),
            "build.sh --list misses {image}: {listed:?}"
        );
        let inspect = docker(&[
            "image",
            "inspect",
            "-f",
            "{{ index .Config.Labels \"rootfix.action\" }}",
            image,
        ]);
        assert!(
            inspect.status.success(),
            "{image} is not on the engine after build.sh"
        );
        assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), action.name);
        for phase in PhaseName::ALL {
            let Some(spec) = action.phases.get(phase) else {
                continue;
            };
            // A docker action may mix native operations (no container) with commands.
            let PhaseStep::Run(argv) = &spec.step else {
                assert_eq!(
                    action.runner,
                    RunnerKind::Docker,
                    "{}: a container action with an operation",
                    action.name
                );
                continue;
            };
            let program = &argv[0];
            // Executable, and (for scripts) valid sh syntax for the image's busybox ash.
            let check = docker(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--read-only",
                image,
                "/bin/sh",
                "-c",
                r#"test -f "$1" && test -x "$1" && { head -c 2 "$1" | grep -q '#!' && sh -n "$1" || true; }"#,
                "sh",
                program,
            ]);
            assert!(
                check.status.success(),
                "{} {}: {program} is not an executable (valid) program in {image}: {}",
                action.name,
                phase.as_str(),
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    images.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(
        images, listed_sorted,
        "build.sh --list names exactly the images of the actions"
    );
}

#[test]
fn images_hold_only_the_busybox_applets_the_actions_need() {
    actions::ensure_images();
    let image = actions::action("nginx-upstream-failover")
        .image
        .clone()
        .expect("image");
    for absent in ["/bin/reboot", "/bin/mount", "/bin/su", "/sbin/init", "/bin/bash"] {
        let run = docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            &image,
            "/bin/test",
            "-e",
            absent,
        ]);
        assert!(!run.status.success(), "{absent} should not be in {image}");
    }
}

#[test]
fn build_sh_is_idempotent_and_keeps_unchanged_images() {
    actions::ensure_images();
    let image = actions::action("nginx-upstream-failover")
        .image
        .clone()
        .expect("image");
    let id = |i: &str| {
        String::from_utf8_lossy(&docker(&["image", "inspect", "-f", "{{.Id}}", i]).stdout)
            .trim()
            .to_string()
    };
    let before = id(&image);
    let again = actions::run_build_sh(&["nginx-upstream-failover"]);
    assert!(again.contains("up to date"), "{again}");
    assert_eq!(id(&image), before, "an unchanged image is kept");
}
