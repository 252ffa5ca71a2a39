//! Action params: checked against their anchored pattern before anything runs, and handed over
//! as environment variables, never spliced into a command line.

use std::collections::BTreeMap;

use crate::model::action::Action;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("action `{action}` has no param `{name}`")]
    Unknown { action: String, name: String },
    #[error("action `{action}` needs param `{name}`")]
    Missing { action: String, name: String },
    #[error("param `{name}` of action `{action}`: `{value}` does not match `{pattern}`")]
    Pattern {
        action: String,
        name: String,
        value: String,
        pattern: String,
    },
}

/// The params a phase gets: `given` checked against the action's specs, defaults filled in.
pub fn validate_params(
    action: &Action,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ParamError> {
    for name in given.keys() {
        if !action.params.contains_key(name) {
            return Err(ParamError::Unknown {
                action: action.name.clone(),
                name: name.clone(),
            });
        }
    }
    let mut out = BTreeMap::new();
    for (name, spec) in &action.params {
        let value = match (given.get(name), &spec.default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) if spec.required => {
                return Err(ParamError::Missing {
                    action: action.name.clone(),
                    name: name.clone(),
                });
            }
            (None, None) => continue,
        };
        if !spec.accepts(&value) {
            return Err(ParamError::Pattern {
                action: action.name.clone(),
                name: name.clone(),
                value,
                pattern: spec.pattern_source.clone(),
            });
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// `ROOTFIX_PARAM_<NAME>=<value>` for each param, plus the incident, action and phase.
pub fn param_env(
    params: &BTreeMap<String, String>,
    incident: &str,
    action: &str,
    phase: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (format!("ROOTFIX_PARAM_{}", k.to_ascii_uppercase()), v.clone()))
        .collect();
    env.push(("ROOTFIX_INCIDENT".into(), incident.into()));
    env.push(("ROOTFIX_ACTION".into(), action.into()));
    env.push(("ROOTFIX_PHASE".into(), phase.into()));
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use std::path::PathBuf;

    fn action(name: &str) -> std::sync::Arc<Action> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let catalog = Catalog::load(&[root.join("actions")]).unwrap();
        catalog.actions[name].clone()
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shell_metacharacters_are_refused_by_the_pattern() {
        let a = action("restart-jvm-pod");
        for hostile in ["x; rm -rf /", "$(reboot)", "`id`", "a\nb", "../etc"] {
            let err =
                validate_params(&a, &given(&[("namespace", hostile), ("deployment", "api")])).unwrap_err();
            assert!(matches!(err, ParamError::Pattern { .. }), "{hostile}: {err}");
        }
        let ok = validate_params(&a, &given(&[("namespace", "shop"), ("deployment", "order-api")])).unwrap();
        assert_eq!(ok["namespace"], "shop");
    }

    #[test]
    fn defaults_fill_in_and_unknown_or_missing_params_are_errors() {
        let a = action("mysql-replica-lag");
        let p = validate_params(&a, &given(&[("replica_address", "db:3306")])).unwrap();
        assert_eq!(p["mode"], "slow-query-throttle");
        assert!(matches!(
            validate_params(&a, &given(&[])),
            Err(ParamError::Missing { .. })
        ));
        assert!(matches!(
            validate_params(&a, &given(&[("replica_address", "db:3306"), ("extra", "1")])),
            Err(ParamError::Unknown { .. })
        ));
    }

    #[test]
    fn params_become_environment_variables() {
        let env = param_env(&given(&[("db_user", "order")]), "inc-1", "fix-db-leak", "execute");
        assert!(env.contains(&("ROOTFIX_PARAM_DB_USER".into(), "order".into())));
        assert!(env.contains(&("ROOTFIX_PHASE".into(), "execute".into())));
    }
}
