//! A whole rootfix in the test process, for the autonomy tests: real Redis (fresh prefix), the
//! real Docker engine running a test action (`tests/fixtures/runner/phase.sh` in a busybox
//! image, steered through a control folder), the event loop, the HTTP API on a free port, and a
//! [`ManualClock`] the test moves across hours and weeks.
//!
//! Declare it next to `support` and `docker`:
//! `#[path = "support/mod.rs"] mod support; #[path = "support/docker.rs"] mod docker;
//! #[path = "support/autonomy.rs"] mod harness;`
#![allow(dead_code)]

use rootfix::alert_rules::AlertRules;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rootfix::autonomy::clock::ManualClock;
use rootfix::autonomy::config::AutonomyConfig;
use rootfix::autonomy::controller::Autonomy;
use rootfix::autonomy::promotion::PromotionPolicy;
use rootfix::autonomy::scope::{Scope, Scopes};
use rootfix::autonomy::stage::Stage;
use rootfix::catalog::Catalog;
use rootfix::engine::fixture::FixtureEvidence;
use rootfix::engine::{WalkOptions, Walker};
use rootfix::events::EventLoop;
use rootfix::events::handler::IncidentHandler;
use rootfix::fix::executor::{Executor, LockPolicy};
use rootfix::incident::{Incident, IncidentState};
use rootfix::metrics::Metrics;
use rootfix::model::matcher::Matcher;
use rootfix::notify::{NotificationsConfig, Notifier};
use rootfix::reload::CatalogHandle;
use rootfix::runner::availability::{DockerEndpoint, KUBERNETES_DISABLED, RunnerAvailability};
use rootfix::runner::docker::DockerRunner;
use rootfix::server::{AppState, router};
use rootfix::silence::SilenceClient;
use rootfix::state::StateStore;
use serde_json::{Value, json};

#[allow(unused_imports)]
pub use crate::support::{ADMIN_TOKEN, APPROVER_TOKEN, INGEST_TOKEN, VIEWER_TOKEN};

/// The action every harness playbook remedies with.
pub const ACTION: &str = "autonomy-fix";

/// The Kubernetes action (`runner: kubernetes`) the `AutonomyKube` alert's playbook remedies with.
pub const KUBE_ACTION: &str = "restart-jvm-pod";

/// A scope for the harness: `env=<env>`.
pub fn scope(name: &str, env: &str, max_stage: Stage, fixes_per_hour: u32, concurrency: u32) -> Scope {
    Scope {
        name: name.into(),
        selector: vec![Matcher::parse(&format!("env=\"{env}\"")).expect("matcher")],
        max_stage,
        fixes_per_hour,
        max_concurrent: concurrency,
        dry_run: false,
        recurrence_window: None,
    }
}

pub struct Options {
    pub scopes: Vec<Scope>,
    pub promotion: PromotionPolicy,
    pub approval_ttl: Duration,
    pub dry_run: bool,
    pub notifications: NotificationsConfig,
    pub silences: Option<rootfix::silence::SilenceConfig>,
    /// More playbooks (YAML documents) beside the harness's own, e.g. one that only notifies.
    pub playbooks: Vec<String>,
    /// The Docker engine the runner availability pings (default: the local one, as `serve`).
    pub docker_socket: Option<PathBuf>,
    /// `kubernetes.enabled` (default false, as in a config without the section).
    pub kubernetes_enabled: bool,
    /// The alert lifecycle's rules. Staleness is off by default here (the simulated clock runs
    /// weeks ahead of the incidents' real sightings); tests of staleness set it.
    pub alert_rules: AlertRules,
    /// `autonomy.resolve_wait` (default: longer than any simulation, for the same reason).
    pub resolve_wait: Duration,
    /// `autonomy.leader_interval` (what `run_leader` sleeps; tests mostly call `tick`).
    pub leader_interval: Duration,
    /// Run the leader's loop (`serve` does), instead of the test calling `tick`.
    pub run_leader: bool,
    /// Re-check the runners' availability this often (`serve` does, every 10 s).
    pub availability_recheck: Option<Duration>,
    /// `autonomy.recurrence_window`, `autonomy.max_recurrences` and `autonomy.budget`.
    pub recurrence_window: Duration,
    pub max_recurrences: u32,
    pub budget: rootfix::autonomy::config::Budget,
    /// The chat platforms whose callbacks the server takes.
    pub chat: rootfix::chat::ChatConfig,
    /// `retention:` (default: the config's defaults).
    pub retention: rootfix::config::RetentionConfig,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scopes: vec![scope("staging", "staging", Stage::Auto, 1000, 4)],
            promotion: PromotionPolicy {
                min_in_stage: Duration::from_secs(7 * 24 * 3600),
                window: Duration::from_secs(72 * 3600),
                min_success_rate: 0.991,
                min_samples: 5,
                auto_apply: false,
                require_lower_bound: false,
            },
            approval_ttl: Duration::from_secs(30 * 60),
            dry_run: false,
            notifications: NotificationsConfig::default(),
            silences: None,
            playbooks: Vec::new(),
            docker_socket: None,
            kubernetes_enabled: false,
            alert_rules: AlertRules {
                stale_after: Duration::from_secs(10 * 365 * 24 * 3600),
                ..AlertRules::default()
            },
            resolve_wait: Duration::from_secs(10 * 365 * 24 * 3600),
            leader_interval: Duration::from_secs(60),
            run_leader: false,
            availability_recheck: None,
            recurrence_window: Duration::from_secs(3600),
            max_recurrences: 2,
            budget: rootfix::autonomy::config::Budget::default(),
            chat: rootfix::chat::ChatConfig::default(),
            retention: rootfix::config::RetentionConfig::default(),
        }
    }
}

pub struct Harness {
    pub url: String,
    pub state: Arc<dyn StateStore>,
    pub autonomy: Arc<Autonomy>,
    pub clock: Arc<ManualClock>,
    /// The test action's control folder: `target` (`broken`/`healthy`), `<phase>.exit`, `<phase>.runs`.
    pub control: PathBuf,
    /// The evidence every walk reads; a test changes signals with `set_signal`.
    pub evidence: Arc<FixtureEvidence>,
    stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

/// The hex fingerprint (as Alertmanager sends) of a test alert's name.
pub fn fingerprint(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// 2026-11-02 09:00 UTC: the harness clock's start.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("valid time")
}

fn kube_playbook_yaml() -> String {
    format!(
        r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {{name: autonomy-kube}}
spec:
  match: ['alertname="AutonomyKube"']
  target: {{service: '{{{{ $labels.service }}}}'}}
  tree:
    id: autonomy_kube_root
    children:
      - id: autonomy_kube_heap
        when: alert.labels.service != ""
        remedy:
          action: {KUBE_ACTION}
          params: {{namespace: shop, deployment: order-api}}
          confidence:
            threshold: 0.5
            signals:
              - {{when: alert.labels.service != "", weight: 1.0, description: the service is named}}
"#
    )
}

fn kube_action_yaml() -> String {
    format!(
        r#"apiVersion: rootfix/v1
kind: Action
metadata: {{name: {KUBE_ACTION}}}
spec:
  purpose: fix
  runner: kubernetes
  params:
    namespace: {{pattern: '[a-z0-9]([-a-z0-9]{{0,61}}[a-z0-9])?'}}
    deployment: {{pattern: '[a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?'}}
  idempotency_key: '{{{{ $params.namespace }}}}/{{{{ $params.deployment }}}}'
  phases:
    precheck: {{operation: rollout-healthy}}
    execute: {{operation: rollout-restart}}
    verify: {{operation: rollout-healthy}}
    rollback: {{operation: restore-snapshot}}
"#
    )
}

fn playbook_yaml() -> String {
    format!(
        r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {{name: autonomy-test}}
spec:
  match: ['alertname="AutonomyTest"']
  target: {{service: '{{{{ $labels.service }}}}'}}
  tree:
    id: autonomy_root
    children:
      - id: autonomy_needs_fix
        when: alert.labels.service != ""
        remedy:
          action: {ACTION}
          params: {{target: '{{{{ $labels.instance }}}}'}}
          confidence:
            threshold: 0.5
            signals:
              - {{when: alert.labels.service != "", weight: 1.0, description: the service is named}}
"#
    )
}

impl Harness {
    pub async fn start(test: &str, options: Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let control = dir.path().join("control");
        let state_root = dir.path().join("fix-state");
        for d in [
            &control,
            &state_root,
            &dir.path().join("playbooks"),
            &dir.path().join("actions/autonomy-fix"),
            &dir.path().join(format!("actions/{KUBE_ACTION}")),
        ] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(control.join("target"), "broken\n").expect("target");
        std::fs::write(dir.path().join("playbooks/autonomy-test.yaml"), playbook_yaml()).expect("playbook");
        for (n, yaml) in options.playbooks.iter().enumerate() {
            std::fs::write(dir.path().join(format!("playbooks/extra-{n}.yaml")), yaml).expect("playbook");
        }
        std::fs::write(
            dir.path().join("playbooks/autonomy-kube.yaml"),
            kube_playbook_yaml(),
        )
        .expect("playbook");
        std::fs::write(
            dir.path().join(format!("actions/{KUBE_ACTION}/action.yaml")),
            kube_action_yaml(),
        )
        .expect("action");
        std::fs::write(
            dir.path().join("actions/autonomy-fix/action.yaml"),
            crate::docker::test_action_yaml(ACTION, crate::docker::test_image(), &control, ""),
        )
        .expect("action");
        let catalog = Catalog::load(&[dir.path().join("playbooks"), dir.path().join("actions")])
            .unwrap_or_else(|p| {
                panic!(
                    "{}",
                    p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
                )
            });
        let catalog = CatalogHandle::new(catalog);
        let prefix = crate::support::unique_prefix(test);
        let state: Arc<dyn StateStore> = Arc::new(
            rootfix::state::redis::RedisStateStore::connect(&crate::support::redis_url(), &prefix)
                .await
                .expect("Redis (scripts/test-all.sh starts it)"),
        );
        let clock = Arc::new(ManualClock::new(start_time()));
        let executor = Arc::new(Executor {
            state: state.clone(),
            // Incident ids come from each test's own stream, so two tests running at once can
            // share one; the instance keeps their containers apart (as serve's key prefix does).
            docker: Some(Arc::new(
                DockerRunner::connect(state_root)
                    .await
                    .expect("Docker engine")
                    .with_instance(&prefix),
            )),
            kubernetes: None,
            kubernetes_job: None,
            lease: Duration::from_secs(30),
            lock_policy: LockPolicy::Refuse,
        });
        // What `serve` finds: the Docker engine's ping, and Kubernetes disabled unless enabled.
        let availability = Arc::new(
            RunnerAvailability::checked(
                options
                    .docker_socket
                    .as_deref()
                    .map_or_else(DockerEndpoint::local, DockerEndpoint::unix),
                (!options.kubernetes_enabled).then(|| KUBERNETES_DISABLED.to_string()),
            )
            .await,
        );
        let metrics = Arc::new(Metrics::new());
        let config = AutonomyConfig {
            scopes: Scopes(options.scopes),
            promotion: options.promotion,
            approval_ttl: options.approval_ttl,
            dry_run: options.dry_run,
            resolve_wait: options.resolve_wait,
            leader_interval: options.leader_interval,
            recurrence_window: options.recurrence_window,
            max_recurrences: options.max_recurrences,
            budget: options.budget,
            ..AutonomyConfig::default()
        };
        let evidence: Arc<FixtureEvidence> = Arc::new(FixtureEvidence::new());
        let autonomy = Arc::new(
            Autonomy::new(
                state.clone(),
                config,
                clock.clone(),
                catalog.clone(),
                executor,
                evidence.clone(),
                Notifier::start(options.notifications, Some(metrics.clone())).expect("notifier"),
                options
                    .silences
                    .as_ref()
                    .map(|c| SilenceClient::from_config(c).expect("silence client")),
                "test-replica".into(),
            )
            .with_metrics(metrics.clone())
            .with_availability(availability.clone())
            .with_alert_rules(options.alert_rules)
            .with_retention(options.retention.clone()),
        );
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let handler = IncidentHandler {
            state: state.clone(),
            catalog: catalog.clone(),
            walker: Arc::new(Walker::new(state.clone(), WalkOptions::default())),
            evidence: evidence.clone(),
            metrics: metrics.clone(),
            autonomy: Some(autonomy.clone()),
            rules: options.alert_rules,
        };
        let event_loop = EventLoop {
            state: state.clone(),
            handler: Arc::new(handler),
            consumer: "test".into(),
            workers: 4,
            claim_idle: Duration::from_secs(30),
            probe: Default::default(),
        };
        if options.run_leader {
            tokio::spawn(autonomy.clone().run_leader(stop_rx.clone()));
        }
        if let Some(every) = options.availability_recheck {
            tokio::spawn(availability.clone().run(every, stop_rx.clone()));
        }
        tokio::spawn(event_loop.run(stop_rx));
        let app = AppState {
            state: state.clone(),
            catalog,
            tokens: Arc::new(crate::support::test_tokens()),
            metrics,
            // Alertmanager's repeats here come seconds apart with identical content: the dedupe
            // window (a retry's) is off so each repeat counts, as its tests expect.
            http: rootfix::server::guard::HttpLimits {
                dedupe_window: Duration::ZERO,
                ..Default::default()
            },
            readiness: Default::default(),
            autonomy: Some(autonomy.clone()),
            chat: Arc::new(rootfix::server::chat::ChatState::new(options.chat).expect("chat client")),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router(app)).await });
        Self {
            url,
            state,
            autonomy,
            clock,
            control,
            evidence,
            stop,
            _dir: dir,
            client: reqwest::Client::new(),
        }
    }

    pub fn control(&self) -> &Path {
        &self.control
    }

    /// Makes the test target need a fix again.
    pub fn break_target(&self) {
        std::fs::write(self.control.join("target"), "broken\n").expect("target");
    }

    pub fn target(&self) -> String {
        std::fs::read_to_string(self.control.join("target"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Every outcome of the test action in `scope` (a year back), oldest first.
    pub async fn outcomes(&self, scope: &str) -> Vec<rootfix::autonomy::outcome::Outcome> {
        let mut all = self
            .state
            .outcomes(ACTION, scope, start_time() - chrono::Duration::days(365))
            .await
            .expect("outcomes");
        all.sort_by_key(|o| o.at);
        all
    }

    /// Runs of a phase so far (lines in `<phase>.runs`).
    pub fn runs(&self, phase: &str) -> usize {
        std::fs::read_to_string(self.control.join(format!("{phase}.runs")))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Posts one firing `AutonomyTest` alert (Alertmanager webhook v4) and returns its incident once
    /// the event loop decided its fix.
    pub async fn fire(&self, name: &str, env: &str, instance: &str) -> Incident {
        self.fire_alert("AutonomyTest", name, env, instance).await
    }

    /// [`Self::fire`] for another alert name (`AutonomyKube`: the Kubernetes remedy's playbook).
    pub async fn fire_alert(&self, alertname: &str, name: &str, env: &str, instance: &str) -> Incident {
        self.post_alert_named(alertname, "firing", name, env, instance)
            .await;
        self.wait_incident(name, |i| i.state != IncidentState::Diagnosing && i.fix.is_some())
            .await
    }

    /// Waits until a fix of the test alert verified (the incident is `fixed`), then posts the
    /// alert's `resolved`, as Alertmanager does once the fault is gone, and returns the incident
    /// once that closed it.
    pub async fn resolve_after_fix(&self, name: &str, env: &str, instance: &str) -> Incident {
        self.wait_incident(name, |i| i.state == IncidentState::Fixed)
            .await;
        self.resolve(name, env, instance).await;
        self.wait_incident(name, |i| i.state == IncidentState::Resolved)
            .await
    }

    /// Puts the test action's stage in `scope` at `stage`: creates the pair at `manual` when no
    /// fix was decided there yet, then promotes it with `force` through the API (admin).
    pub async fn force_stage(&self, scope: &str, stage: Stage) {
        use rootfix::autonomy::clock::Clock as _;
        if self.state.stage(ACTION, scope).await.unwrap().is_none() {
            self.autonomy
                .state
                .change_stage(
                    ACTION,
                    scope,
                    None,
                    &rootfix::autonomy::stage::StageState {
                        stage: Stage::Manual,
                        since: self.clock.now(),
                        proposal: None,
                    },
                    None,
                )
                .await
                .unwrap();
        }
        while self.state.stage(ACTION, scope).await.unwrap().unwrap().stage < stage {
            let (status, body) = self
                .promote(scope, ADMIN_TOKEN, json!({"force": true, "reason": "test setup"}))
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }

    /// Posts the same firing alert again (Alertmanager's repeat), without waiting.
    pub async fn post_firing_again(&self, name: &str, env: &str, instance: &str) {
        self.post_alert("firing", name, env, instance).await;
    }

    /// Posts the resolved alert of a test alert.
    /// Like Alertmanager, the resolved alert keeps the firing's `startsAt` and ends now.
    pub async fn resolve(&self, name: &str, env: &str, instance: &str) {
        let started = self
            .state
            .open_incident(&fingerprint(name))
            .await
            .ok()
            .flatten()
            .map(|i| {
                i.alert
                    .starts_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            });
        self.post_alert_at("AutonomyTest", "resolved", name, env, instance, started)
            .await;
    }

    async fn post_alert(&self, status: &str, name: &str, env: &str, instance: &str) {
        self.post_alert_named("AutonomyTest", status, name, env, instance)
            .await;
    }

    pub async fn post_alert_named(
        &self,
        alertname: &str,
        status: &str,
        name: &str,
        env: &str,
        instance: &str,
    ) {
        self.post_alert_at(alertname, status, name, env, instance, None)
            .await;
    }

    async fn post_alert_at(
        &self,
        alertname: &str,
        status: &str,
        name: &str,
        env: &str,
        instance: &str,
        starts_at: Option<String>,
    ) {
        let now = self.clock.now_rfc3339();
        let ends = if status == "firing" {
            "0001-01-01T00:00:00Z".to_string()
        } else {
            use rootfix::autonomy::clock::Clock as _;
            self.clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let body = json!({
            "version": "4",
            "groupKey": format!("{{}}:{{alertname=\"{alertname}\", name=\"{name}\"}}"),
            "truncatedAlerts": 0,
            "status": status,
            "receiver": "rootfix",
            "groupLabels": {"alertname": alertname},
            "commonLabels": {"alertname": alertname},
            "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093",
            "alerts": [{
                "status": status,
                "labels": {"alertname": alertname, "service": "order-api", "env": env, "instance": instance},
                "annotations": {"summary": "autonomy test"},
                "startsAt": starts_at.unwrap_or_else(|| now.clone()),
                "endsAt": ends,
                "generatorURL": "http://127.0.0.1:9090/graph",
                "fingerprint": fingerprint(name)
            }]
        });
        let (code, reply) = self.post("/api/v1/alerts/alertmanager", INGEST_TOKEN, body).await;
        assert_eq!(code, 200, "{reply}");
    }

    /// The newest incident of a test alert once `done` holds (20 s at most).
    pub async fn wait_incident(&self, name: &str, done: impl Fn(&Incident) -> bool) -> Incident {
        let fingerprint = &fingerprint(name);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let page = self
                .state
                .list_incidents(&Default::default(), 0, 500)
                .await
                .expect("list incidents");
            if let Some(i) = page.items.into_iter().find(|i| &i.fingerprint == fingerprint)
                && done(&i)
            {
                return i;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "incident of {fingerprint} not decided in time"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until every fix this process started has finished.
    pub async fn settle(&self) {
        assert!(
            self.autonomy.wait_idle(Duration::from_secs(60)).await,
            "fixes still running"
        );
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/v1/approvals/{id}/approve` with `token`.
    pub async fn approve(&self, approval: &str, token: &str) -> (u16, Value) {
        self.post(&format!("/api/v1/approvals/{approval}/approve"), token, json!({}))
            .await
    }

    /// `POST /api/v1/stages/<the test action>/{scope}/promote` with `token` and `body`.
    pub async fn promote(&self, scope: &str, token: &str, body: Value) -> (u16, Value) {
        self.post(&format!("/api/v1/stages/{ACTION}/{scope}/promote"), token, body)
            .await
    }

    /// `POST /api/v1/incidents/{id}/confirm` as the approver.
    pub async fn confirm(&self, incident: &str, body: Value) -> (u16, Value) {
        self.post(
            &format!("/api/v1/incidents/{incident}/confirm"),
            APPROVER_TOKEN,
            body,
        )
        .await
    }

    /// Turns the kill switch on (reason `test`) or off as the `admin` token.
    pub async fn client_put_killswitch(&self, on: bool) -> (u16, Value) {
        let r = self
            .client
            .put(format!("{}/api/v1/killswitch", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"on": on, "reason": "test"}))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Audit actions, oldest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        let mut events = self.state.audit(10_000).await.expect("audit");
        events.reverse();
        events.into_iter().map(|e| e.action).collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

trait Rfc3339 {
    fn now_rfc3339(&self) -> String;
}

impl Rfc3339 for ManualClock {
    fn now_rfc3339(&self) -> String {
        use rootfix::autonomy::clock::Clock;
        self.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// A local webhook receiver that keeps every JSON body it gets (the `json` notification format).
pub struct Receiver {
    pub url: String,
    bodies: Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let bodies: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
        let kept = bodies.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let kept = kept.clone();
                async move {
                    kept.lock().expect("lock").push(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, bodies }
    }

    /// Notifications config sending every kind to this receiver as generic JSON.
    pub fn config(&self) -> NotificationsConfig {
        NotificationsConfig {
            backoff: Duration::from_millis(50),
            receivers: vec![{
                let mut r = rootfix::notify::ReceiverConfig::webhook(
                    "test-receiver",
                    rootfix::notify::Format::Json,
                    self.url.parse().expect("url"),
                );
                r.events = rootfix::notify::NotificationKind::ALL.into_iter().collect();
                r
            }],
            ..NotificationsConfig::default()
        }
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().expect("lock").clone()
    }

    /// Kinds received so far, in order.
    pub fn kinds(&self) -> Vec<String> {
        self.bodies()
            .iter()
            .map(|b| b["kind"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Waits until a notification of `kind` arrived (5 s at most).
    pub async fn wait_for(&self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(b) = self.bodies().into_iter().rev().find(|b| b["kind"] == kind) {
                return b;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no `{kind}` notification; got {:?}",
                self.kinds()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
