//! `rootfix killswitch on --reason R | off | status` and `rootfix audit`, through the API
//! (`ROOTFIX_URL`, `ROOTFIX_TOKEN`; turning it on or off needs role admin).

use std::process::ExitCode;

use serde_json::{Value, json};

use super::api::{ApiArgs, block_on, call};

#[derive(Debug, clap::Args)]
pub struct KillSwitchArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: KillSwitchCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KillSwitchCommand {
    /// Stop every new fix now (running ones finish their phase, then verify or roll back).
    On {
        #[arg(long)]
        reason: String,
    },
    /// Let fixes run again.
    Off,
    /// Whether it is on, since when, by whom and why.
    Status,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// How many of the newest events.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

fn describe(v: &Value) -> String {
    if v["on"] == true {
        format!(
            "kill switch ON since {} by {}: {}\n",
            v["state"]["since"].as_str().unwrap_or("?"),
            v["state"]["by"].as_str().unwrap_or("?"),
            v["state"]["reason"].as_str().unwrap_or("?")
        )
    } else {
        "kill switch off\n".to_string()
    }
}

pub fn run(args: &KillSwitchArgs) -> ExitCode {
    block_on("killswitch", async {
        let v = match &args.command {
            KillSwitchCommand::On { reason } => {
                call(
                    &args.api,
                    reqwest::Method::PUT,
                    "/api/v1/killswitch",
                    Some(json!({"on": true, "reason": reason})),
                )
                .await?
            }
            KillSwitchCommand::Off => {
                call(
                    &args.api,
                    reqwest::Method::PUT,
                    "/api/v1/killswitch",
                    Some(json!({"on": false})),
                )
                .await?
            }
            KillSwitchCommand::Status => {
                call(&args.api, reqwest::Method::GET, "/api/v1/killswitch", None).await?
            }
        };
        Ok(describe(&v))
    })
}

pub fn run_audit(args: &AuditArgs) -> ExitCode {
    block_on("audit", async {
        let v = call(
            &args.api,
            reqwest::Method::GET,
            &format!("/api/v1/audit?limit={}", args.limit),
            None,
        )
        .await?;
        let mut out = String::new();
        for e in v["items"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{}  {:<16} {:<20} {}\n",
                e["at"].as_str().unwrap_or("?"),
                e["identity"].as_str().unwrap_or("?"),
                e["action"].as_str().unwrap_or("?"),
                e["detail"].as_str().unwrap_or("")
            ));
        }
        Ok(out)
    })
}
