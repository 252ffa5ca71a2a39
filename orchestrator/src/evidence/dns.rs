//! `dns` signals: resolve a name through the system resolver (`getaddrinfo`, as every client on
//! the machine does), timed.
//!
//! The name may be a host, `host:port`, or a URL whose host is taken. A failed or timed-out
//! lookup is evidence (`resolved: false` with the error), not an error:
//! `{"resolved": bool, "addresses": ["10.0.0.1", ...], "elapsed_ms": n, "error": str|null}`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use url::Url;

use super::millis;
use crate::engine::evidence::EvidenceError;

/// Looks `name` up; `Err` only when `name` holds no host at all.
pub async fn lookup(name: &str, timeout: Duration) -> Result<Value, EvidenceError> {
    let host = host_of(name)?;
    tracing::debug!(host, "dns lookup");
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), 0))).await;
    let elapsed = millis(started.elapsed());
    Ok(match outcome {
        Ok(Ok(addrs)) => {
            let mut addresses: Vec<String> = Vec::new();
            for addr in addrs {
                let ip = addr.ip().to_string();
                if !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
            json!({"resolved": !addresses.is_empty(), "addresses": addresses, "elapsed_ms": elapsed,
                   "error": if addresses.is_empty() { Some("no addresses") } else { None }})
        }
        Ok(Err(e)) => json!({"resolved": false, "addresses": [], "elapsed_ms": elapsed,
                             "error": format!("lookup of {host} failed: {e}")}),
        Err(_) => json!({"resolved": false, "addresses": [], "elapsed_ms": elapsed,
                         "error": format!("lookup of {host} timed out after {}", humantime::format_duration(timeout))}),
    })
}

/// The host in a host name, `host:port`, `[v6]:port` or URL.
pub fn host_of(name: &str) -> Result<String, EvidenceError> {
    let name = name.trim();
    let host = if name.contains("://") {
        let url =
            Url::parse(name).map_err(|e| EvidenceError::Request(format!("`{name}` is not a URL: {e}")))?;
        url.host_str().unwrap_or("").to_string()
    } else {
        match name.rsplit_once(':') {
            // One colon and a numeric port: `host:port`. More colons: a bare IPv6 address.
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                if port.parse::<u16>().is_err() {
                    return Err(EvidenceError::Request(format!(
                        "`{name}`: `{port}` is not a port"
                    )));
                }
                host.to_string()
            }
            _ => name.to_string(),
        }
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    if host.is_empty() {
        return Err(EvidenceError::Request(format!("`{name}` names no host")));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_from_names_addresses_and_urls() {
        assert_eq!(host_of("proxy.golang.org").unwrap(), "proxy.golang.org");
        assert_eq!(host_of("payment.shop.svc:443").unwrap(), "payment.shop.svc");
        assert_eq!(host_of("https://goproxy.example/x").unwrap(), "goproxy.example");
        assert_eq!(host_of("https://[::1]:8443/").unwrap(), "::1");
        assert_eq!(host_of("[::1]:53").unwrap(), "::1");
        assert_eq!(host_of("::1").unwrap(), "::1");
        assert!(host_of("").is_err());
        assert!(host_of("host:http").is_err());
    }
}
