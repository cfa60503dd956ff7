//! The `packages` binary: parse the command line, set up logging, run.

use std::io::IsTerminal;

use clap::Parser;
use packages::cli::{Cli, failure_status, print_failure, run};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Colours only for a person at a terminal, not in redirected logs.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                // The AWS SDK's own warnings are debug dumps (a failed metadata
                // lookup, say); the error that matters is reported plainly.
                .unwrap_or_else(|_| EnvFilter::new("warn,aws_config=error,packages=info")),
        )
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let json = cli.global.json;
    let status = failure_status(&cli.command);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            print_failure(&e, json);
            std::process::ExitCode::from(status)
        }
    }
}
