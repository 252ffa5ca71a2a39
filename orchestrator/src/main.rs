use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    rootfix::cli::run(rootfix::cli::Cli::parse())
}
