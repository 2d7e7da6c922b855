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
    /// Answer a conversation as an agent (through the delivery API), e.g. a web chat visitor.
    Reply {
        /// The text to send.
        text: String,
        /// The conversation (`conv_…`); default: the most recently opened one (on `--channel`
        /// when given).
        #[arg(long)]
        conversation: Option<String>,
        /// Answer the latest conversation of this channel only.
        #[arg(long)]
        channel: Option<switchboard_domain::Channel>,
        /// The workspace (when acting with the internal token instead of an API key).
        #[arg(long, default_value = "ws_demo")]
        workspace: String,
        /// A workspace API key; without one, SWITCHBOARD_INTERNAL_TOKEN acts inside --workspace.
        #[arg(long, env = "SWITCHBOARD_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// The agent the reply is from (`agent_…`; the reply claims the conversation).
        #[arg(long, conflicts_with = "agent_email")]
        agent: Option<String>,
        /// The agent the reply is from, by e-mail: the workspace's agent with this address,
        /// created when missing (named after it).
        #[arg(long, default_value = "demo.agent@example.com")]
        agent_email: String,
        /// Where delivery and routing answer over gRPC.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        endpoint: String,
    },
    /// List or replay the messages a consumer gave up on (its queue's dead-letter queues).
    DeadLetters {
        /// What to do with them.
        #[command(subcommand)]
        action: DeadLetterAction,
    },
}

/// What `dead-letters` does.
#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// Show the dead letters of a queue family with the reason each was given up on; they stay.
    List {
        /// The queue family as metrics name it (`contacts.inbound`: every partition), or a queue.
        #[arg(long)]
        queue: String,
        /// Most dead letters shown.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send dead letters back to the queue they came from (after fixing what failed them);
    /// each leaves its dead-letter queue only once the broker confirmed it.
    Replay {
        /// The queue family as metrics name it (`contacts.inbound`: every partition), or a queue.
        #[arg(long)]
        queue: String,
        /// Only the message with this id (the event id `list` shows).
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        message_id: Option<String>,
        /// Every dead letter of the family.
        #[arg(long)]
        all: bool,
    },
}
