//! PostgreSQL `LISTEN` on a dedicated connection, for change feeds that must wake readers as
//! soon as a writer commits (`NOTIFY` is delivered at commit, never before).

use std::time::Duration;

use futures_util::StreamExt;
use secrecy::ExposeSecret;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

use crate::{DatabaseConfig, StoreError};

/// What a listener passes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wakeup {
    /// A notification on one of the channels, with its payload.
    Notified {
        /// The `NOTIFY` channel.
        channel: String,
        /// The payload the writer sent.
        payload: String,
    },
    /// The listener (re)connected: notifications may have been missed, so every reader
    /// should look again.
    Resync,
}

/// Longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens on `channels` until shutdown, sending each notification to `sink`. It reconnects
/// after a lost connection and then sends [`Wakeup::Resync`]; it never returns before
/// shutdown.
pub async fn run_listener(
    config: DatabaseConfig,
    channels: Vec<String>,
    sink: broadcast::Sender<Wakeup>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let listened = tokio::select! {
            () = shutdown.cancelled() => return,
            result = listen_once(&config, &channels, &sink) => result,
        };
        match listened {
            Ok(()) => tracing::warn!("postgres listener connection ended; reconnecting"),
            Err(error) => {
                tracing::warn!(error = %error, retry_in = ?backoff, "postgres listener failed; reconnecting");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: LISTEN, announce a resync, forward notifications until it ends.
async fn listen_once(
    config: &DatabaseConfig,
    channels: &[String],
    sink: &broadcast::Sender<Wakeup>,
) -> Result<(), StoreError> {
    let mut pg_config: tokio_postgres::Config = config
        .url
        .expose_secret()
        .parse()
        .map_err(|error| StoreError::Config(format!("database url does not parse: {error}")))?;
    pg_config.connect_timeout(config.connect_timeout);
    pg_config.application_name("switchboard-listener");
    let (client, mut connection) = pg_config.connect(NoTls).await?;
    let (messages_tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    // The connection must be polled for the LISTEN statements to complete, so drive it first.
    let driver = tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |context| connection.poll_message(context));
        while let Some(message) = stream.next().await {
            match message {
                Ok(message) => {
                    if messages_tx.send(message).is_err() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "postgres listener connection error");
                    break;
                }
            }
        }
    });
    let statements: String = channels
        .iter()
        .map(|channel| format!("LISTEN \"{}\";", channel.replace('"', "\"\"")))
        .collect();
    let listening = client.batch_execute(&statements).await;
    if let Err(error) = listening {
        driver.abort();
        return Err(error.into());
    }
    // Anything committed while we were not listening is found by the readers' re-check.
    let _ = sink.send(Wakeup::Resync);
    while let Some(message) = messages.recv().await {
        if let AsyncMessage::Notification(notification) = message {
            let _ = sink.send(Wakeup::Notified {
                channel: notification.channel().to_owned(),
                payload: notification.payload().to_owned(),
            });
        }
    }
    driver.abort();
    Ok(())
}
