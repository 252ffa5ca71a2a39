//! A real MariaDB server (Debian's `mariadb-server`) for one test: a fresh data folder made by
//! `mariadb-install-db`, its own free port on 127.0.0.1, stopped when dropped. The test talks to
//! it with Debian's `mariadb` client (as root, no password, over TCP) and opens connections
//! that stay open (an interactive client whose stdin the test holds).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MariaDb {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

/// The account the actions use (written to `client.cnf`, which the test mounts).
pub const ACTION_USER: &str = "rootfix";
pub const ACTION_PASSWORD: &str = "rootfix-test-pw";

impl MariaDb {
    /// A server without a binary log.
    pub fn start() -> Self {
        Self::start_with(&["--skip-log-bin"])
    }

    /// A primary and a replica replicating from it (binary log positions, the `repl` account);
    /// returns once the replica's threads run.
    pub fn pair() -> (Self, Self) {
        let primary = Self::start_with(&["--log-bin=primary-bin", "--server-id=1", "--binlog-format=ROW"]);
        let replica = Self::start_with(&["--skip-log-bin", "--server-id=2", "--relay-log=replica-relay"]);
        primary
            .root_sql("CREATE USER 'repl'@'%' IDENTIFIED BY 'repl-pw'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';")
            .expect("replication account");
        let status = primary.root_sql("SHOW MASTER STATUS").expect("master status");
        let mut fields = status.split('\t');
        let (file, position) = (
            fields.next().expect("binlog file").trim().to_string(),
            fields.next().expect("binlog position").trim().to_string(),
        );
        replica
            .root_sql(&format!(
                "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', MASTER_PASSWORD='repl-pw', \
                 MASTER_LOG_FILE='{file}', MASTER_LOG_POS={position}; START SLAVE;",
                primary.port
            ))
            .expect("start replication");
        // Replicating: a row written on the primary shows on the replica.
        primary
            .root_sql("INSERT INTO shop.orders (note) VALUES ('replicated')")
            .expect("write on the primary");
        let started = Instant::now();
        loop {
            let seen = replica
                .root_sql("SELECT COUNT(*) FROM shop.orders WHERE note = 'replicated'")
                .unwrap_or_default();
            if seen.trim() == "1" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "replication did not start: {:?}",
                replica.root_sql("SHOW SLAVE STATUS")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        (primary, replica)
    }

    /// A server started with `extra` arguments (the binary log, a server id).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rootfix-mariadb-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        // Without native AIO: InnoDB's io_setup fails with EAGAIN when the machine's AIO slots
        // (fs.aio-max-nr) are taken by the other servers of a parallel test run. One retry on a
        // fresh data folder for anything else transient; the second failure is reported whole.
        let mut failure = String::new();
        for _ in 0..2 {
            let _ = std::fs::remove_dir_all(&data);
            let install = Command::new("mariadb-install-db")
                .args([
                    "--no-defaults",
                    "--user=root",
                    "--auth-root-authentication-method=normal",
                ])
                .arg("--skip-test-db")
                .arg(format!("--datadir={}", data.display()))
                .arg("--innodb-use-native-aio=0")
                .output()
                .expect("mariadb-install-db runs (scripts/test-all.sh installs mariadb-server)");
            if install.status.success() {
                failure.clear();
                break;
            }
            failure = format!(
                "{}{}",
                String::from_utf8_lossy(&install.stdout),
                String::from_utf8_lossy(&install.stderr)
            );
        }
        assert!(failure.is_empty(), "mariadb-install-db failed twice: {failure}");
        let port = crate::support::free_port();
        let binary = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("mariadbd");
        let child = Command::new(binary)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("mysqld.pid").display()))
            .arg(format!("--log-error={}", dir.path().join("error.log").display()))
            .args([
                "--user=root",
                "--bind-address=127.0.0.1",
                &format!("--port={port}"),
                "--innodb-use-native-aio=0",
                "--innodb-buffer-pool-size=16M",
                "--max-connections=100",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadbd starts");
        let mut db = Self { child, dir, port };
        let started = Instant::now();
        while db.root_sql("SELECT 1").is_err() {
            let exited = matches!(db.child.try_wait(), Ok(Some(_)));
            assert!(
                !exited && started.elapsed() < Duration::from_secs(30),
                "mariadbd did not start:\n{}",
                db.error_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        db.setup();
        db
    }

    /// The account of the actions (PROCESS, CONNECTION ADMIN, SUPER, READ_ONLY ADMIN), the
    /// application users `order` and `other`, and a table to write to.
    fn setup(&self) {
        self.root_sql(&format!(
            "CREATE USER '{ACTION_USER}'@'%' IDENTIFIED BY '{ACTION_PASSWORD}';\
             GRANT PROCESS, CONNECTION ADMIN, SUPER, READ_ONLY ADMIN ON *.* TO '{ACTION_USER}'@'%';\
             CREATE USER 'order'@'%' IDENTIFIED BY 'order-pw';\
             CREATE USER 'other'@'%' IDENTIFIED BY 'other-pw';\
             CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, note VARCHAR(200));\
             GRANT ALL ON shop.* TO 'order'@'%'; GRANT ALL ON shop.* TO 'other'@'%';"
        ))
        .expect("setup SQL");
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A folder holding `client.cnf` with the actions' account, to mount at /rootfix/secrets.
    pub fn secrets_dir(&self) -> PathBuf {
        let path = self.dir.path().join("secrets");
        std::fs::create_dir_all(&path).expect("mkdir");
        std::fs::write(
            path.join("client.cnf"),
            format!("[client]\nuser={ACTION_USER}\npassword={ACTION_PASSWORD}\n"),
        )
        .expect("client.cnf");
        path
    }

    fn client(&self, user: &str, password: &str) -> Command {
        let mut cmd = Command::new("mariadb");
        cmd.args([
            "--no-defaults",
            "--protocol=TCP",
            "--host=127.0.0.1",
            &format!("--port={}", self.port),
            &format!("--user={user}"),
            "--batch",
            "--skip-column-names",
        ]);
        if !password.is_empty() {
            cmd.arg(format!("--password={password}"));
        }
        cmd
    }

    /// Runs SQL as `user`; the rows (tab-separated), or the client's error.
    pub fn sql_as(&self, user: &str, password: &str, query: &str) -> Result<String, String> {
        let out = self
            .client(user, password)
            .arg(format!("--execute={query}"))
            .output()
            .expect("mariadb client runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn root_sql(&self, query: &str) -> Result<String, String> {
        self.sql_as("root", "", query)
    }

    /// The value of a global variable.
    pub fn global(&self, name: &str) -> String {
        self.root_sql(&format!("SELECT @@GLOBAL.{name}"))
            .expect("select variable")
            .trim()
            .to_string()
    }

    /// Opens a connection as `user` that stays open (idle, `Sleep`) until the guard is dropped.
    /// `busy` runs a statement on it first that keeps it in `Query` for that many seconds.
    pub fn connection(&self, user: &str, password: &str, busy: Option<u32>) -> Connection {
        let mut cmd = self.client(user, password);
        if let Some(seconds) = busy {
            cmd.arg(format!("--execute=SELECT SLEEP({seconds})"));
        }
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadb client");
        Connection(child)
    }

    /// The ids of `user`'s connections, with their command (`Sleep`, `Query`, ...).
    pub fn processes(&self, user: &str) -> Vec<(u64, String)> {
        self.root_sql(&format!(
            "SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE USER = '{user}' ORDER BY ID"
        ))
        .expect("process list")
        .lines()
        .filter_map(|l| {
            let (id, cmd) = l.split_once('\t')?;
            Some((id.parse().ok()?, cmd.to_string()))
        })
        .collect()
    }

    /// Waits until `user` has `count` connections.
    pub fn wait_connections(&self, user: &str, count: usize) {
        let started = Instant::now();
        while self.processes(user).len() != count {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{user} has {:?}, wanted {count} connections",
                self.processes(user)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An open client connection; closed (the client killed) when dropped.
pub struct Connection(Child);

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
