//! `tcp` signals: can a TCP connection to `host:port` be opened within the signal's timeout.
//!
//! `{"connected": bool, "connect_ms": n|null, "error": str|null}`. `connect_ms` is the time of
//! the successful connect (after name resolution), `null` when none succeeded. Refused, an
//! unresolvable host and a timeout are evidence (`connected: false`), not errors.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::millis;
use crate::engine::evidence::EvidenceError;

/// Connects to `address`; `Err` only when it is not `host:port`.
pub async fn connect(address: &str, timeout: Duration) -> Result<Value, EvidenceError> {
    let (host, port) = split(address)?;
    tracing::debug!(host, port, "tcp connect");
    let attempt = async {
        let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("lookup of {host} failed: {e}"))?
            .collect();
        let mut errors = Vec::new();
        for addr in addrs {
            let started = Instant::now();
            match tokio::net::TcpStream::connect(addr).await {
                Ok(_stream) => return Ok(started.elapsed()),
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        if errors.is_empty() {
            errors.push(format!("{host} has no addresses"));
        }
        Err(errors.join("; "))
    };
    Ok(match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(elapsed)) => json!({"connected": true, "connect_ms": millis(elapsed), "error": null}),
        Ok(Err(error)) => {
            json!({"connected": false, "connect_ms": null, "error": format!("connect to {address}: {error}")})
        }
        Err(_) => json!({"connected": false, "connect_ms": null,
                         "error": format!("connect to {address} timed out after {}", humantime::format_duration(timeout))}),
    })
}

fn split(address: &str) -> Result<(String, u16), EvidenceError> {
    let bad = || EvidenceError::Request(format!("`{address}` is not host:port"));
    let (host, port) = address.trim().rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(split("db:3306").unwrap(), ("db".to_string(), 3306));
        assert_eq!(split("[::1]:80").unwrap(), ("::1".to_string(), 80));
        assert!(split("db").is_err());
        assert!(split(":80").is_err());
        assert!(split("db:0").is_err());
    }
}
