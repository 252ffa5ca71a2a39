//! What one probe has seen so far — where it is ([`Phase`], for a timeout's message), the last
//! hop's status, TLS and timings, the redirects, the selected JSON, the error — and the JSON value
//! it becomes.

use std::time::Duration;

use serde_json::{Value, json};
use url::Url;

use super::tls::TlsOutcome;
use crate::evidence::millis;

/// Where a probe is, for the message of a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Start,
    Dns,
    Connect,
    Tls,
    FirstByte,
    Body,
    Done,
}

impl Phase {
    pub(super) fn name(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Dns => "dns lookup",
            Phase::Connect => "connect",
            Phase::Tls => "tls handshake",
            Phase::FirstByte => "waiting for the response",
            Phase::Body => "reading the body",
            Phase::Done => "done",
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Timings {
    pub(super) dns: Option<Duration>,
    pub(super) connect: Option<Duration>,
    pub(super) tls: Option<Duration>,
    pub(super) first_byte: Option<Duration>,
}

pub(super) struct ProbeState {
    pub(super) url: Url,
    pub(super) phase: Phase,
    pub(super) status: u16,
    pub(super) hops: Vec<Value>,
    pub(super) timings: Timings,
    pub(super) tls: Option<TlsOutcome>,
    pub(super) json: Value,
    pub(super) error: Option<String>,
    pub(super) total: Duration,
}

impl ProbeState {
    pub(super) fn new(url: Url) -> Self {
        Self {
            url,
            phase: Phase::Start,
            status: 0,
            hops: Vec::new(),
            timings: Timings::default(),
            tls: None,
            json: Value::Null,
            error: None,
            total: Duration::ZERO,
        }
    }

    /// A new hop: the previous hop's answer, TLS and timings no longer describe the probe.
    pub(super) fn begin_hop(&mut self) {
        self.status = 0;
        self.timings = Timings::default();
        self.tls = None;
    }

    pub(super) fn into_value(self) -> Value {
        let ok = self.error.is_none() && (200..300).contains(&self.status);
        let ms = |d: Option<Duration>| d.map(millis);
        json!({
            "status": self.status,
            "ok": ok,
            "redirects": self.hops,
            "final_url": self.url.as_str(),
            "tls": self.tls.map(TlsOutcome::into_value),
            "timings_ms": {
                "dns": ms(self.timings.dns),
                "connect": ms(self.timings.connect),
                "tls": ms(self.timings.tls),
                "first_byte": ms(self.timings.first_byte),
                "total": millis(self.total),
            },
            "json": self.json,
            "error": self.error,
        })
    }
}
