//! `kafka-partition-rebalance` against Cruise Control's REST API. Kafka is not packaged in Debian
//! and Cruise Control needs a Kafka cluster, so neither runs here: the test serves a local HTTP
//! server on 127.0.0.1 that replays Cruise Control's documented JSON responses (the project
//! wiki's "REST APIs" page: `GET /kafkacruisecontrol/state`, `GET kafka_cluster_state`,
//! `POST rebalance` with `dryrun`, `202 Accepted` + `User-Task-ID` while a request is computed,
//! `POST stop_proposal_execution`) with a small state machine behind them, and asserts the
//! requests the action sends: methods, paths, query parameters and headers.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/evidence.rs"]
mod evidence;
#[path = "support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};

use actions::{Fix, assert_not_executed, hostile};
use evidence::{Reply, Seen, Server, serve};
use rootfix::model::action::PhaseName::{Execute, Precheck, Rollback, Verify};
use serde_json::json;

const TASK_ID: &str = "5ce7c299-53b1-48b1-b2d9-5d2d4ae9f3f6";

/// What the fake Cruise Control knows.
#[derive(Debug)]
struct Cc {
    /// (topic, partition) under-replicated.
    urp: Vec<(&'static str, u32)>,
    /// ExecutorState.state, and how many more `state` reads it stays so before finishing.
    executor: &'static str,
    moving_for: u32,
    /// The rebalance request was accepted (202) and is being computed.
    computing: bool,
}

impl Cc {
    fn new() -> Self {
        let mut urp: Vec<(&'static str, u32)> = (0..4).map(|p| ("orders", p)).collect();
        urp.extend((0..3).map(|p| ("payments", p)));
        urp.push(("audit", 0)); // not one of the action's topics
        Self {
            urp,
            executor: "NO_TASK_IN_PROGRESS",
            moving_for: 0,
            computing: false,
        }
    }

    fn answer(&mut self, seen: &Seen) -> Reply {
        match (seen.method.as_str(), seen.path.as_str()) {
            ("GET", "/kafkacruisecontrol/state") => {
                let state = self.executor;
                if self.moving_for > 0 {
                    self.moving_for -= 1;
                    if self.moving_for == 0 {
                        self.finish();
                    }
                }
                let executor = if state == "NO_TASK_IN_PROGRESS" {
                    json!({"state": state})
                } else {
                    json!({"state": state, "triggeredUserTaskId": TASK_ID, "triggeredTaskReason": "rootfix",
                           "numTotalPartitionMovements": 7, "numFinishedPartitionMovements": 3,
                           "numInProgressPartitionMovements": 2, "numPendingPartitionMovements": 2})
                };
                Reply::json(
                    200,
                    &json!({
                        "ExecutorState": executor,
                        "version": 1
                    })
                    .to_string(),
                )
            }
            ("GET", "/kafkacruisecontrol/kafka_cluster_state") => {
                let urp: Vec<_> = self
                    .urp
                    .iter()
                    .map(|(t, p)| {
                        json!({
                            "topic": t, "partition": p, "leader": 1, "replicas": [1, 2, 3],
                            "in-sync": [1, 2], "out-of-sync": [3], "offline": []
                        })
                    })
                    .collect();
                Reply::json(200, &json!({
                    "KafkaPartitionState": {"offline": [], "urp": urp, "with-offline-replicas": [], "under-min-isr": []},
                    "KafkaBrokerState": {"LeaderCountByBrokerId": {"1": 12, "2": 10, "3": 2},
                                         "OutOfSyncCountByBrokerId": {"3": self.urp.len()},
                                         "ReplicaCountByBrokerId": {"1": 24, "2": 24, "3": 24}},
                    "version": 1
                }).to_string())
            }
            ("POST", "/kafkacruisecontrol/rebalance") if seen.param("dryrun") == Some("true") => {
                Reply::json(200, &summary(7).to_string())
            }
            ("POST", "/kafkacruisecontrol/rebalance") => {
                if !self.computing {
                    // First answer: still computing the proposals.
                    self.computing = true;
                    return with_task(Reply::json(202, &json!({"progress": [{"operation": "Rebalance",
                        "operationProgress": [{"step": "AGGREGATING_METRICS", "description": "Retrieve the metrics of all the partitions from the aggregated metrics.", "time-in-ms": 12, "completionPercentage": 100.0}]}],
                        "version": 1}).to_string()));
                }
                assert_eq!(
                    seen.header("user-task-id"),
                    Some(TASK_ID),
                    "the second request names the task"
                );
                self.computing = false;
                self.executor = "INTER_BROKER_REPLICA_MOVEMENT_TASK_IN_PROGRESS";
                self.moving_for = 2;
                with_task(Reply::json(200, &summary(7).to_string()))
            }
            ("POST", "/kafkacruisecontrol/stop_proposal_execution") => {
                self.executor = "STOPPING_EXECUTION";
                self.moving_for = 1;
                Reply::json(
                    200,
                    &json!({"message": "Proposal execution stopped.", "version": 1}).to_string(),
                )
            }
            _ => Reply::json(404, &json!({"errorMessage": "Unrecognized endpoint"}).to_string()),
        }
    }

    fn finish(&mut self) {
        if self.executor != "STOPPING_EXECUTION" {
            self.urp.retain(|(t, _)| *t == "audit");
        }
        self.executor = "NO_TASK_IN_PROGRESS";
    }
}

fn summary(moves: u32) -> serde_json::Value {
    json!({
        "summary": {"numIntraBrokerReplicaMovements": 0, "numReplicaMovements": moves, "onDemandBalancednessScoreAfter": 86.2,
                    "intraBrokerDataToMoveMB": 0, "monitoredPartitionsPercentage": 100.0, "provisionRecommendation": "",
                    "excludedBrokersForReplicaMove": [], "excludedBrokersForLeadership": [], "provisionStatus": "RIGHT_SIZED",
                    "onDemandBalancednessScoreBefore": 61.4, "recentWindows": 5, "dataToMoveMB": 1536,
                    "excludedTopics": ["audit"], "numLeaderMovements": 3},
        "goalSummary": [{"goal": "ReplicaCapacityGoal", "status": "NO-ACTION"}, {"goal": "ReplicaDistributionGoal", "status": "FIXED"}],
        "version": 1
    })
}

fn with_task(mut reply: Reply) -> Reply {
    reply.headers.push(("User-Task-ID".into(), TASK_ID.into()));
    reply
}

async fn cruise_control() -> (Server, Arc<Mutex<Cc>>) {
    let cc = Arc::new(Mutex::new(Cc::new()));
    let inner = cc.clone();
    let server = serve(move |seen| inner.lock().expect("not poisoned").answer(seen)).await;
    (server, cc)
}

fn fix(server: &Server) -> Fix {
    Fix::new(
        "kafka-partition-rebalance",
        &[("cruise_control_url", &server.url("")), ("max_urp", "0")],
    )
}

fn calls(server: &Server, method: &str, path: &str) -> Vec<Seen> {
    server
        .requests()
        .into_iter()
        .filter(|s| s.method == method && s.path == format!("/kafkacruisecontrol/{path}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_runs_once_and_verify_waits_for_the_movements() {
    let (server, cc) = cruise_control().await;
    let fix = fix(&server);

    let pre = fix.run(Precheck).await;
    pre.expect_code(0);
    assert!(
        pre.stderr.contains("7 under-replicated"),
        "audit's partition does not count: {}",
        pre.stderr
    );
    let state = calls(&server, "GET", "kafka_cluster_state");
    assert_eq!(state[0].param("topic"), Some("^(orders|payments)$"));
    assert_eq!(state[0].param("json"), Some("true"));
    let dry = calls(&server, "POST", "rebalance");
    assert_eq!(dry.len(), 1);
    assert_eq!(dry[0].param("dryrun"), Some("true"));
    assert_eq!(dry[0].param("excluded_topics"), Some("^(?!(orders|payments)$).*"));
    assert!(fix.state_dir().join("cluster_state.before.json").exists());

    fix.run(Execute).await.expect_code(0);
    let posts = calls(&server, "POST", "rebalance");
    assert_eq!(
        posts.len(),
        3,
        "dry run, then 202 and the repeat with the task id"
    );
    assert_eq!(posts[1].param("dryrun"), Some("false"));
    assert_eq!(
        posts[1].param("excluded_topics"),
        Some("^(?!(orders|payments)$).*")
    );
    assert_eq!(
        posts[1].param("reason"),
        Some(format!("rootfix-incident-{}", fix.incident).as_str())
    );
    assert_eq!(posts[2].header("user-task-id"), Some(TASK_ID));

    // Idempotent: a second execute starts nothing new.
    fix.run(Execute).await.expect_code(0);
    assert_eq!(calls(&server, "POST", "rebalance").len(), 3);

    // The movements take a few state reads: verify fails until they are done (the runner retries).
    let mut attempts = Vec::new();
    for _ in 0..5 {
        let run = fix.run(Verify).await;
        attempts.push(run.code);
        if run.code == 0 {
            break;
        }
        assert!(run.stderr.contains("still running"), "{}", run.stderr);
    }
    assert_eq!(attempts.first(), Some(&1), "{attempts:?}");
    assert_eq!(attempts.last(), Some(&0), "{attempts:?}");
    assert_eq!(cc.lock().expect("lock").urp.len(), 1);
    fix.run(Precheck).await.expect_code(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_stops_a_movement_in_progress() {
    let (server, cc) = cruise_control().await;
    let fix = fix(&server);
    fix.run(Precheck).await.expect_code(0);
    fix.run(Execute).await.expect_code(0);
    assert_ne!(cc.lock().expect("lock").executor, "NO_TASK_IN_PROGRESS");
    let run = fix.run(Rollback).await;
    run.expect_code(0);
    assert_eq!(calls(&server, "POST", "stop_proposal_execution").len(), 1);
    assert!(run.stderr.contains("execution stopped"), "{}", run.stderr);
    assert_eq!(cc.lock().expect("lock").executor, "NO_TASK_IN_PROGRESS");
    // Rollback again: nothing in progress, no second stop.
    fix.run(Rollback).await.expect_code(0);
    assert_eq!(calls(&server, "POST", "stop_proposal_execution").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_aborts_while_cruise_control_is_busy_and_skips_a_healthy_cluster() {
    let (server, cc) = cruise_control().await;
    cc.lock().expect("lock").executor = "LEADER_MOVEMENT_TASK_IN_PROGRESS";
    let run = fix(&server).run(Precheck).await;
    run.expect_code(1);
    assert!(run.stderr.contains("busy"), "{}", run.stderr);
    {
        let mut cc = cc.lock().expect("lock");
        cc.executor = "NO_TASK_IN_PROGRESS";
        cc.urp.retain(|(t, _)| *t == "audit");
    }
    fix(&server).run(Precheck).await.expect_code(3);
    assert!(
        calls(&server, "POST", "rebalance").is_empty(),
        "no rebalance for a healthy cluster"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_param_values_are_refused_or_inert() {
    let (server, _cc) = cruise_control().await;
    let fix = fix(&server);
    let evil = hostile("/rootfix/state");
    let cases = [
        ("cruise_control_url", evil.as_str()),
        ("cruise_control_url", "http://127.0.0.1:1/x?dryrun=false&"),
        ("topics", "orders)|.*|(x"),
        ("topics", evil.as_str()),
        ("max_urp", "$(reboot)"),
    ];
    for (name, value) in cases {
        for phase in [Precheck, Execute, Rollback] {
            let run = fix.run_unchecked(phase, &[(name, value)]).await;
            assert_eq!(run.code, 2, "{name}={value:?} in {phase:?}: {}", run.stderr);
        }
    }
    assert_not_executed(fix.state_dir(), "kafka-partition-rebalance");
    assert!(
        server.requests().is_empty(),
        "nothing was sent with a refused param"
    );
}
