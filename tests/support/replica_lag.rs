//! The seed's replica-lag response as a remedy of steps, for the tests and the benchmark that run
//! it against a real MariaDB primary and replica and the flag service: the shipped actions, the
//! three steps as the shipped playbook's branch writes them, and the host paths of the actions'
//! secrets.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rootfix::catalog::Catalog;
use rootfix::fix::executor::{StepPlan, StepsPlan};
use rootfix::model::Action;

/// A step of `action` with these params (no verify condition).
pub fn step(action: &Arc<Action>, params: &[(&str, &str)]) -> StepPlan {
    StepPlan {
        action: action.clone(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        verify: None,
    }
}

/// `fixes.host_paths` for the actions' secrets: the MariaDB client file, and a folder for
/// `http-set-value` (empty: no token).
pub fn host_paths(mysql_secrets: &Path, http_secrets: &Path) -> BTreeMap<PathBuf, PathBuf> {
    BTreeMap::from([
        (
            PathBuf::from("/etc/rootfix/secrets/mysql"),
            mysql_secrets.to_path_buf(),
        ),
        (
            PathBuf::from("/etc/rootfix/secrets/http-set-value"),
            http_secrets.to_path_buf(),
        ),
    ])
}

/// Read-only on the replica, the slow-query throttle on the primary, the switch at `switch_url`
/// on: the three steps, with the shipped actions.
pub fn response(incident: &str, replica: &str, primary: &str, switch_url: &str) -> StepsPlan {
    let catalog = Catalog::load(&crate::support::shipped_paths()).unwrap_or_else(|p| panic!("{p:#?}"));
    let mysql = catalog.actions["mysql-replica-lag"].clone();
    let switch = catalog.actions["http-set-value"].clone();
    StepsPlan {
        incident: incident.to_string(),
        name: "replica-lag-response".into(),
        steps: vec![
            step(&mysql, &[("replica_address", replica), ("mode", "read-only")]),
            step(
                &mysql,
                &[
                    ("replica_address", primary),
                    ("mode", "slow-query-throttle"),
                    ("max_execution_ms", "2000"),
                ],
            ),
            step(&switch, &[("url", switch_url), ("value", "on")]),
        ],
        verify: None,
        dry_run: false,
        waves: Vec::new(),
    }
}
