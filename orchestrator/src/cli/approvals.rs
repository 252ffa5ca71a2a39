//! `rootfix approvals list|show|approve|reject`: the fixes waiting for an SRE (stage `manual`),
//! through the server's API.
//!
//! Listing and showing need role viewer, deciding needs role approver; the token's name is
//! recorded with the decision. The server and the token come from `--server` / `--token` or
//! `ROOTFIX_URL` / `ROOTFIX_TOKEN`.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::api::{ApiArgs, block_on, call, params_text, pretty, segment};

#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ApprovalsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ApprovalsCommand {
    /// Pending approvals, newest first (`--all`: decided ones too).
    List {
        /// Also approved, rejected, expired and cancelled ones.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One approval: what it would run, why, and who decided it.
    Show { id: String },
    /// Approve: the fix starts through the remaining gates (approving twice is a no-op).
    Approve { id: String },
    /// Reject: the fix does not run; the incident stays open.
    Reject {
        id: String,
        /// Why (recorded with the decision and on the incident).
        #[arg(long)]
        reason: String,
    },
}

pub fn run(args: &ApprovalsArgs) -> ExitCode {
    block_on("approvals", async {
        let post = reqwest::Method::POST;
        let body = match &args.command {
            ApprovalsCommand::List { all, limit } => {
                let state = if *all { "all" } else { "pending" };
                let path = format!("/api/v1/approvals?state={state}&limit={limit}");
                call(&args.api, reqwest::Method::GET, &path, None).await?
            }
            ApprovalsCommand::Show { id } => {
                let path = format!("/api/v1/approvals/{}", segment(id));
                call(&args.api, reqwest::Method::GET, &path, None).await?
            }
            ApprovalsCommand::Approve { id } => {
                let path = format!("/api/v1/approvals/{}/approve", segment(id));
                call(&args.api, post, &path, None).await?
            }
            ApprovalsCommand::Reject { id, reason } => {
                let path = format!("/api/v1/approvals/{}/reject", segment(id));
                call(&args.api, post, &path, Some(json!({"reason": reason}))).await?
            }
        };
        if args.json {
            return Ok(pretty(&body));
        }
        Ok(match &args.command {
            ApprovalsCommand::List { .. } => render_list(&body),
            ApprovalsCommand::Show { .. } => render_approval(&body),
            ApprovalsCommand::Approve { .. } => render_approved(&body),
            ApprovalsCommand::Reject { .. } => render_rejected(&body),
        })
    })
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// `expires <time>` for a pending approval, `<decided time>` for a decided one.
fn when(a: &Value) -> String {
    match a["decided_at"].as_str() {
        Some(at) => at.to_string(),
        None => format!("expires {}", s(&a["expires_at"])),
    }
}

pub fn render_list(body: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:<28} {:<20} {:<12} {:<10} {:<28} STATE",
        "ID", "INCIDENT", "ACTION", "SCOPE", "CONFIDENCE", "EXPIRES/DECIDED"
    );
    for a in body["items"].as_array().into_iter().flatten() {
        let state = match a["decided_by"].as_str() {
            Some(by) => format!("{} by {by}", s(&a["state"])),
            None => s(&a["state"]).to_string(),
        };
        let _ = writeln!(
            out,
            "{:<40} {:<28} {:<20} {:<12} {:<10} {:<28} {state}",
            s(&a["id"]),
            s(&a["incident"]),
            s(&a["action"]),
            s(&a["scope"]),
            format!("{:.2}", a["confidence"].as_f64().unwrap_or(0.0)),
            when(a),
        );
    }
    out
}

pub fn render_approval(a: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "approval   {}  {}", s(&a["id"]), s(&a["state"]));
    let _ = writeln!(out, "incident   {}", s(&a["incident"]));
    let _ = writeln!(out, "action     {}   scope {}", s(&a["action"]), s(&a["scope"]));
    let _ = writeln!(out, "params     {}", params_text(&a["params"]));
    // A remedy of steps: what each step runs, in order.
    for (k, step) in a["steps"].as_array().into_iter().flatten().enumerate() {
        let (action, params) = (s(&step["action"]), params_text(&step["params"]));
        let _ = writeln!(out, "step {:<5} {action} {params}", k + 1);
    }
    let _ = writeln!(out, "summary    {}", s(&a["summary"]));
    let _ = writeln!(
        out,
        "confidence {:.3} (threshold {:.3})",
        a["confidence"].as_f64().unwrap_or(0.0),
        a["threshold"].as_f64().unwrap_or(0.0)
    );
    let _ = writeln!(out, "created    {}", s(&a["created_at"]));
    let _ = writeln!(out, "expires    {}", s(&a["expires_at"]));
    if let Some(by) = a["decided_by"].as_str() {
        let _ = writeln!(out, "decided    {} by {by}", s(&a["decided_at"]));
    }
    if let Some(reason) = a["reason"].as_str() {
        let _ = writeln!(out, "reason     {reason}");
    }
    out
}

/// What became of the fix once approved (`decided_json` on the server).
fn fix_line(fix: &Value) -> String {
    match s(&fix["kind"]) {
        "started" if fix["dry_run"] == true => "fix started (dry run)".to_string(),
        "started" => "fix started".to_string(),
        "refused" => format!(
            "fix refused by the {} gate: {}",
            s(&fix["gate"]),
            s(&fix["reason"])
        ),
        "awaiting-approval" => format!("fix waits for approval {}", s(&fix["approval"])),
        _ => "no fix started (the incident no longer waits for it)".to_string(),
    }
}

pub fn render_approved(body: &Value) -> String {
    let a = &body["approval"];
    if body["already_approved"] == true {
        return format!(
            "approval {} was approved already (by {} at {})\n",
            s(&a["id"]),
            s(&a["decided_by"]),
            s(&a["decided_at"])
        );
    }
    format!(
        "approved {} (incident {}): {}\n",
        s(&a["id"]),
        s(&a["incident"]),
        fix_line(&body["fix"])
    )
}

pub fn render_rejected(body: &Value) -> String {
    let a = &body["approval"];
    format!(
        "rejected {} (incident {}): {}\n",
        s(&a["id"]),
        s(&a["incident"]),
        s(&a["reason"])
    )
}
