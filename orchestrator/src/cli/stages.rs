//! `rootfix stages list|show|promote|demote`: the autonomy stage of each (action, scope), its
//! promotion gate and its history, through the server's API.
//!
//! Listing and showing need role viewer; promoting and demoting need role admin. A promotion goes
//! one stage up when the gate is met (`--force` overrides the gate, never the scope's cap); a
//! demotion needs a reason and goes to `manual` unless `--to silent`. The server and the token
//! come from `--server` / `--token` or `ROOTFIX_URL` / `ROOTFIX_TOKEN`.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::api::{ApiArgs, block_on, call, pretty, segment};

#[derive(Debug, clap::Args)]
pub struct StagesArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: StagesCommand,
}

/// The stages a demotion can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoteTo {
    Manual,
    Silent,
}

#[derive(Debug, clap::Subcommand)]
pub enum StagesCommand {
    /// Every (action, scope) with its stage, its scope's cap and its promotion gate.
    List,
    /// One (action, scope): the gate in detail and every stage change.
    Show { action: String, scope: String },
    /// One stage up, when the gate is met (or with `--force`); never above the scope's cap.
    Promote {
        action: String,
        scope: String,
        /// Recorded in the history (default: the gate's figures).
        #[arg(long, default_value = "")]
        reason: String,
        /// Promote although the gate is not met.
        #[arg(long)]
        force: bool,
    },
    /// Down to `manual` (or `--to silent`).
    Demote {
        action: String,
        scope: String,
        /// Recorded in the history.
        #[arg(long)]
        reason: String,
        #[arg(long, value_enum, default_value = "manual")]
        to: DemoteTo,
    },
}

fn pair_path(action: &str, scope: &str) -> String {
    format!("/api/v1/stages/{}/{}", segment(action), segment(scope))
}

pub fn run(args: &StagesArgs) -> ExitCode {
    block_on("stages", async {
        let get = reqwest::Method::GET;
        let post = reqwest::Method::POST;
        let body = match &args.command {
            StagesCommand::List => call(&args.api, get, "/api/v1/stages", None).await?,
            StagesCommand::Show { action, scope } => {
                call(&args.api, get, &pair_path(action, scope), None).await?
            }
            StagesCommand::Promote {
                action,
                scope,
                reason,
                force,
            } => {
                let path = format!("{}/promote", pair_path(action, scope));
                let body = json!({"reason": reason, "force": force});
                call(&args.api, post, &path, Some(body)).await?
            }
            StagesCommand::Demote {
                action,
                scope,
                reason,
                to,
            } => {
                let path = format!("{}/demote", pair_path(action, scope));
                let to = match to {
                    DemoteTo::Manual => "manual",
                    DemoteTo::Silent => "silent",
                };
                let body = json!({"reason": reason, "to": to});
                call(&args.api, post, &path, Some(body)).await?
            }
        };
        if args.json {
            return Ok(pretty(&body));
        }
        Ok(match &args.command {
            StagesCommand::List => render_list(&body),
            StagesCommand::Show { .. } => render_stage(&body),
            StagesCommand::Promote { .. } => render_changed("promoted", &body),
            StagesCommand::Demote { .. } => render_changed("demoted", &body),
        })
    })
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn days(gate: &Value) -> String {
    format!("{:.1}", gate["hours_in_stage"].as_f64().unwrap_or(0.0) / 24.0)
}

fn rate(gate: &Value) -> String {
    gate["success_rate"]
        .as_f64()
        .map_or("-".to_string(), |r| format!("{:.2} %", r * 100.0))
}

fn proposal(r: &Value) -> String {
    match r.get("proposal").filter(|p| !p.is_null()) {
        Some(p) => format!("{} ({})", s(&p["to"]), s(&p["at"])),
        None => "-".to_string(),
    }
}

/// `met → silent`, or `unmet: reason; reason`.
fn gate_line(gate: &Value) -> String {
    if gate["met"] == true {
        return format!("met → {}", s(&gate["next"]));
    }
    let unmet: Vec<&str> = gate["unmet"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!("unmet: {}", unmet.join("; "))
}

pub fn render_list(body: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:<12} {:<7} {:<7} {:>6} {:>7} {:>9} {:>9} {:>3} {:>9} {:>9} {:>9}  {:<28} GATE",
        "ACTION",
        "SCOPE",
        "STAGE",
        "CAP",
        "DAYS",
        "SAMPLES",
        "SUCCESS",
        "BOUND95",
        "P0",
        "MTTR",
        "P90",
        "ROLLBACK",
        "PROPOSAL"
    );
    for r in body["items"].as_array().into_iter().flatten() {
        let gate = &r["gate"];
        let m = &r["measured"];
        let _ = writeln!(
            out,
            "{:<24} {:<12} {:<7} {:<7} {:>6} {:>7} {:>9} {:>9} {:>3} {:>9} {:>9} {:>9}  {:<28} {}",
            s(&r["action"]),
            s(&r["scope"]),
            s(&r["stage"]),
            s(&r["cap"]),
            days(gate),
            gate["samples"].as_u64().unwrap_or(0),
            rate(gate),
            percent(&gate["lower_bound"]),
            gate["p0_misfixes"].as_u64().unwrap_or(0),
            seconds(&m["mean_recovery_seconds"]),
            seconds(&m["p90_recovery_seconds"]),
            percent(&m["rollback_success_rate"]),
            proposal(r),
            gate_line(gate),
        );
    }
    out
}

fn percent(v: &Value) -> String {
    v.as_f64()
        .map_or("-".to_string(), |r| format!("{:.2} %", r * 100.0))
}

/// A duration in seconds as an SRE reads it: `42s`, `3m 5s`.
fn seconds(v: &Value) -> String {
    match v.as_f64() {
        None => "-".to_string(),
        Some(s) if s < 60.0 => format!("{s:.0}s"),
        Some(s) => format!("{}m {:.0}s", (s / 60.0).floor(), s % 60.0),
    }
}

pub fn render_stage(body: &Value) -> String {
    let r = &body["stage"];
    let gate = &r["gate"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} in scope {}: {} since {} (scope cap {})",
        s(&r["action"]),
        s(&r["scope"]),
        s(&r["stage"]),
        s(&r["since"]),
        s(&r["cap"])
    );
    let _ = writeln!(
        out,
        "in stage {} days; outcomes {} ({} succeeded), success rate {}, P0 misfixes {}",
        days(gate),
        gate["samples"].as_u64().unwrap_or(0),
        gate["successes"].as_u64().unwrap_or(0),
        rate(gate),
        gate["p0_misfixes"].as_u64().unwrap_or(0)
    );
    let m = &r["measured"];
    let _ = writeln!(
        out,
        "95 % lower bound {}{}; recovery mean {} p90 {} over {} resolves; rollbacks {} of {} restored ({})",
        percent(&gate["lower_bound"]),
        if gate["gate_on_lower_bound"] == true {
            " (the gate reads it)"
        } else {
            ""
        },
        seconds(&m["mean_recovery_seconds"]),
        seconds(&m["p90_recovery_seconds"]),
        m["recoveries"].as_u64().unwrap_or(0),
        m["rollbacks_restored"].as_u64().unwrap_or(0),
        m["rollbacks"].as_u64().unwrap_or(0),
        percent(&m["rollback_success_rate"]),
    );
    if let Some(kinds) = m["kinds"].as_object().filter(|k| !k.is_empty()) {
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "outcomes in the window: {}", kinds.join(", "));
    }
    let next = gate["next"].as_str().unwrap_or("nothing");
    if gate["met"] == true {
        let _ = writeln!(out, "gate to {next}: met");
    } else {
        let _ = writeln!(out, "gate to {next}: unmet");
        for why in gate["unmet"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  - {}", s(why));
        }
    }
    if let Some(p) = r.get("proposal").filter(|p| !p.is_null()) {
        let _ = writeln!(out, "proposed: {} at {}", s(&p["to"]), s(&p["at"]));
    }
    let _ = writeln!(out, "\nhistory:");
    for c in body["history"].as_array().into_iter().flatten() {
        let from = c["from"].as_str().unwrap_or("(new)");
        let _ = writeln!(
            out,
            "  {}  {:<7} → {:<7} by {}: {}",
            s(&c["at"]),
            from,
            s(&c["to"]),
            s(&c["by"]),
            s(&c["reason"])
        );
    }
    out
}

fn render_changed(verb: &str, body: &Value) -> String {
    format!(
        "{verb} {} in scope {} to {} (since {})\n",
        s(&body["action"]),
        s(&body["scope"]),
        s(&body["stage"]["stage"]),
        s(&body["stage"]["since"])
    )
}
