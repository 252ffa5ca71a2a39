//! The `rootfix` command line: one module per subcommand.

pub mod api;
pub mod approvals;
pub mod backtest;
pub mod confirm;
pub mod fix;
pub mod incidents;
pub mod killswitch;
pub mod schema;
pub mod serve;
pub mod simulate;
pub mod stages;
pub mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rootfix",
    version,
    about = "Automated remediation orchestrator for Alertmanager alerts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate playbooks and actions; prints one line per problem.
    Validate {
        /// Files or folders (default: playbooks/ and actions/, or the config's folders).
        paths: Vec<PathBuf>,
        /// A serve config: check it too, and warn about actions whose runner cannot run with it
        /// (Kubernetes disabled, the Docker engine not answering), as `serve` would.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the orchestrator: Alertmanager webhook, event loop, incidents API.
    Serve(serve::ServeArgs),
    /// Run a fix now, finish fixes a stopped rootfix left, or read a fix journal.
    Fix(fix::FixArgs),
    /// Turn the kill switch on or off, or show it.
    Killswitch(killswitch::KillSwitchArgs),
    /// The newest audit events.
    Audit(killswitch::AuditArgs),
    /// List and show incidents through the server's API.
    Incidents(incidents::IncidentsArgs),
    /// List, show, approve or reject the fixes waiting for an SRE (stage manual).
    Approvals(approvals::ApprovalsArgs),
    /// Give the verdict on a fix that ran: correct, or a misfix with its severity.
    Confirm(confirm::ConfirmArgs),
    /// List and show the autonomy stage of each (action, scope) and its gate; promote or demote.
    Stages(stages::StagesArgs),
    /// Walk a playbook against an alert and fixture evidence; print the path and the decision.
    Simulate(simulate::SimulateArgs),
    /// Replay recorded incidents under changed playbooks; print what they would have decided
    /// differently (exit 1 when a decision changes, unless --allow-changes).
    Backtest(backtest::BacktestArgs),
    /// Print the JSON Schemas of Playbook and Action, or write them into a folder.
    Schema {
        /// Write `playbook.schema.json` and `action.schema.json` here instead of printing.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate { paths, config } => validate::run(&paths, config.as_deref()),
        Command::Schema { out } => schema::run(out.as_deref()),
        Command::Simulate(args) => simulate::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Incidents(args) => incidents::run(&args),
        Command::Fix(args) => fix::run(&args),
        Command::Killswitch(args) => killswitch::run(&args),
        Command::Audit(args) => killswitch::run_audit(&args),
        Command::Approvals(args) => approvals::run(&args),
        Command::Confirm(args) => confirm::run(&args),
        Command::Stages(args) => stages::run(&args),
    }
}
