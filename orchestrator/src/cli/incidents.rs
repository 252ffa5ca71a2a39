//! `rootfix incidents list|show|export`: reads incidents through the server's API.
//!
//! The server and the token come from `--server` / `--token` or `ROOTFIX_URL` / `ROOTFIX_TOKEN`.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::Value;

use super::api::{ApiArgs, block_on, call, get_text, params_text};
use crate::incident::{Incident, seconds};

#[derive(Debug, clap::Args)]
pub struct IncidentsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: IncidentsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum IncidentsCommand {
    /// Incidents, newest first.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        playbook: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// One incident: its diagnosis path, evidence and timeline.
    Show { id: String },
    /// Every incident as JSON lines (the corpus `rootfix backtest --corpus` replays), newest
    /// first.
    Export {
        /// Only incidents created within this past window (7d, 36h) or since an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only incidents of this playbook.
        #[arg(long)]
        playbook: Option<String>,
    },
}

pub fn run(args: &IncidentsArgs) -> ExitCode {
    let path = match &args.command {
        IncidentsCommand::List {
            state,
            service,
            playbook,
            limit,
            offset,
        } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("limit", &limit.to_string())
                .append_pair("offset", &offset.to_string());
            for (k, v) in [("state", state), ("service", service), ("playbook", playbook)] {
                if let Some(v) = v {
                    query.append_pair(k, v);
                }
            }
            format!("/api/v1/incidents?{}", query.finish())
        }
        IncidentsCommand::Show { id } => format!("/api/v1/incidents/{}", super::api::segment(id)),
        IncidentsCommand::Export { since, playbook } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in [("since", since), ("playbook", playbook)] {
                if let Some(v) = v {
                    query.append_pair(k, v);
                }
            }
            let path = format!("/api/v1/incidents/export?{}", query.finish());
            return block_on("incidents export", get_text(&args.api, &path));
        }
    };
    block_on("incidents", async {
        let body = call(&args.api, reqwest::Method::GET, &path, None).await?;
        if args.json {
            return Ok(serde_json::to_string_pretty(&body).unwrap_or_default() + "\n");
        }
        Ok(match &args.command {
            IncidentsCommand::Show { .. } => render_incident(&body),
            _ => render_list(&body),
        })
    })
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

pub fn render_list(body: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<10} {:<24} {:<12} {:<24} PATH",
        "ID", "STATE", "ALERT", "SERVICE", "PLAYBOOK"
    );
    for i in body["items"].as_array().into_iter().flatten() {
        let path: Vec<&str> = i["path"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let _ = writeln!(
            out,
            "{:<28} {:<10} {:<24} {:<12} {:<24} {}",
            s(&i["id"]),
            s(&i["state"]),
            s(&i["alertname"]),
            s(&i["service"]),
            s(&i["playbook"]),
            path.join(" → ")
        );
    }
    if let Some(next) = body["next_offset"].as_u64() {
        let _ = writeln!(out, "(more: --offset {next})");
    }
    out
}

pub fn render_incident(i: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "incident {}  {}", s(&i["id"]), s(&i["state"]));
    let _ = writeln!(
        out,
        "alert    {} (fingerprint {}), firings {}",
        s(&i["alertname"]),
        s(&i["fingerprint"]),
        i["firings"]
    );
    let _ = writeln!(
        out,
        "service  {}   playbook {}",
        s(&i["service"]),
        s(&i["playbook"])
    );
    // The record as the server keeps it, for the helpers the page uses too.
    if let Ok(incident) = serde_json::from_value::<Incident>(i.clone()) {
        if let Some(took) = incident.time_to_resolve() {
            let _ = writeln!(out, "time to resolve: {}", seconds(took));
        }
        if let Some(why) = incident.why_no_fix() {
            let _ = writeln!(out, "no fix: {why}");
        }
    }
    if let Some(d) = i.get("diagnosis").filter(|d| !d.is_null()) {
        let _ = writeln!(
            out,
            "\ndiagnosis ({:.0} ms):",
            d["duration_ms"].as_f64().unwrap_or(0.0)
        );
        for n in d["nodes"].as_array().into_iter().flatten() {
            let depth = n["depth"].as_u64().unwrap_or(0) as usize;
            let reads: Vec<String> = n["reads"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                out,
                "  {}{}  {}  {}",
                "  ".repeat(depth),
                s(&n["id"]),
                s(&n["outcome"]).to_uppercase(),
                reads.join(" ")
            );
            if let Some(detail) = n["detail"].as_str() {
                let _ = writeln!(out, "  {}   {detail}", "  ".repeat(depth));
            }
        }
        for r in d["remedies"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  remedy {} at {}: score {:.3} / {:.3} → {}",
                s(&r["action"]),
                s(&r["node"]),
                r["score"].as_f64().unwrap_or(0.0),
                r["threshold"].as_f64().unwrap_or(0.0),
                s(&r["decision"]["kind"])
            );
            for (k, step) in r["steps"].as_array().into_iter().flatten().enumerate() {
                let (action, params) = (s(&step["action"]), params_text(&step["params"]));
                let _ = writeln!(out, "    step {}: {action} {params}", k + 1);
            }
        }
    }
    let _ = writeln!(out, "\ntimeline:");
    for e in i["timeline"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {}  {:<10} {}",
            s(&e["at"]),
            s(&e["kind"]),
            s(&e["message"])
        );
    }
    out
}
