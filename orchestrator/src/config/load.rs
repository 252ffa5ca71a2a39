//! Loading `rootfix serve`'s config: the file as written ([`ConfigDocument`]), parsed with
//! positions, then checked section by section into a [`ServeConfig`]; every problem is reported,
//! sorted, before the config is refused.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::fixes::{FixesDocument, check_fixes};
use super::kubernetes::{KubernetesDocument, kubernetes_config};
use super::limits::{LimitsDocument, check_limits};
use super::redis::{RedisDocument, check_key_prefix, check_redis_url};
use super::retention::{RetentionDocument, check_retention};
use super::server::{check_consumer, check_listen};
use super::silences::check_silences;
use super::tokens::{TokenDocument, check_tokens};
use super::{ConfigError, ServeConfig};
use crate::catalog::parse::{Source, deserialize};
use crate::catalog::report::Reporter;
use crate::catalog::spans::SpanIndex;
use crate::evidence::EvidenceBackends;
use crate::notify::NotificationsDocument;
use crate::silence::SilencesDocument;

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ConfigDocument {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    redis: RedisDocument,
    #[serde(default)]
    playbooks: Option<PathBuf>,
    #[serde(default)]
    actions: Option<PathBuf>,
    #[serde(default)]
    tokens: Vec<TokenDocument>,
    #[serde(default)]
    evidence: EvidenceBackends,
    #[serde(default)]
    limits: LimitsDocument,
    /// Consumer name in the stream's group; stable across restarts of one replica.
    #[serde(default)]
    consumer: Option<String>,
    #[serde(default)]
    fixes: FixesDocument,
    #[serde(default)]
    kubernetes: KubernetesDocument,
    #[serde(default)]
    silences: Option<SilencesDocument>,
    #[serde(default)]
    notifications: NotificationsDocument,
    #[serde(default)]
    autonomy: crate::autonomy::config::AutonomyDocument,
    #[serde(default)]
    chat: crate::chat::ChatDocument,
    #[serde(default)]
    retention: RetentionDocument,
}

impl ServeConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Parses `text` (reported as `path`); `env` looks up environment variables.
    pub fn parse(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let source = Source {
            path: path.to_path_buf(),
            text: text.to_string(),
        };
        let spans = SpanIndex::build(text);
        let mut problems = Vec::new();
        let doc: Option<ConfigDocument> = deserialize(&source, &spans, &mut problems);
        let Some(doc) = doc else {
            return Err(ConfigError::Invalid(problems));
        };
        let mut r = Reporter {
            file: path,
            spans: &spans,
            problems: &mut problems,
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let relative = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let listen = check_listen(doc.listen.clone(), &mut r);
        let redis_url = check_redis_url(&doc.redis, env, &mut r);
        let tokens = check_tokens(&doc.tokens, env, &mut r);
        let limits = check_limits(&doc.limits, &mut r);
        let fixes = check_fixes(&doc.fixes, &relative, &mut r);
        let consumer = check_consumer(doc.consumer.clone(), &mut r);
        let key_prefix = check_key_prefix(&doc.redis, &mut r);
        let retention = check_retention(&doc.retention, &relative, &mut r);

        let notifications = crate::notify::check(&doc.notifications, &mut r, env);
        let autonomy = crate::autonomy::config::check(&doc.autonomy, &mut r);
        let chat = crate::chat::check_chat(&doc.chat, &tokens, env, &mut r);

        if let Err(e) = doc.evidence.validate() {
            r.at_value(&format!("evidence.{}", e.field), e.message);
        }
        let silences = doc.silences.as_ref().and_then(|s| check_silences(s, env, &mut r));

        if !problems.is_empty() {
            crate::catalog::problem::sort_problems(&mut problems);
            return Err(ConfigError::Invalid(problems));
        }
        Ok(Self {
            source: path.to_path_buf(),
            listen,
            redis_url,
            key_prefix,
            playbooks: relative(doc.playbooks.unwrap_or_else(|| "playbooks".into())),
            actions: relative(doc.actions.unwrap_or_else(|| "actions".into())),
            tokens,
            evidence: doc.evidence,
            limits,
            consumer,
            fixes,
            kubernetes: kubernetes_config(&doc.kubernetes),
            silences,
            notifications,
            autonomy,
            chat,
            retention,
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::catalog::problem::Problem;
    use crate::config::Role;
    use crate::notify::NotificationsConfig;

    /// The problems of a config that must not parse.
    pub(in crate::config) fn invalid(text: &str) -> Vec<Problem> {
        match parse(text) {
            Err(ConfigError::Invalid(problems)) => problems,
            other => panic!("accepted a bad config: {other:?}"),
        }
    }

    pub(in crate::config) fn parse(text: &str) -> Result<ServeConfig, ConfigError> {
        ServeConfig::parse(Path::new("/etc/rootfix/rootfix.yaml"), text, &|name| {
            (name == "INGEST").then(|| "ingest-token-0123456789".to_string())
        })
    }

    pub(in crate::config) const BASE: &str = "tokens:\n  - {name: am, role: ingest, token_env: INGEST}\n";

    /// `line:column: field: message` of each problem of a config that must not parse.
    pub(in crate::config) fn problem_lines(text: &str) -> Vec<String> {
        invalid(text)
            .iter()
            .map(|p| {
                format!(
                    "{}:{}: {}: {}",
                    p.position.line, p.position.column, p.field, p.message
                )
            })
            .collect()
    }

    #[test]
    fn reads_a_full_config_with_secrets_from_the_environment() {
        let c = parse(
            "listen: 127.0.0.1:6001\nredis: {url: redis://127.0.0.1:6380/, key_prefix: 'a:'}\ntokens:\n  - {name: am, role: ingest, token_env: INGEST}\n  - {name: admin, role: admin, token: admin-token-0123456789}\nlimits: {workers: 4, walk_deadline: 10s, claim_idle: 30s}\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 6001);
        assert_eq!(c.tokens[0].secret, "ingest-token-0123456789");
        assert_eq!(c.tokens[1].role, Role::Admin);
        assert_eq!(c.playbooks, PathBuf::from("/etc/rootfix/playbooks"));
        assert_eq!(c.limits.workers, 4);
        assert_eq!(c.key_prefix, "a:");
    }

    #[test]
    fn reads_the_autonomy_section() {
        let c = parse(
            "tokens: [{name: am, role: ingest, token_env: INGEST}]\nautonomy:\n  dry_run: true\n  approval_ttl: 15m\n  recurrence_window: 2h\n  max_recurrences: 3\n  budget: {fixes_per_hour: 12}\n  promotion: {min_in_stage: 3d, window: 24h, min_success_rate: 0.95, min_samples: 7, apply: auto, gate_on: lower-bound}\n  scopes:\n    - {name: staging, match: ['env=\"staging\"'], max_stage: auto, fixes_per_hour: 6, concurrency: 2, recurrence_window: 20m}\n    - {name: prod-core, match: ['env=\"prod\"', 'tier=~\"core|db\"'], max_stage: silent, dry_run: true}\n",
        )
        .unwrap();
        let a = &c.autonomy;
        assert!(a.dry_run);
        assert_eq!(a.approval_ttl, Duration::from_secs(900));
        assert_eq!(a.promotion.min_in_stage, Duration::from_secs(3 * 86400));
        assert_eq!(a.promotion.window, Duration::from_secs(86400));
        assert_eq!((a.promotion.min_samples, a.promotion.auto_apply), (7, true));
        assert!(a.promotion.require_lower_bound);
        assert_eq!(
            (a.recurrence_window, a.max_recurrences),
            (Duration::from_secs(7200), 3)
        );
        assert_eq!((a.budget.fixes_per_hour, a.budget.per_service), (Some(12), None));
        assert_eq!(a.recurrence_window_of("staging"), Duration::from_secs(1200));
        assert_eq!(a.recurrence_window_of("prod-core"), Duration::from_secs(7200));
        assert_eq!(a.scopes.0.len(), 2);
        let prod = a.scopes.get("prod-core").unwrap();
        assert_eq!(prod.max_stage, crate::autonomy::stage::Stage::Silent);
        assert_eq!(
            (prod.fixes_per_hour, prod.max_concurrent, prod.dry_run),
            (10, 1, true)
        );
        let labels = |env: &str, tier: &str| {
            BTreeMap::from([
                ("env".to_string(), env.to_string()),
                ("tier".to_string(), tier.to_string()),
            ])
        };
        assert_eq!(
            a.scopes.scope_for(&labels("prod", "db")).unwrap().name,
            "prod-core"
        );
        assert!(a.scopes.scope_for(&labels("prod", "edge")).is_none());
        // Without the section: no scope, so nothing runs on its own; the seed's gate numbers.
        let d = parse("tokens: [{name: am, role: ingest, token_env: INGEST}]\n")
            .unwrap()
            .autonomy;
        assert!(d.scopes.0.is_empty());
        assert!((d.promotion.min_success_rate - 0.991).abs() < 1e-9);
        assert_eq!(d.promotion.window, Duration::from_secs(72 * 3600));
    }

    #[test]
    fn reports_autonomy_problems_with_their_place() {
        let problems = invalid(
            "tokens: [{name: am, role: ingest, token_env: INGEST}]\nautonomy:\n  budget: {fixes_per_hour: 0}\n  promotion: {min_success_rate: 1.5, apply: sometimes, gate_on: vibes}\n  scopes:\n    - {name: Bad Name, match: ['env=~\"(\"'], max_stage: yolo, fixes_per_hour: 0}\n    - {name: ok, match: []}\n",
        );
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("{}:{}: {}", p.position.line, p.field, p.message))
            .collect();
        let expect = [
            "3:autonomy.budget.fixes_per_hour: must be at least 1 (leave it out for no cap)",
            "4:autonomy.promotion.apply: unknown `sometimes`; expected admin or auto",
            "4:autonomy.promotion.gate_on: unknown `vibes`; expected rate or lower-bound",
            "4:autonomy.promotion.min_success_rate: must be in (0, 1], e.g. 0.991",
            "6:autonomy.scopes[0].name: `Bad Name` is not a scope name (lowercase letters, digits, - and _)",
            "6:autonomy.scopes[0].max_stage: unknown stage `yolo`; expected manual, silent or auto",
            "6:autonomy.scopes[0].fixes_per_hour: must be at least 1",
            "7:autonomy.scopes[1].match: a scope needs at least one matcher, e.g. env=\"staging\"",
        ];
        for e in expect {
            assert!(lines.iter().any(|l| l == e), "missing `{e}` in {lines:#?}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("6:autonomy.scopes[0].match[0]:")),
            "{lines:#?}"
        );
    }

    #[test]
    fn reports_every_problem_with_its_place() {
        let lines = problem_lines(
            "listen: nowhere\ntokens:\n  - {name: am, role: root, token_env: MISSING}\nlimits: {walk_deadline: 10s, claim_idle: 5s}\nextra: 1\nevidence:\n  prometheus:\n    default: {url: 'ftp://x'}\n",
        );
        assert_eq!(
            lines,
            [
                "1:9: listen: `nowhere` is not an address like 127.0.0.1:5001",
                "3:22: tokens[0].role: unknown role `root`; expected ingest, viewer, approver or admin",
                "3:39: tokens[0].token_env: environment variable MISSING is not set",
                "4:42: limits.claim_idle: must be longer than limits.walk_deadline, or live consumers' alerts would be taken over",
                "5:1: extra: unknown field `extra`",
                "8:20: evidence.prometheus.default.url: `ftp://x`: only http and https are supported",
            ]
        );
    }

    #[test]
    fn reads_notifications_with_urls_from_the_environment() {
        let c = ServeConfig::parse(
            Path::new("/etc/rootfix/rootfix.yaml"),
            "tokens:\n  - {name: am, role: ingest, token: ingest-token-0123456789}\nnotifications:\n  queue: 16\n  retries: 2\n  backoff: 250ms\n  timeout: 2s\n  receivers:\n    - {name: sre-slack, format: slack, url_env: SLACK}\n    - {name: oncall, format: dingtalk, url: 'https://oapi.dingtalk.com/robot/send?access_token=x', events: [rollback_failed, approval_expired]}\n    - {name: wecom, format: wecom, url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k'}\n    - {name: audit-sink, format: json, url: 'http://127.0.0.1:9000/hook'}\n",
            &|name| (name == "SLACK").then(|| "https://hooks.slack.com/services/T/B/secret".to_string()),
        )
        .unwrap();
        let n = &c.notifications;
        assert_eq!((n.queue, n.retries), (16, 2));
        assert_eq!(n.backoff, Duration::from_millis(250));
        assert_eq!(n.timeout, Duration::from_secs(2));
        let formats: Vec<_> = n.receivers.iter().map(|r| (r.name.as_str(), r.format)).collect();
        use crate::notify::{Format, NotificationKind};
        assert_eq!(
            formats,
            [
                ("sre-slack", Format::Slack),
                ("oncall", Format::DingTalk),
                ("wecom", Format::WeCom),
                ("audit-sink", Format::Json)
            ]
        );
        assert_eq!(
            n.receivers[0].url.as_str(),
            "https://hooks.slack.com/services/T/B/secret"
        );
        // Left out, `events` is every kind but the resolve (which only paging sinks get).
        assert_eq!(n.receivers[0].events.len(), NotificationKind::ALL.len() - 1);
        assert!(
            !n.receivers[0]
                .events
                .contains(&NotificationKind::IncidentResolved)
        );
        assert_eq!(
            n.receivers[1].events.iter().copied().collect::<Vec<_>>(),
            [
                NotificationKind::ApprovalExpired,
                NotificationKind::RollbackFailed
            ]
        );
        // The secret stays out of Debug output (ServeConfig is logged at start).
        assert!(!format!("{c:?}").contains("secret"));

        let defaults = parse("tokens:\n  - {name: am, role: ingest, token_env: INGEST}\n").unwrap();
        assert_eq!(defaults.notifications, NotificationsConfig::default());
        assert_eq!(defaults.notifications.queue, 1024);
    }

    #[test]
    fn reads_paging_sinks_a_feishu_app_and_chat_callbacks() {
        let env = |name: &str| {
            [
                ("PD", "pd-routing-key"),
                ("GENIE", "genie-api-key"),
                ("FEISHU_SECRET", "feishu-app-secret"),
                ("SLACK_SIGNING", "slack-signing-secret"),
                ("FEISHU_TOKEN", "feishu-verification"),
                ("FEISHU_KEY", "feishu-encrypt-key"),
            ]
            .into_iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
        };
        let c = ServeConfig::parse(
            Path::new("/etc/rootfix/rootfix.yaml"),
            "tokens:\n  - {name: alice, role: approver, token: approver-token-0123456789}\nnotifications:\n  public_url: https://rootfix.example/\n  receivers:\n    - {name: pager, format: pagerduty, routing_key_env: PD}\n    - {name: genie, format: opsgenie, api_key_env: GENIE, url: 'https://api.eu.opsgenie.com'}\n    - {name: lark, format: feishu-app, app_id: cli_a1, app_secret_env: FEISHU_SECRET, chat_id: oc_1}\nchat:\n  replay_window: 2m\n  slack: {signing_secret_env: SLACK_SIGNING, users: {U024BE7LH: alice}}\n  feishu: {verification_token_env: FEISHU_TOKEN, encrypt_key_env: FEISHU_KEY, users: {ou_1: alice}}\n",
            &env,
        )
        .unwrap();
        let r = &c.notifications.receivers;
        assert_eq!(r[0].url.as_str(), "https://events.pagerduty.com/");
        assert_eq!(r[0].secret.as_deref(), Some("pd-routing-key"));
        assert_eq!(r[1].url.as_str(), "https://api.eu.opsgenie.com/");
        assert_eq!(r[2].url.as_str(), "https://open.feishu.cn/");
        assert_eq!(
            (r[2].app_id.as_deref(), r[2].chat_id.as_deref()),
            (Some("cli_a1"), Some("oc_1"))
        );
        assert_eq!(
            c.notifications.public_url.as_ref().map(|u| u.as_str()),
            Some("https://rootfix.example/")
        );
        assert_eq!(c.chat.replay_window, Duration::from_secs(120));
        let slack = c.chat.slack.as_ref().expect("slack");
        assert_eq!(slack.signing_secret, "slack-signing-secret");
        assert_eq!(slack.response_url_prefix, "https://hooks.slack.com/");
        assert_eq!(slack.users.get("U024BE7LH").map(String::as_str), Some("alice"));
        assert_eq!(
            c.chat.feishu.as_ref().map(|f| f.encrypt_key.as_str()),
            Some("feishu-encrypt-key")
        );
        let debug = format!("{c:?}");
        for secret in [
            "pd-routing-key",
            "genie-api-key",
            "feishu-app-secret",
            "slack-signing-secret",
            "feishu-encrypt-key",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn reports_paging_and_chat_problems_with_their_place() {
        let lines = problem_lines(
            "tokens:\n  - {name: am, role: ingest, token_env: INGEST}\n  - {name: bob, role: viewer, token: viewer-token-0123456789}\nnotifications:\n  receivers:\n    - {name: pager, format: pagerduty}\n    - {name: lark, format: feishu-app, app_id: cli_a1, app_secret_env: NOPE}\n    - {name: s, format: slack, url: 'http://x/', api_key_env: X}\n    - {name: m, format: email, url: 'https://x/', to: [nobody]}\nchat:\n  slack: {signing_secret_env: NOPE, users: {U1: carol, U2: bob}}\n  feishu: {verification_token_env: NOPE, encrypt_key_env: NOPE}\n",
        );
        assert_eq!(
            lines,
            [
                "6:8: notifications.receivers[0]: format pagerduty needs `routing_key_env`",
                "7:8: notifications.receivers[1]: format feishu-app needs `chat_id`",
                "7:72: notifications.receivers[1].app_secret_env: environment variable NOPE is not set",
                "8:50: notifications.receivers[2].api_key_env: `api_key_env` is not used by format slack",
                "9:8: notifications.receivers[3]: format email needs `from`",
                "9:37: notifications.receivers[3].url: `https://x/`: an email receiver's URL is smtp://… (STARTTLS) or smtps://… (TLS)",
                "9:56: notifications.receivers[3].to[0]: `nobody` is not an email address: Invalid input",
                "11:31: chat.slack.signing_secret_env: environment variable NOPE is not set",
                "11:49: chat.slack.users.U1: `carol` is not the name of a token in `tokens:`",
                "11:60: chat.slack.users.U2: `bob` has role viewer; deciding from chat needs approver or admin",
                "12:3: chat.feishu.users: no chat user is mapped: every click would be refused",
                "12:36: chat.feishu.verification_token_env: environment variable NOPE is not set",
                "12:59: chat.feishu.encrypt_key_env: environment variable NOPE is not set",
            ]
        );
    }

    #[test]
    fn reports_notification_problems_with_their_place() {
        let lines = problem_lines(
            "tokens:\n  - {name: am, role: ingest, token_env: INGEST}\nnotifications:\n  queue: 0\n  backoff: soon\n  receivers:\n    - {name: a, format: msteams, url: 'http://x/'}\n    - {name: b, format: slack, url: 'ftp://x/'}\n    - {name: c, format: json, url_env: NOPE}\n    - {name: d, format: json, url: 'http://x/', events: [fix_succeeded, fixed]}\n    - {name: d, format: json}\n    - {name: e, format: json, url: 'http://x/', events: []}\n    - {name: f, format: json, url: 'http://x/', colour: red}\n",
        );
        assert_eq!(
            lines,
            [
                "4:10: notifications.queue: must be in 1..=1048576",
                "5:12: notifications.backoff: `soon` is not a duration; write e.g. 250ms, 30s, 5m, 1h30m",
                "7:25: notifications.receivers[0].format: unknown format `msteams`; expected one of slack, dingtalk, wecom, json, teams, feishu, feishu-app, pagerduty, opsgenie, email",
                "8:37: notifications.receivers[1].url: `ftp://x/`: only http and https URLs are supported",
                "9:40: notifications.receivers[2].url_env: environment variable NOPE is not set",
                "10:73: notifications.receivers[3].events[1]: unknown event `fixed`; expected one of approval_requested, approval_expired, stage_changed, fix_succeeded, fix_failed, fix_rolled_back, rollback_failed, diagnosis_only, fix_recurred, breaker_open, budget_spent, incident_resolved",
                "11:8: notifications.receivers[4]: set exactly one of url and url_env",
                "11:14: notifications.receivers[4].name: another receiver is named `d`",
                "12:57: notifications.receivers[5].events: an empty list sends nothing; leave `events` out to send every kind",
                "13:49: notifications.receivers[6].colour: unknown field `colour`",
            ]
        );
    }
}
