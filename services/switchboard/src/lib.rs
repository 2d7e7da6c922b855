//! The one Switchboard binary. It parses flags, loads and validates the config for the
//! enabled targets, and composes the components' parts behind one HTTP, one gRPC and one
//! admin listener with a single lifecycle (drain on SIGTERM, fail fast on any task error).
//!
//! This is the only crate that depends on several service crates.

mod app;
mod cli;
mod components;
mod config;
mod dead_letters;
mod healthcheck;
mod infrastructure;
mod remote_keys;
mod reply;
mod targets;

pub use app::run_server;
pub use cli::{Cli, Command, DeadLetterAction};
pub use config::Config;
pub use targets::{Target, Targets};

use std::process::ExitCode;

/// Exit code for a bad command line or configuration (`EX_USAGE`).
pub const EXIT_CONFIG: u8 = 64;
/// Exit code when a second signal forces the process down.
pub const EXIT_FORCED: u8 = 130;

/// Runs the command `cli` asks for and returns the process exit code.
pub fn main_with(cli: Cli) -> ExitCode {
    if let Some(Command::Healthcheck { url }) = &cli.command {
        return healthcheck::run(url);
    }
    let (config, targets) = match config::load(&cli) {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("switchboard: configuration error: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Some(Command::PrintConfig) => match toml::Table::try_from(&config).and_then(|mut table| {
            switchboard_server::redact_secrets(&mut table);
            toml::to_string_pretty(&table)
        }) {
            Ok(text) => {
                println!("# effective configuration (secrets redacted), targets: {targets}\n{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchboard: cannot print the configuration: {error}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Migrate) => app::block_on(app::migrate(config, targets)),
        Some(Command::Reply {
            text,
            conversation,
            channel,
            workspace,
            api_key,
            agent,
            agent_email,
            endpoint,
        }) => reply::run(
            config,
            reply::ReplyOrder {
                endpoint,
                api_key,
                workspace,
                conversation,
                channel,
                agent: agent.map_or(reply::Author::AgentEmail(agent_email), reply::Author::Agent),
                text,
            },
        ),
        Some(Command::DeadLetters { action }) => app::block_on(dead_letters::run(config, action)),
        Some(Command::Run) | None => app::block_on(app::run_server(config, targets)),
        Some(Command::Healthcheck { .. }) => ExitCode::FAILURE,
    }
}
