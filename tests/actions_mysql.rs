//! `fix-db-leak` and `mysql-replica-lag` against a real MariaDB server (Debian's `mariadb-server`,
//! started by the test on a free port with a temporary data folder), with the `mariadb` client
//! inside the action images. The test opens the leaked connections itself and measures the
//! server's process list and global variables (and their effect on real statements) from outside.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/mariadb.rs"]
mod mariadb;
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use actions::{Fix, assert_not_executed, hostile};
use mariadb::MariaDb;
use rootfix::model::action::PhaseName::{Execute, Precheck, Rollback, Verify};

fn leak_fix(db: &MariaDb, idle_seconds: &str) -> Fix {
    Fix::new(
        "fix-db-leak",
        &[
            ("db_address", &db.address()),
            ("db_user", "order"),
            ("idle_seconds", idle_seconds),
        ],
    )
    .mount("/rootfix/secrets", &db.secrets_dir())
}

fn ids(processes: &[(u64, String)]) -> Vec<u64> {
    processes.iter().map(|(id, _)| *id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_db_leak_kills_only_the_leaked_idle_connections_of_the_user() {
    let db = MariaDb::start();
    let fix = leak_fix(&db, "5");
    // Nothing leaked yet.
    fix.run(Precheck).await.expect_code(3);

    // The leak: four connections of `order` that sit idle.
    let leaked: Vec<_> = (0..4).map(|_| db.connection("order", "order-pw", None)).collect();
    db.wait_connections("order", 4);
    let leaked_ids = ids(&db.processes("order"));
    // Bystanders: a busy connection of `order`, an idle one of another user.
    let _busy = db.connection("order", "order-pw", Some(60));
    let _other = db.connection("other", "other-pw", None);
    db.wait_connections("order", 5);
    db.wait_connections("other", 1);
    tokio::time::sleep(Duration::from_secs(6)).await;

    fix.run(Verify).await.expect_code(1);
    let pre = fix.run(Precheck).await;
    pre.expect_code(0);
    assert!(pre.stderr.contains("5 connection(s), 4 idle"), "{}", pre.stderr);

    // A connection of `order` opened just now: idle, but not for long; it must survive.
    let _fresh = db.connection("order", "order-pw", None);
    db.wait_connections("order", 6);
    fix.run(Execute).await.expect_code(0);
    let left = db.processes("order");
    assert_eq!(
        left.len(),
        2,
        "the busy and the fresh connection remain: {left:?}"
    );
    assert!(
        ids(&left).iter().all(|id| !leaked_ids.contains(id)),
        "{left:?} vs {leaked_ids:?}"
    );
    assert!(
        left.iter().any(|(_, cmd)| cmd == "Query"),
        "the busy one survived: {left:?}"
    );
    assert_eq!(
        db.processes("other").len(),
        1,
        "another user's connection is untouched"
    );

    // Idempotent: nothing more to kill, same survivors.
    let again = fix.run(Execute).await;
    again.expect_code(0);
    assert!(again.stderr.contains("no connection"), "{}", again.stderr);
    assert_eq!(db.processes("order"), left);

    fix.run(Verify).await.expect_code(0);
    let rollback = fix.run(Rollback).await;
    rollback.expect_code(0);
    for id in &leaked_ids {
        assert!(rollback.stderr.contains(&id.to_string()), "{}", rollback.stderr);
    }
    drop(leaked);
}

fn replica_fix(db: &MariaDb, mode: &str) -> Fix {
    Fix::new(
        "mysql-replica-lag",
        &[
            ("replica_address", &db.address()),
            ("mode", mode),
            ("max_execution_ms", "500"),
        ],
    )
    .mount("/rootfix/secrets", &db.secrets_dir())
}

/// How long `SELECT SLEEP(seconds)` runs in a new session of `order`, and whether it errored.
fn timed_sleep(db: &MariaDb, seconds: u32) -> (Duration, Result<String, String>) {
    let started = Instant::now();
    let result = db.sql_as("order", "order-pw", &format!("SELECT SLEEP({seconds})"));
    (started.elapsed(), result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_query_throttle_caps_statements_and_rollback_lifts_the_cap() {
    let db = MariaDb::start();
    assert_eq!(db.global("max_statement_time"), "0.000000");
    let (took, _) = timed_sleep(&db, 2);
    assert!(took >= Duration::from_secs(2), "no cap before: {took:?}");

    let fix = replica_fix(&db, "slow-query-throttle");
    fix.run(Precheck).await.expect_code(0);
    assert_eq!(
        std::fs::read_to_string(fix.state_dir().join("saved")).expect("saved"),
        "max_statement_time 0.000000\n"
    );
    fix.run(Execute).await.expect_code(0);
    assert_eq!(db.global("max_statement_time"), "0.500000");
    fix.run(Execute).await.expect_code(0);
    assert_eq!(db.global("max_statement_time"), "0.500000");
    // Measured: a long read in a new session is cut at about 0.5 s.
    let (took, result) = timed_sleep(&db, 5);
    assert!(took < Duration::from_secs(3), "capped: {took:?} {result:?}");
    fix.run(Verify).await.expect_code(0);
    fix.run(Precheck).await.expect_code(3);

    fix.run(Rollback).await.expect_code(0);
    assert_eq!(db.global("max_statement_time"), "0.000000");
    let (took, result) = timed_sleep(&db, 2);
    assert!(took >= Duration::from_secs(2), "cap lifted: {took:?} {result:?}");
    // And verify notices that the setting is gone.
    fix.run(Verify).await.expect_code(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_stops_writes_and_rollback_allows_them_again() {
    let db = MariaDb::start();
    let write = || db.sql_as("order", "order-pw", "INSERT INTO shop.orders (note) VALUES ('x')");
    write().expect("writes work before");

    let fix = replica_fix(&db, "read-only");
    fix.run(Precheck).await.expect_code(0);
    fix.run(Execute).await.expect_code(0);
    assert_eq!(db.global("read_only"), "1");
    let refused = write().expect_err("a write on a read-only server fails");
    assert!(
        refused.contains("read-only") || refused.contains("READ ONLY"),
        "{refused}"
    );
    fix.run(Execute).await.expect_code(0);
    fix.run(Verify).await.expect_code(0);

    fix.run(Rollback).await.expect_code(0);
    assert_eq!(db.global("read_only"), "0");
    write().expect("writes work again after rollback");

    // Already read-only: precheck has nothing to do.
    db.root_sql("SET GLOBAL read_only = ON").expect("set");
    replica_fix(&db, "read-only").run(Precheck).await.expect_code(3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_param_values_are_refused_or_inert() {
    let db = MariaDb::start();
    let _idle = db.connection("other", "other-pw", None);
    db.wait_connections("other", 1);
    let leak = leak_fix(&db, "0");
    let replica = replica_fix(&db, "slow-query-throttle");
    let evil = hostile("/rootfix/state");
    let leak_cases = [
        ("db_user", "order' OR '1'='1"),
        ("db_user", evil.as_str()),
        ("db_address", "127.0.0.1:1; SET GLOBAL read_only=ON"),
        ("idle_seconds", "0 OR 1=1"),
        ("max_leaked", "$(reboot)"),
    ];
    for (name, value) in leak_cases {
        for phase in [Precheck, Execute, Verify] {
            let run = leak.run_unchecked(phase, &[(name, value)]).await;
            assert_eq!(run.code, 2, "{name}={value:?} in {phase:?}: {}", run.stderr);
        }
    }
    let replica_cases = [
        ("mode", "degrade; SET GLOBAL read_only=ON"),
        ("max_execution_ms", "1; SET GLOBAL read_only=ON"),
        ("replica_address", evil.as_str()),
    ];
    for (name, value) in replica_cases {
        for phase in [Precheck, Execute, Rollback] {
            let run = replica.run_unchecked(phase, &[(name, value)]).await;
            assert_eq!(run.code, 2, "{name}={value:?} in {phase:?}: {}", run.stderr);
        }
    }
    assert_not_executed(leak.state_dir(), "fix-db-leak");
    assert_not_executed(replica.state_dir(), "mysql-replica-lag");
    assert_eq!(db.processes("other").len(), 1, "nobody was killed");
    assert_eq!(db.global("read_only"), "0");
    assert_eq!(db.global("max_statement_time"), "0.000000");
}
