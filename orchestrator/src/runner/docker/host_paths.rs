//! Install-specific host paths (`fixes.host_paths` in the config): an action file names the host
//! paths of its mounts as they are on a standard install (`/etc/nginx/conf.d`); an install whose
//! files live elsewhere maps them, and the Docker runner binds the mapped path instead.
//!
//! A mount's host path is mapped by the longest key that equals it or is a parent folder of it
//! (whole path components: `/etc/nginx` maps `/etc/nginx/conf.d/x` but not `/etc/nginx2`), with
//! the rest of the path appended to the key's value: `/etc/nginx/conf.d/x` →
//! `<value of /etc/nginx/conf.d>/x`. Paths no key covers are bound as written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The map from host paths as action files name them to host paths on this install.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPaths {
    map: BTreeMap<PathBuf, PathBuf>,
}

impl HostPaths {
    /// Keys and values are absolute paths (the config checks them).
    pub fn new(map: BTreeMap<PathBuf, PathBuf>) -> Self {
        Self { map }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The host path to bind for `host`, as an action's mount names it.
    pub fn resolve(&self, host: &str) -> PathBuf {
        let path = Path::new(host);
        self.map
            .iter()
            .filter_map(|(from, to)| {
                path.strip_prefix(from)
                    .ok()
                    .map(|rest| (from.components().count(), to, rest))
            })
            .max_by_key(|(depth, _, _)| *depth)
            .map(|(_, to, rest)| {
                if rest.as_os_str().is_empty() {
                    to.clone()
                } else {
                    to.join(rest)
                }
            })
            .unwrap_or_else(|| path.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(pairs: &[(&str, &str)]) -> HostPaths {
        HostPaths::new(
            pairs
                .iter()
                .map(|(a, b)| (PathBuf::from(a), PathBuf::from(b)))
                .collect(),
        )
    }

    #[test]
    fn the_longest_key_wins_and_the_rest_is_appended() {
        let p = paths(&[
            ("/etc/nginx", "/srv/nginx"),
            ("/etc/nginx/conf.d", "/tmp/demo/conf.d"),
            ("/run/nginx.pid", "/tmp/demo/nginx.pid"),
        ]);
        assert_eq!(p.resolve("/etc/nginx/conf.d"), PathBuf::from("/tmp/demo/conf.d"));
        assert_eq!(
            p.resolve("/etc/nginx/conf.d/x"),
            PathBuf::from("/tmp/demo/conf.d/x")
        );
        assert_eq!(
            p.resolve("/etc/nginx/conf.d/a/b"),
            PathBuf::from("/tmp/demo/conf.d/a/b")
        );
        assert_eq!(
            p.resolve("/etc/nginx/nginx.conf"),
            PathBuf::from("/srv/nginx/nginx.conf")
        );
        assert_eq!(p.resolve("/run/nginx.pid"), PathBuf::from("/tmp/demo/nginx.pid"));
    }

    #[test]
    fn only_whole_components_match() {
        let p = paths(&[("/etc/nginx", "/srv/nginx"), ("/etc/ci-runners/env/", "/tmp/ci")]);
        assert_eq!(p.resolve("/etc/nginx2/x"), PathBuf::from("/etc/nginx2/x"));
        assert_eq!(p.resolve("/etc/ngin"), PathBuf::from("/etc/ngin"));
        assert_eq!(p.resolve("/etc/ci-runners/env"), PathBuf::from("/tmp/ci"));
        assert_eq!(p.resolve("/var/log"), PathBuf::from("/var/log"));
        assert_eq!(HostPaths::default().resolve("/etc/x"), PathBuf::from("/etc/x"));
    }
}
