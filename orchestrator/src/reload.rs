//! The running catalog and its hot reload.
//!
//! [`CatalogHandle`] holds the catalog in force; readers take a cheap `Arc` of it. The watcher
//! polls the playbook and action folders (file names, sizes and modification times) and, on a
//! change, loads a whole new catalog: a valid one is swapped in atomically; an invalid one is
//! logged problem by problem (`file:line:col: field: message`) and the running set stays in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tracing::{error, info, warn};

use crate::catalog::{Catalog, Problem};
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct CatalogHandle {
    inner: Arc<RwLock<Arc<Catalog>>>,
}

impl CatalogHandle {
    pub fn new(catalog: Catalog) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Arc::new(catalog))),
        }
    }

    /// The catalog in force now.
    pub fn current(&self) -> Arc<Catalog> {
        match self.inner.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, catalog: Catalog) {
        match self.inner.write() {
            Ok(mut guard) => *guard = Arc::new(catalog),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(catalog),
        }
    }
}

/// What the folders look like: every YAML file's path, size and modification time.
fn fingerprint(paths: &[PathBuf]) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out);
    }
    out.sort();
    out
}

fn walk(path: &Path, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
    let Ok(meta) = std::fs::metadata(path) else { return };
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                walk(&e.path(), out);
            }
        }
    } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        out.push((path.to_path_buf(), meta.len(), meta.modified().ok()));
    }
}

/// Outcome of one reload attempt, for tests and logs.
#[derive(Debug)]
pub enum Reload {
    Unchanged,
    Applied(String),
    Rejected(Vec<Problem>),
}

pub struct Watcher {
    handle: CatalogHandle,
    paths: Vec<PathBuf>,
    seen: Vec<(PathBuf, u64, Option<SystemTime>)>,
    metrics: Arc<Metrics>,
}

impl Watcher {
    pub fn new(handle: CatalogHandle, paths: Vec<PathBuf>, metrics: Arc<Metrics>) -> Self {
        let seen = fingerprint(&paths);
        Self {
            handle,
            paths,
            seen,
            metrics,
        }
    }

    /// Checks once; reloads when something changed.
    pub fn check(&mut self) -> Reload {
        let now = fingerprint(&self.paths);
        if now == self.seen {
            return Reload::Unchanged;
        }
        self.seen = now;
        match Catalog::load(&self.paths) {
            Ok(catalog) => {
                let summary = catalog.summary();
                self.handle.replace(catalog);
                self.metrics.reload("ok");
                info!(%summary, "playbooks and actions reloaded");
                Reload::Applied(summary)
            }
            Err(problems) => {
                self.metrics.reload("rejected");
                for p in &problems {
                    error!(problem = %p, "invalid change to playbooks or actions");
                }
                warn!(
                    problems = problems.len(),
                    "change rejected; the running playbooks and actions stay in force"
                );
                Reload::Rejected(problems)
            }
        }
    }

    /// Polls every `interval` until `shutdown` fires.
    pub async fn run(mut self, interval: Duration, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Loading reads files and compiles conditions: keep it off the async workers.
                    let result = tokio::task::block_in_place(|| self.check());
                    let _ = result;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
