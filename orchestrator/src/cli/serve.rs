//! `rootfix serve --config rootfix.yaml`: the orchestrator itself.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::ServeConfig;
use crate::engine::EvidenceProvider;
use crate::server::serve::serve;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The server's configuration file.
    #[arg(long, default_value = "rootfix.yaml")]
    pub config: PathBuf,
    /// Logs as text instead of JSON lines.
    #[arg(long)]
    pub text_logs: bool,
}

pub fn run(args: &ServeArgs) -> ExitCode {
    init_logs(args.text_logs);
    let config = match ServeConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rootfix serve: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rootfix serve: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, &live_evidence)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rootfix serve: {e}");
            ExitCode::FAILURE
        }
    }
}

fn live_evidence(
    config: &ServeConfig,
    diagnostics: Arc<dyn crate::evidence::DiagnosticRunner>,
) -> Result<Arc<dyn EvidenceProvider>, String> {
    let live = crate::evidence::LiveEvidence::new(&config.evidence).map_err(|e| e.to_string())?;
    Ok(Arc::new(live.with_diagnostic_runner(diagnostics)))
}

fn init_logs(text: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if text {
        builder.try_init()
    } else {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    };
    let _ = result;
}
