//! The runner tests' image, built offline like the shipped ones: Debian's busybox-static and
//! `tests/fixtures/runner/phase.sh`, imported with `docker import`.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

pub const TEST_IMAGE: &str = "rootfix-test/phase:1";

/// Builds the test image once per test binary.
pub fn test_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in ["bin", "rootfix", "tmp", "control"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("busybox-static is installed (scripts/lib.sh)");
        for applet in [
            "sh", "cat", "cp", "echo", "sleep", "printf", "test", "[", "mkdir", "rm", "touch", "ls",
        ] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
        }
        let script = crate::support::repo_path("tests/fixtures/runner/phase.sh");
        std::fs::copy(&script, root.join("rootfix/phase")).expect("copy script");
        set_executable(&root.join("rootfix/phase"));
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C '{}' -c . | docker import - {TEST_IMAGE} >/dev/null",
                root.display()
            ))
            .status()
            .expect("docker");
        assert!(status.success(), "docker import failed");
    });
    TEST_IMAGE
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perms = std::fs::metadata(path).expect("stat").permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(path, perms).expect("chmod");
}

/// Containers of this incident still on the engine (running or not).
pub fn containers_of(incident: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=rootfix.incident={incident}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The action file of the test action, with the control folder mounted.
pub fn test_action_yaml(name: &str, image: &str, control: &Path, extra_phase_fields: &str) -> String {
    format!(
        r#"apiVersion: rootfix/v1
kind: Action
metadata: {{name: {name}}}
spec:
  purpose: fix
  runner: docker
  image: {image}
  params:
    target: {{pattern: '.+'}}
  idempotency_key: '{{{{ $params.target }}}}'
  mounts:
    - {{host: {control}, container: /control, read_only: false}}
  phases:
    precheck: {{run: [/rootfix/phase], timeout: 20s}}
    execute: {{run: [/rootfix/phase], timeout: 20s}}
    verify: {{run: [/rootfix/phase], timeout: 20s, retries: 2, interval: 100ms{extra_phase_fields}}}
    rollback: {{run: [/rootfix/phase], timeout: 20s}}
"#,
        control = control.display()
    )
}

/// Waits (up to 10 s) until no container of this incident is left; phase containers are removed
/// in the background after their output is journaled.
pub fn assert_no_containers_left(incident: &str) {
    let started = std::time::Instant::now();
    loop {
        let left = containers_of(incident);
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "containers left behind: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
