//! `silences:`: where Alertmanager is (`alertmanager`, or `alertmanager_env`), how long the
//! cooldown silence after an automatic fix lasts, and which labels it matches.

use std::time::Duration;

use crate::catalog::report::Reporter;
use crate::catalog::spans::join_index;
use crate::silence::{DEFAULT_TIMEOUT, MAX_COOLDOWN, SilenceConfig, SilencesDocument};

/// The `silences:` section; `None` after reporting when it is unusable.
pub(super) fn check_silences(
    doc: &SilencesDocument,
    env: &dyn Fn(&str) -> Option<String>,
    r: &mut Reporter<'_>,
) -> Option<SilenceConfig> {
    let (field, text) = match (&doc.alertmanager, &doc.alertmanager_env) {
        (Some(url), None) => ("silences.alertmanager", Some(url.clone())),
        (None, Some(var)) => (
            "silences.alertmanager_env",
            r.env_var("silences.alertmanager_env", var, env),
        ),
        _ => {
            r.at_key("silences", "set exactly one of alertmanager and alertmanager_env");
            ("silences", None)
        }
    };
    let url = text.and_then(|text| {
        crate::silence::parse_base_url(text.trim())
            .map_err(|message| r.at_value(field, message))
            .ok()
    });
    let cooldown = match doc.cooldown.as_deref() {
        None => {
            r.at_key("silences", "set cooldown, how long a silence lasts (e.g. 30m)");
            None
        }
        Some(text) => {
            let problems = r.problems.len();
            let d = r.duration("silences.cooldown", Some(text), Duration::ZERO);
            if r.problems.len() > problems {
                None
            } else if d > MAX_COOLDOWN {
                r.at_value("silences.cooldown", "must be at most 7 days");
                None
            } else {
                Some(d)
            }
        }
    };
    let mut matchers_from = Vec::new();
    if let Some(names) = &doc.match_labels {
        if names.is_empty() {
            r.at_value(
                "silences.match_labels",
                "an empty list; leave match_labels out to match on every label of the alert",
            );
        }
        for (i, name) in names.iter().enumerate() {
            let item = join_index("silences.match_labels", i);
            if !crate::silence::is_label_name(name) {
                r.at_value(&item, format!("`{name}` is not a label name"));
            } else if matchers_from.contains(name) {
                r.at_value(&item, format!("`{name}` is listed twice"));
            } else {
                matchers_from.push(name.clone());
            }
        }
    }
    let timeout = r.duration("silences.timeout", doc.timeout.as_deref(), DEFAULT_TIMEOUT);
    Some(SilenceConfig {
        alertmanager_url: url?,
        cooldown: cooldown?,
        matchers_from,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::ServeConfig;
    use crate::config::load::tests::{BASE, parse, problem_lines};

    #[test]
    fn silences_are_optional_and_read_with_their_defaults() {
        assert!(parse(BASE).unwrap().silences.is_none());
        let c = parse(&format!(
            "{BASE}silences:\n  alertmanager: http://127.0.0.1:9093\n  cooldown: 30m\n  match_labels: [alertname, service]\n"
        ))
        .unwrap();
        let s = c.silences.unwrap();
        assert_eq!(s.alertmanager_url.as_str(), "http://127.0.0.1:9093/");
        assert_eq!(s.cooldown, Duration::from_secs(1800));
        assert_eq!(s.matchers_from, ["alertname", "service"]);
        assert_eq!(s.timeout, crate::silence::DEFAULT_TIMEOUT);
    }

    #[test]
    fn silences_url_from_the_environment() {
        let c = ServeConfig::parse(
            Path::new("/etc/rootfix/rootfix.yaml"),
            &format!("{BASE}silences: {{alertmanager_env: AM, cooldown: 7d, timeout: 2s}}\n"),
            &|name| match name {
                "INGEST" => Some("ingest-token-0123456789".into()),
                "AM" => Some("https://am.example/prefix".into()),
                _ => None,
            },
        )
        .unwrap();
        let s = c.silences.unwrap();
        assert_eq!(s.alertmanager_url.as_str(), "https://am.example/prefix");
        assert_eq!(s.cooldown, crate::silence::MAX_COOLDOWN);
        assert!(s.matchers_from.is_empty());
        assert_eq!(s.timeout, Duration::from_secs(2));
    }

    #[test]
    fn silences_problems_have_their_place() {
        assert_eq!(
            problem_lines(&format!(
                "{BASE}silences:\n  alertmanager: ftp://am\n  cooldown: 8d\n  match_labels: [alertname, a-b, alertname]\n  extra: 1\n"
            )),
            [
                "4:17: silences.alertmanager: `ftp://am`: only http and https are supported",
                "5:13: silences.cooldown: must be at most 7 days",
                "6:29: silences.match_labels[1]: `a-b` is not a label name",
                "6:34: silences.match_labels[2]: `alertname` is listed twice",
                "7:3: silences.extra: unknown field `extra`",
            ]
        );
        assert_eq!(
            problem_lines(&format!(
                "{BASE}silences: {{alertmanager_env: NOPE, cooldown: 0s}}\n"
            )),
            [
                "3:30: silences.alertmanager_env: environment variable NOPE is not set",
                "3:46: silences.cooldown: must be longer than zero",
            ]
        );
        assert_eq!(
            problem_lines(&format!("{BASE}silences:\n  match_labels: []\n")),
            [
                "3:1: silences: set cooldown, how long a silence lasts (e.g. 30m)",
                "3:1: silences: set exactly one of alertmanager and alertmanager_env",
                "4:17: silences.match_labels: an empty list; leave match_labels out to match on every label of the alert",
            ]
        );
    }
}
