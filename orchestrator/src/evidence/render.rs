//! How alert labels enter a signal's query, URL, host name or address: one escape rule per
//! place, so that a label value is always data and never changes the text around it.
//!
//! - PromQL and LogQL: [`escape_query_string`] (placeholders sit inside `"..."` literals).
//! - URLs (`http`, `jsonhttp`): a placeholder that *starts* the URL supplies the base URL (e.g.
//!   `{{ $labels.goproxy }}/@latest`) and is inserted as written; every other placeholder is
//!   percent-encoded as one URL component, so `&`, `?`, `#`, `/`, `@` and spaces in a value
//!   cannot add query parameters, change the path or the host. `:` is kept, so that
//!   `https://{{ $labels.instance }}/` works with `host:port` values. With a `jsonhttp` `source`,
//!   the base is the configured backend and every placeholder is encoded.
//! - `dns` names and `tcp` addresses: as written; they only say where to look.

use std::cell::Cell;
use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::engine::evidence::{EvidenceContext, EvidenceError};
use crate::model::template::{Template, escape_query_string, no_escape};

/// Everything but the unreserved characters of RFC 3986 and `:`.
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':');

fn no_params() -> &'static BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    &EMPTY
}

fn missing(e: impl std::fmt::Display) -> EvidenceError {
    EvidenceError::Request(e.to_string())
}

/// A PromQL or LogQL query with label values escaped for its string literals.
pub fn query(template: &Template, ctx: &EvidenceContext) -> Result<String, EvidenceError> {
    template
        .render(&ctx.alert.labels, no_params(), escape_query_string)
        .map_err(missing)
}

/// A host name or `host:port`, label values as written.
pub fn verbatim(template: &Template, ctx: &EvidenceContext) -> Result<String, EvidenceError> {
    template
        .render(&ctx.alert.labels, no_params(), no_escape)
        .map_err(missing)
}

/// A full URL: a leading placeholder as written, the others percent-encoded.
pub fn url(template: &Template, ctx: &EvidenceContext) -> Result<String, EvidenceError> {
    let leading = template.source().trim_start().starts_with("{{");
    let first = Cell::new(true);
    template
        .render(&ctx.alert.labels, no_params(), |value| {
            if first.replace(false) && leading {
                value.to_string()
            } else {
                escape_url_component(value)
            }
        })
        .map_err(missing)
}

/// A path and query under a configured base URL: every placeholder percent-encoded.
pub fn url_path(template: &Template, ctx: &EvidenceContext) -> Result<String, EvidenceError> {
    template
        .render(&ctx.alert.labels, no_params(), escape_url_component)
        .map_err(missing)
}

/// Percent-encodes `value` as one URL component (path segment or query value).
pub fn escape_url_component(value: &str) -> String {
    utf8_percent_encode(value, URL_COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::alert::{Alert, AlertStatus};
    use crate::model::template::Variable;

    fn ctx(labels: &[(&str, &str)]) -> EvidenceContext {
        EvidenceContext {
            alert: Arc::new(Alert {
                status: AlertStatus::Firing,
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                annotations: BTreeMap::new(),
                starts_at: Utc::now(),
                ends_at: Utc::now(),
                generator_url: String::new(),
                fingerprint: "f".into(),
            }),
            at: Utc::now(),
            window: std::time::Duration::from_secs(3),
            incident: None,
        }
    }

    fn template(source: &str) -> Template {
        Template::parse(source, &[Variable::Label]).unwrap()
    }

    #[test]
    fn a_leading_placeholder_is_the_base_url_the_others_are_components() {
        let c = ctx(&[("goproxy", "https://proxy.example/go"), ("module", "a/b c&x=1#f")]);
        assert_eq!(
            url(
                &template("{{ $labels.goproxy }}/{{ $labels.module }}/@latest"),
                &c
            )
            .unwrap(),
            "https://proxy.example/go/a%2Fb%20c%26x%3D1%23f/@latest"
        );
        let c = ctx(&[("instance", "10.0.0.1:9100"), ("host", "evil.example/x?@")]);
        assert_eq!(
            url(&template("https://{{ $labels.instance }}/metrics"), &c).unwrap(),
            "https://10.0.0.1:9100/metrics"
        );
        assert_eq!(
            url(&template("https://{{ $labels.host }}/"), &c).unwrap(),
            "https://evil.example%2Fx%3F%40/"
        );
        assert_eq!(
            url_path(&template("/api?service={{ $labels.instance }}"), &c).unwrap(),
            "/api?service=10.0.0.1:9100"
        );
    }

    #[test]
    fn a_missing_label_is_a_request_error() {
        let err = query(&template("up{a=\"{{ $labels.nope }}\"}"), &ctx(&[])).unwrap_err();
        assert!(matches!(err, EvidenceError::Request(m) if m.contains("$labels.nope")));
    }
}
