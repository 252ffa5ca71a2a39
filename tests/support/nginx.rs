//! A real nginx (Debian's `nginx-light`) on the host for one test: its own folder, a front server
//! on a free 127.0.0.1 port proxying to the upstream `payment`, whose block lives in
//! `conf.d/payment.conf`. Timeouts are short and `proxy_next_upstream off`, so a dead server of the
//! upstream shows as 502 at once instead of being retried away. Stopped when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Child,
    pub dir: tempfile::TempDir,
    pub front_port: u16,
}

/// An upstream `payment` block with one line per server; `max_fails=0` keeps nginx from quietly
/// skipping a dead server on its own for 10 s, so failures stay measurable.
pub fn payment_upstream(ports: &[u16]) -> String {
    let mut text = String::from("# the payment upstream (managed by rootfix tests)\nupstream payment {\n");
    for (i, port) in ports.iter().enumerate() {
        text.push_str(&format!(
            "    server 127.0.0.1:{port} max_fails=0;  # payment-{i}\n"
        ));
    }
    text.push_str("}\n");
    text
}

impl Nginx {
    /// Starts nginx with `upstream` as `conf.d/payment.conf`, waits until the front port accepts.
    pub fn start(upstream: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rootfix-nginx-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path();
        for sub in ["conf.d", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        // Workers run as an unprivileged user and must reach the temp paths.
        set_mode(root, 0o755);
        set_mode(&root.join("tmp"), 0o777);
        std::fs::write(root.join("conf.d/payment.conf"), upstream).expect("upstream file");
        let front_port = crate::support::free_port();
        let r = root.display();
        let conf = format!(
            "worker_processes 1;\npid {r}/nginx.pid;\nerror_log {r}/error.log info;\n\
             events {{ worker_connections 128; }}\n\
             http {{\n  access_log off;\n\
               client_body_temp_path {r}/tmp/body; proxy_temp_path {r}/tmp/proxy;\n\
               fastcgi_temp_path {r}/tmp/fastcgi; uwsgi_temp_path {r}/tmp/uwsgi; scgi_temp_path {r}/tmp/scgi;\n\
               include {r}/conf.d/*.conf;\n\
               server {{\n    listen 127.0.0.1:{front_port};\n\
                 location / {{\n      proxy_pass http://payment;\n\
                   proxy_connect_timeout 1s; proxy_send_timeout 2s; proxy_read_timeout 2s;\n\
                   proxy_next_upstream off;\n    }}\n  }}\n}}\n"
        );
        std::fs::write(root.join("nginx.conf"), conf).expect("nginx.conf");
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nginx");
        let log = std::fs::File::create(root.join("stderr.log")).expect("log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .arg("-e")
            .arg(root.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("nginx starts ({binary}; scripts/test-all.sh installs nginx-light): {e}")
            });
        let nginx = Self {
            child,
            dir,
            front_port,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", front_port)).is_err() || !nginx.pid_file().exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start:\n{}\n{}",
                nginx.error_log(),
                std::fs::read_to_string(nginx.dir.path().join("stderr.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    pub fn conf_d(&self) -> PathBuf {
        self.dir.path().join("conf.d")
    }

    pub fn upstream_file(&self) -> PathBuf {
        self.conf_d().join("payment.conf")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.path().join("nginx.pid")
    }

    /// The master's pid (the process the test started).
    pub fn master_pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn front_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.front_port)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// SIGTERM first: the master stops its workers (a SIGKILL would leave them holding the port).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
