//! `rootfix confirm INCIDENT --verdict correct|misfix [--severity P0..P3] [--comment TEXT]`: an
//! SRE's verdict on a fix that ran, through the server's API (role approver).
//!
//! The verdict feeds the outcomes the promotion gate counts, closes an incident waiting for it
//! (stage `silent`), and a P0 misfix demotes the fix type to `manual`. A misfix needs a severity;
//! clap checks that here, and the server checks it again. An incident is confirmed once.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::api::{ApiArgs, block_on, call, pretty, segment};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Verdict {
    /// The fix was right.
    Correct,
    /// The fix was wrong (needs `--severity`).
    Misfix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Severity {
    #[value(name = "P0", alias = "p0")]
    P0,
    #[value(name = "P1", alias = "p1")]
    P1,
    #[value(name = "P2", alias = "p2")]
    P2,
    #[value(name = "P3", alias = "p3")]
    P3,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "P0",
            Severity::P1 => "P1",
            Severity::P2 => "P2",
            Severity::P3 => "P3",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ConfirmArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The incident whose fix ran.
    pub incident: String,
    #[arg(long, value_enum)]
    pub verdict: Verdict,
    /// How bad the misfix was (required with `--verdict misfix`).
    #[arg(long, value_enum, required_if_eq("verdict", "misfix"))]
    pub severity: Option<Severity>,
    /// Recorded with the verdict.
    #[arg(long, default_value = "")]
    pub comment: String,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ConfirmArgs) -> ExitCode {
    block_on("confirm", async {
        let verdict = match args.verdict {
            Verdict::Correct => "correct",
            Verdict::Misfix => "misfix",
        };
        let mut body = json!({"verdict": verdict, "comment": args.comment});
        if let Some(severity) = args.severity {
            body["severity"] = json!(severity.as_str());
        }
        let path = format!("/api/v1/incidents/{}/confirm", segment(&args.incident));
        let reply = call(&args.api, reqwest::Method::POST, &path, Some(body)).await?;
        if args.json {
            return Ok(pretty(&reply));
        }
        Ok(render(&reply))
    })
}

pub fn render(reply: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let verdict = &reply["fix"]["verdict"];
    let said = match verdict["severity"].as_str() {
        Some(severity) => format!("{severity} misfix reported"),
        None => "confirmed correct".to_string(),
    };
    format!(
        "incident {}: {said} by {}; incident {}\n",
        s(&reply["incident"]),
        s(&verdict["by"]),
        s(&reply["state"])
    )
}
