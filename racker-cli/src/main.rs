//! The `racker` command line.

mod globals;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::globals::Globals;

/// Racker provisions a whole server rack from one of its own servers.
#[derive(Debug, Parser)]
#[command(name = "racker", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print racker's version.
    Version,
    // Each subcommand lives in its own module; add one variant per line below.
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<ExitCode> = match cli.command {
        Command::Version => {
            println!("racker {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
    };
    let _ = &cli.globals;
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
