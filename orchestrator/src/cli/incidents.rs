//! `rootfix incidents list|show`: reads incidents through the server's API.
//!
//! The server and the token come from `--server` / `--token` or `ROOTFIX_URL` / `ROOTFIX_TOKEN`.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct IncidentsArgs {
    /// rootfix's base URL.
    #[arg(
        long,
        env = "ROOTFIX_URL",
        default_value = "http://127.0.0.1:5001",
        global = true
    )]
    pub server: String,
    /// A bearer token with role viewer or more.
    #[arg(long, env = "ROOTFIX_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
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
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no token: pass --token or set ROOTFIX_TOKEN")]
    NoToken,
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{status}: {message}")]
    Refused { status: u16, message: String },
}

pub fn run(args: &IncidentsArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rootfix incidents: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rootfix incidents: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(args: &IncidentsArgs) -> Result<String, ClientError> {
    let token = args.token.as_deref().ok_or(ClientError::NoToken)?;
    let base = args.server.trim_end_matches('/');
    let (url, query): (String, Vec<(&str, String)>) = match &args.command {
        IncidentsCommand::List {
            state,
            service,
            playbook,
            limit,
            offset,
        } => {
            let mut q = vec![("limit", limit.to_string()), ("offset", offset.to_string())];
            for (k, v) in [("state", state), ("service", service), ("playbook", playbook)] {
                if let Some(v) = v {
                    q.push((k, v.clone()));
                }
            }
            (format!("{base}/api/v1/incidents"), q)
        }
        IncidentsCommand::Show { id } => (format!("{base}/api/v1/incidents/{id}"), Vec::new()),
    };
    let response = reqwest::Client::new()
        .get(&url)
        .query(&query)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != 200 {
        return Err(ClientError::Refused {
            status,
            message: body["error"].as_str().unwrap_or("no reason given").to_string(),
        });
    }
    if args.json {
        return Ok(serde_json::to_string_pretty(&body).unwrap_or_default() + "\n");
    }
    Ok(match &args.command {
        IncidentsCommand::List { .. } => render_list(&body),
        IncidentsCommand::Show { .. } => render_incident(&body),
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
