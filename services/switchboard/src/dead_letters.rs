//! `switchboard dead-letters list|replay`: what consumers gave up on, for operators (run it
//! where the pods run, e.g. `kubectl exec`, with the same bus settings).

use std::process::ExitCode;
use std::sync::Arc;

use switchboard_messaging::Bus;
use switchboard_messaging::dead_letters::{list_dead_letters, replay_dead_letters};
use switchboard_messaging::metrics::MessagingMetrics;

use crate::{Config, DeadLetterAction};

/// Runs `action` against the configured broker and prints the outcome.
pub(crate) async fn run(config: Config, action: DeadLetterAction) -> ExitCode {
    let bus = Bus::start(
        switchboard_messaging::BusConfig {
            connection_name: "switchboard dead-letters".to_owned(),
            ..config.bus.clone()
        },
        Arc::new(MessagingMetrics::default()),
    );
    let code = match action {
        DeadLetterAction::List { queue, limit } => match list_dead_letters(&bus, &queue, limit).await {
            Ok(letters) => {
                println!("{} dead letter(s) in {queue}", letters.len());
                for letter in letters {
                    println!(
                        "{}\t{}\t{}\tattempts {}\t{} bytes\t{}",
                        letter.dead_letter_queue,
                        letter.message_id,
                        letter.event_type,
                        letter.attempts,
                        letter.size,
                        letter.reason
                    );
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchboard: cannot list dead letters: {error}");
                ExitCode::FAILURE
            }
        },
        DeadLetterAction::Replay {
            queue,
            message_id,
            all: _,
        } => match replay_dead_letters(&bus, &queue, message_id.as_deref()).await {
            Ok(replayed) => {
                println!("replayed {replayed} dead letter(s) of {queue}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchboard: replay stopped: {error}");
                ExitCode::FAILURE
            }
        },
    };
    bus.close().await;
    code
}
