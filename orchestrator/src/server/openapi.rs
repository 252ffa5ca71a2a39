//! The HTTP API's OpenAPI 3.1 document, built from the handlers' `#[utoipa::path]` annotations
//! and the bodies' `ToSchema` types ([`super::bodies`] for those the handlers build as JSON), and
//! served at `GET /api/v1/openapi.json` (no token). What every route may answer beside its own
//! statuses is added here in one place, as the layers answer it for every route: 408 and 503
//! (`server::guard`: timeouts, load shedding; `server::listen`: starting; `server::error`: state
//! unavailable or a write's outcome unknown), 401/403 on the routes that need a token, 413 on
//! those with a body, 400 on those with parameters or a body (`server::extract`). Every object
//! is closed (`additionalProperties: false`), so a field the document does not name is a
//! mismatch. `rootfix schema --out schemas` writes it to `schemas/openapi.json`, and a test fails
//! when the committed file is stale.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::{approvals, chat, fixes, incidents, ingest, killswitch, ops};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rootfix",
        description = "rootfix's HTTP API: Alertmanager's webhook in; incidents, approvals, stages, fixes, the kill switch and the audit trail for SREs and the CLI; the chat platforms' callbacks; probes and metrics. Every error is JSON `{\"error\": \"...\"}`. Routes that need a token name its role in their `security` (roles: ingest, viewer, approver, admin; admin may do everything, approver what viewer may, ingest only the webhook)."
    ),
    paths(
        ingest::alertmanager,
        incidents::list,
        incidents::export,
        incidents::show,
        approvals::confirm,
        fixes::journal,
        fixes::run,
        approvals::list,
        approvals::show,
        approvals::approve,
        approvals::reject,
        approvals::stages,
        approvals::stage,
        approvals::promote,
        approvals::demote,
        chat::slack,
        chat::feishu,
        killswitch::get,
        killswitch::set,
        killswitch::audit,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        document_route,
    ),
    tags(
        (name = "alerts", description = "Alertmanager's webhook"),
        (name = "incidents", description = "Incidents and the SRE's verdict on a fix"),
        (name = "fixes", description = "An incident's fix journal and an operator's fix"),
        (name = "approvals", description = "Fixes waiting for an SRE (stage manual)"),
        (name = "stages", description = "Staged autonomy per (action, scope)"),
        (name = "killswitch", description = "The kill switch and the audit trail"),
        (name = "chat", description = "Slack's and Feishu's signed callbacks (the signature is the credential)"),
        (name = "ops", description = "Probes, metrics and this document (no token)"),
    )
)]
struct ApiDoc;

/// This document.
#[utoipa::path(get, operation_id = "openapi_document", path = "/api/v1/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn document_route() -> impl IntoResponse {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(render).clone();
    ([(header::CONTENT_TYPE, "application/json")], text)
}

/// The document as committed: pretty JSON and a final newline.
pub fn render() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

/// The document: the annotations, then what every route shares.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    doc["info"]["license"] = json!({"name": "Apache-2.0", "identifier": "Apache-2.0"});
    if let Some(info) = doc["info"].as_object_mut() {
        info.remove("contact");
    }
    let components = &mut doc["components"];
    components["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <token>` (the scheme in any case) with a token of `tokens:`; each operation names the role it needs. Missing or unknown: 401; a role too weak: 403."
        }
    });
    components["responses"] = shared_responses();
    // An alert's labels: `alertname` and Prometheus label names (what `Alert::check` requires).
    components["schemas"]["WebhookAlertBody"]["properties"]["labels"] = json!({
        "type": "object",
        "properties": {"alertname": {"type": "string"}},
        "required": ["alertname"],
        "additionalProperties": {"type": "string"},
        "propertyNames": {"pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            if let Some(item) = item.as_object_mut() {
                for operation in item.values_mut().filter_map(Value::as_object_mut) {
                    add_shared(path, operation);
                }
            }
        }
    }
    crate::schema::close_objects(&mut doc);
    doc
}

fn error_content() -> Value {
    json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}})
}

fn retry_after() -> Value {
    json!({
        "description": "Seconds after which to retry (overloaded, starting)",
        "schema": {"type": "integer", "minimum": 0}
    })
}

/// The responses the layers give on every route, once, as components.
fn shared_responses() -> Value {
    json!({
        "BadRequest": {
            "description": "A malformed query string, path parameter or body, or values the route refuses",
            "content": error_content(),
        },
        "Unauthorized": {
            "description": "A missing or unknown bearer token (a body is not read without a known one)",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
            "content": error_content(),
        },
        "Forbidden": {
            "description": "The token's role is too weak for this route",
            "content": error_content(),
        },
        "TooLarge": {
            "description": "The body is larger than `limits.max_body_bytes`",
            "content": error_content(),
        },
        "TimedOut": {
            "description": "The request took longer than `limits.request_timeout`, or no part of its body arrived for `limits.body_timeout`",
            "content": error_content(),
        },
        "Unavailable": {
            "description": "More than `limits.max_requests` requests at once (Retry-After); rootfix is starting and the full API is not in yet (Retry-After); the state store is unavailable and nothing was stored; or a write's answer never came, so it may have been stored (retrying is safe: a retry is recognised)",
            "headers": {"Retry-After": retry_after()},
            "content": error_content(),
        },
    })
}

/// Adds the shared responses an operation can get and the role it needs to its description.
fn add_shared(path: &str, operation: &mut Map<String, Value>) {
    let roles: Vec<String> = operation
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|req| req.get("bearer"))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    let secured = operation.contains_key("security");
    let has_body = operation.contains_key("requestBody");
    let has_params = operation
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().any(|p| p["in"] == "path" || p["in"] == "query"));
    if !roles.is_empty() {
        let text = operation
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let role = format!("Role: `{}` (or a stronger one).", roles.join("`, `"));
        let text = if text.is_empty() {
            role
        } else {
            format!("{text}\n\n{role}")
        };
        operation.insert("description".into(), Value::String(text));
    }
    let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    let mut shared = |status: &str, name: &str| {
        responses
            .entry(status)
            .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
    };
    if has_params || has_body {
        shared("400", "BadRequest");
    }
    if secured {
        shared("401", "Unauthorized");
        shared("403", "Forbidden");
    }
    if has_body {
        shared("413", "TooLarge");
    }
    shared("408", "TimedOut");
    shared("503", "Unavailable");
    if path == "/readyz"
        && let Some(unready) = responses.get_mut("503")
    {
        // Not ready (the readiness body), or overloaded (an error).
        unready["headers"] = json!({"Retry-After": retry_after()});
        unready["content"]["application/json"]["schema"] = json!({"oneOf": [
            {"$ref": "#/components/schemas/ReadyBody"},
            {"$ref": "#/components/schemas/ErrorBody"},
        ]});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_api_is_described() {
        let doc = document();
        let paths = doc["paths"].as_object().map(|p| p.len()).unwrap_or(0);
        assert_eq!(
            paths,
            23,
            "{:?}",
            doc["paths"].as_object().map(|p| p.keys().collect::<Vec<_>>())
        );
        let list = &doc["paths"]["/api/v1/incidents"]["get"];
        assert_eq!(list["security"], json!([{"bearer": ["viewer"]}]));
        for status in ["200", "400", "401", "403", "408", "503"] {
            assert!(list["responses"][status].is_object(), "{status}: {list}");
        }
        assert!(doc["paths"]["/healthz"]["get"]["responses"]["401"].is_null());
        let ingest = &doc["paths"]["/api/v1/alerts/alertmanager"]["post"]["responses"];
        assert!(ingest["413"].is_object());
    }

    /// Every route of `router()` but the web page's (HTML, under `/ui`) is in the document, with
    /// its methods.
    #[test]
    fn the_document_covers_every_route_of_the_router() {
        let doc = document();
        let source = include_str!("mod.rs");
        let routes_text = source
            .split_once("Router::new()")
            .and_then(|(_, rest)| rest.split_once(".fallback("))
            .map(|(routes, _)| routes)
            .unwrap_or_default();
        let mut routes = 0;
        for route in routes_text.split(".route(").skip(1) {
            let path = route.split('"').nth(1).unwrap_or_default();
            if path.starts_with("/ui") {
                continue;
            }
            for method in ["get", "post", "put"] {
                if route.contains(&format!("{method}(")) {
                    routes += 1;
                    assert!(
                        doc["paths"][path][method].is_object(),
                        "{method} {path} is not described"
                    );
                }
            }
        }
        let described: usize = doc["paths"]
            .as_object()
            .map(|p| p.values().filter_map(Value::as_object).map(|o| o.len()).sum())
            .unwrap_or(0);
        assert!(routes > 0);
        assert_eq!(
            described, routes,
            "the document describes a route the router does not have"
        );
    }

    #[test]
    fn readyz_is_described_exactly() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let report = &schemas["ReadReport"];
        assert_eq!(report["additionalProperties"], json!(false), "{report}");
        let mut fields: Vec<&str> = report["properties"]
            .as_object()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "last_read_at",
                "reading",
                "reason",
                "seconds_since_last_read",
                "workers_busy"
            ]
        );
        let stream = &schemas["StreamBody"]["properties"];
        assert!(stream["length"].is_object() && stream["pending"].is_object() && stream["lag"].is_object());
        assert!(schemas["ReadyBody"]["properties"]["phase"].is_object());
    }
}
