use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Switchboard: an omnichannel messaging gateway.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    /// Components to run: `all`, or any of the component names, comma-separated or repeated.
    #[arg(
        long = "target",
        short = 't',
        env = "SWITCHBOARD_TARGET",
        value_delimiter = ',',
        default_value = "all"
    )]
    pub targets: Vec<String>,
    /// TOML config file; environment variables override it.
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the enabled components until SIGTERM (the default).
    Run,
    /// Apply the schema migrations of the enabled components, then exit.
    Migrate,
    /// Print the effective configuration as TOML, secrets redacted.
    PrintConfig,
    /// GET a URL and exit 0 on a 2xx answer, 1 otherwise (container HEALTHCHECK).
    Healthcheck {
        /// e.g. http://127.0.0.1:9090/livez
        url: String,
    },
}
