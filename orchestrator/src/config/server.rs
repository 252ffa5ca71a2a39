//! The server's own top-level keys: `listen` (the address it serves on) and `consumer` (this
//! replica's name in the alert stream's group, by default the host's name).

use std::net::SocketAddr;

use crate::catalog::report::Reporter;

/// `listen`: an address like 127.0.0.1:5001, which is also the default.
pub(super) fn check_listen(listen: Option<String>, r: &mut Reporter<'_>) -> SocketAddr {
    let listen_text = listen.unwrap_or_else(|| "127.0.0.1:5001".into());
    listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        r.at_value(
            "listen",
            format!("`{listen_text}` is not an address like 127.0.0.1:5001"),
        );
        SocketAddr::from(([127, 0, 0, 1], 5001))
    })
}

/// `consumer`: a name without spaces, by default [`default_consumer`].
pub(super) fn check_consumer(consumer: Option<String>, r: &mut Reporter<'_>) -> String {
    let consumer = consumer.unwrap_or_else(default_consumer);
    if consumer.is_empty() || consumer.contains(char::is_whitespace) {
        r.at_value("consumer", "a consumer name has no spaces");
    }
    consumer
}

/// `<hostname>`, stable across restarts of one machine or pod.
fn default_consumer() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "rootfix".to_string())
}
