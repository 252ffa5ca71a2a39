//! `fixes:`: how fixes run on this install: the per-fix state folders, the target lock's lease
//! and wait, and `host_paths` (mounts' host paths as actions name them → this install's).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::report::Reporter;
use crate::catalog::spans::join_key;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(super) struct FixesDocument {
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    lease: Option<String>,
    #[serde(default)]
    lock_wait: Option<String>,
    #[serde(default)]
    host_paths: BTreeMap<String, String>,
}

/// How fixes run.
#[derive(Debug, Clone)]
pub struct FixesConfig {
    /// Host folder for the per-fix state folders the phases share (`/rootfix/state`).
    pub state_dir: PathBuf,
    /// Lease of a target's lock; renewed every third of it while the fix runs.
    pub lease: Duration,
    /// How long a fix waits for a target another fix holds; zero refuses at once.
    pub lock_wait: Duration,
    /// Host paths as action files name them (mounts' `host`) → host paths on this install; the
    /// Docker runner binds the mapped path (longest key wins, the rest of the path appended).
    pub host_paths: BTreeMap<PathBuf, PathBuf>,
}

/// `fixes:` with its defaults; `relative` resolves `state_dir` against the config's folder.
pub(super) fn check_fixes(
    doc: &FixesDocument,
    relative: &dyn Fn(PathBuf) -> PathBuf,
    r: &mut Reporter<'_>,
) -> FixesConfig {
    FixesConfig {
        state_dir: relative(
            doc.state_dir
                .clone()
                .unwrap_or_else(|| "/var/lib/rootfix/fixes".into()),
        ),
        lease: r.duration("fixes.lease", doc.lease.as_deref(), Duration::from_secs(30)),
        lock_wait: match doc.lock_wait.as_deref() {
            Some("0") | Some("0s") => Duration::ZERO,
            other => r.duration("fixes.lock_wait", other, Duration::ZERO),
        },
        host_paths: check_host_paths(&doc.host_paths, r),
    }
}

/// `fixes.host_paths`: both sides absolute paths without `..`.
fn check_host_paths(doc: &BTreeMap<String, String>, r: &mut Reporter<'_>) -> BTreeMap<PathBuf, PathBuf> {
    let plain = |p: &str| p.starts_with('/') && !p.split('/').any(|seg| seg == "..");
    let mut out = BTreeMap::new();
    for (from, to) in doc {
        let field = join_key("fixes.host_paths", from);
        let mut ok = true;
        if !plain(from) {
            r.at_key(
                &field,
                format!("`{from}` is not an absolute path without `..` (a mount's host path as an action names it)"),
            );
            ok = false;
        }
        if !plain(to) {
            r.at_value(
                &field,
                format!("`{to}` is not an absolute path without `..` (the path on this install)"),
            );
            ok = false;
        }
        if ok {
            out.insert(PathBuf::from(from), PathBuf::from(to));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use crate::config::load::tests::{BASE, parse, problem_lines};

    #[test]
    fn host_paths_are_read_and_checked_with_their_place() {
        let c = parse(&format!(
            "{BASE}fixes:\n  host_paths:\n    /etc/nginx/conf.d: /tmp/demo/nginx/conf.d\n    /run/nginx.pid: /tmp/demo/nginx.pid\n"
        ))
        .unwrap();
        assert_eq!(
            c.fixes.host_paths,
            BTreeMap::from([
                (
                    PathBuf::from("/etc/nginx/conf.d"),
                    PathBuf::from("/tmp/demo/nginx/conf.d")
                ),
                (
                    PathBuf::from("/run/nginx.pid"),
                    PathBuf::from("/tmp/demo/nginx.pid")
                ),
            ])
        );
        assert!(parse(BASE).unwrap().fixes.host_paths.is_empty());
        let lines = problem_lines(&format!(
            "{BASE}fixes:\n  host_paths:\n    etc/nginx: /tmp/x\n    /etc/ok: relative/path\n    /etc/a/../b: /tmp/../etc\n"
        ));
        assert_eq!(
            lines,
            [
                "5:5: fixes.host_paths.etc/nginx: `etc/nginx` is not an absolute path without `..` (a mount's host path as an action names it)",
                "6:14: fixes.host_paths./etc/ok: `relative/path` is not an absolute path without `..` (the path on this install)",
                "7:5: fixes.host_paths./etc/a/../b: `/etc/a/../b` is not an absolute path without `..` (a mount's host path as an action names it)",
                "7:18: fixes.host_paths./etc/a/../b: `/tmp/../etc` is not an absolute path without `..` (the path on this install)",
            ]
        );
    }
}
