//! Scopes: named label selectors over a fix's target (the alert's labels), each with the highest
//! stage it allows, a rate limit (fixes per sliding hour) and a concurrency limit. A target outside
//! every scope is never fixed.

use std::collections::BTreeMap;

use super::stage::Stage;
use crate::model::matcher::Matcher;

#[derive(Debug, Clone)]
pub struct Scope {
    pub name: String,
    /// All must match (Alertmanager syntax).
    pub selector: Vec<Matcher>,
    /// The highest stage a fix type may reach here.
    pub max_stage: Stage,
    /// Fixes started per sliding hour.
    pub fixes_per_hour: u32,
    /// Fixes running at once.
    pub max_concurrent: u32,
    /// Run everything but execute and rollback.
    pub dry_run: bool,
    /// `autonomy.recurrence_window` for this scope (`None`: the section's).
    pub recurrence_window: Option<std::time::Duration>,
}

impl Scope {
    pub fn contains(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.iter().all(|m| m.matches(labels))
    }
}

/// Scopes in the config's order: the first that contains a target owns it.
#[derive(Debug, Clone, Default)]
pub struct Scopes(pub Vec<Scope>);

impl Scopes {
    pub fn scope_for(&self, labels: &BTreeMap<String, String>) -> Option<&Scope> {
        self.0.iter().find(|s| s.contains(labels))
    }

    pub fn get(&self, name: &str) -> Option<&Scope> {
        self.0.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(name: &str, selector: &[&str]) -> Scope {
        Scope {
            name: name.into(),
            selector: selector.iter().map(|m| Matcher::parse(m).unwrap()).collect(),
            max_stage: Stage::Auto,
            fixes_per_hour: 10,
            max_concurrent: 1,
            dry_run: false,
            recurrence_window: None,
        }
    }

    #[test]
    fn the_first_scope_that_matches_owns_the_target() {
        let scopes = Scopes(vec![
            scope("prod-core", &["env=\"prod\"", "tier=\"core\""]),
            scope("prod", &["env=\"prod\""]),
            scope("staging", &["env=~\"staging|qa\""]),
        ]);
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            scopes
                .scope_for(&labels(&[("env", "prod"), ("tier", "core")]))
                .unwrap()
                .name,
            "prod-core"
        );
        assert_eq!(
            scopes
                .scope_for(&labels(&[("env", "prod"), ("tier", "edge")]))
                .unwrap()
                .name,
            "prod"
        );
        assert_eq!(
            scopes.scope_for(&labels(&[("env", "qa")])).unwrap().name,
            "staging"
        );
        assert!(scopes.scope_for(&labels(&[("env", "dev")])).is_none());
        assert!(scopes.scope_for(&labels(&[])).is_none());
    }
}
