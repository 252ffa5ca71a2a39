//! One `spec.evidence` signal: exactly one kind (Prometheus, Loki, HTTP probe, DNS, TCP, JSON
//! HTTP), its query or URL template checked as far as can be before labels are known (PromQL and
//! LogQL parsed, each placeholder only inside a double-quoted string the query reads as a value —
//! `promql`, `logql` —; URLs, `host:port`, JSON paths), and its backend's name.

use std::time::Duration;

use super::label_template;
use super::logql::check_logql;
use super::promql::{QueryProblem, check_promql};
use crate::catalog::report::Reporter;
use crate::catalog::values::{is_identifier, is_object_name};
use crate::document::playbook::SignalSpec;
use crate::model::jsonpath::JsonPath;
use crate::model::playbook::{HttpMethod, Signal, SignalKind};
use crate::model::template::Template;

const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn check_signal(r: &mut Reporter<'_>, name: &str, signal: &SignalSpec) -> Option<Signal> {
    let field = format!("spec.evidence.{name}");
    if !is_identifier(name) {
        r.at_key(
            &field,
            "signal names are lowercase letters, digits and `_` (conditions read them as evidence.<name>)",
        );
    }
    let set = [
        signal.prometheus.is_some(),
        signal.loki.is_some(),
        signal.http.is_some(),
        signal.dns.is_some(),
        signal.tcp.is_some(),
        signal.jsonhttp.is_some(),
    ]
    .into_iter()
    .filter(|s| *s)
    .count();
    if set != 1 {
        r.at_key(
            &field,
            "set exactly one of prometheus, loki, http, dns, tcp, jsonhttp",
        );
        return None;
    }
    let timeout = |r: &mut Reporter<'_>, kind: &str, t: &Option<String>| {
        r.duration(
            &format!("{field}.{kind}.timeout"),
            t.as_deref(),
            DEFAULT_PROBE_TIMEOUT,
        )
    };
    let kind = if let Some(q) = &signal.prometheus {
        let qfield = format!("{field}.prometheus.query");
        let query = label_template(r, &qfield, &q.query)?;
        report_query(r, &qfield, check_promql(&query));
        SignalKind::Prometheus {
            query,
            source: source_name(r, &format!("{field}.prometheus.source"), &q.source),
        }
    } else if let Some(q) = &signal.loki {
        let qfield = format!("{field}.loki.query");
        let query = label_template(r, &qfield, &q.query)?;
        report_query(r, &qfield, check_logql(&query));
        SignalKind::Loki {
            query,
            source: source_name(r, &format!("{field}.loki.source"), &q.source),
        }
    } else if let Some(h) = &signal.http {
        let url = url_template(r, &format!("{field}.http.url"), &h.url)?;
        let method = match h.method.as_deref().unwrap_or("GET") {
            "GET" => HttpMethod::Get,
            "HEAD" => HttpMethod::Head,
            other => {
                r.at_value(
                    &format!("{field}.http.method"),
                    format!("`{other}` is not allowed; probes are read-only: GET or HEAD"),
                );
                HttpMethod::Get
            }
        };
        let json_path = h
            .json_path
            .as_ref()
            .and_then(|p| json_path(r, &format!("{field}.http.json_path"), p));
        SignalKind::Http {
            url,
            method,
            max_redirects: h.max_redirects.unwrap_or(10),
            timeout: timeout(r, "http", &h.timeout),
            json_path,
        }
    } else if let Some(d) = &signal.dns {
        SignalKind::Dns {
            name: label_template(r, &format!("{field}.dns.name"), &d.name)?,
            timeout: timeout(r, "dns", &d.timeout),
        }
    } else if let Some(t) = &signal.tcp {
        let afield = format!("{field}.tcp.address");
        let address = label_template(r, &afield, &t.address)?;
        let stand_in = address.render_with_stand_in("host");
        let port_ok = stand_in
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            r.at_value(&afield, "expected host:port");
        }
        SignalKind::Tcp {
            address,
            timeout: timeout(r, "tcp", &t.timeout),
        }
    } else if let Some(j) = &signal.jsonhttp {
        let ufield = format!("{field}.jsonhttp.url");
        let url = match &j.source {
            None => url_template(r, &ufield, &j.url)?,
            Some(_) => {
                let t = label_template(r, &ufield, &j.url)?;
                if !t.render_with_stand_in("x").starts_with('/') {
                    r.at_value(
                        &ufield,
                        "with `source`, the url is a path under that backend, starting with /",
                    );
                }
                t
            }
        };
        let source = j
            .source
            .as_ref()
            .map(|_| source_name(r, &format!("{field}.jsonhttp.source"), &j.source));
        SignalKind::JsonHttp {
            url,
            source,
            path: json_path(r, &format!("{field}.jsonhttp.path"), &j.path)?,
            timeout: timeout(r, "jsonhttp", &j.timeout),
        }
    } else {
        return None;
    };
    Some(Signal {
        name: name.to_string(),
        description: signal.description.clone(),
        definition_hash: crate::model::content_hash(signal),
        kind,
    })
}

/// A query's problems: at the placeholder or place they name, else at the value.
fn report_query(r: &mut Reporter<'_>, field: &str, problems: Vec<QueryProblem>) {
    for p in problems {
        match p.column {
            Some(column) => r.inside_value(field, 1, column, p.message),
            None => r.at_value(field, p.message),
        }
    }
}

fn source_name(r: &mut Reporter<'_>, field: &str, source: &Option<String>) -> String {
    let name = source.clone().unwrap_or_else(|| "default".to_string());
    if !is_object_name(&name) {
        r.at_value(field, "backend names are lowercase letters, digits and `-`");
    }
    name
}

fn url_template(r: &mut Reporter<'_>, field: &str, text: &str) -> Option<Template> {
    let t = label_template(r, field, text)?;
    // A template may start with a label holding the base URL; the stand-in is itself a URL.
    let rendered = t.render_with_stand_in("https://stand-in");
    if !(rendered.starts_with("http://") || rendered.starts_with("https://")) {
        r.at_value(field, "expected an http:// or https:// URL");
    }
    Some(t)
}

fn json_path(r: &mut Reporter<'_>, field: &str, text: &str) -> Option<JsonPath> {
    match JsonPath::parse(text) {
        Ok(p) => Some(p),
        Err(e) => {
            r.inside_value(field, 1, e.column, e.message);
            None
        }
    }
}
