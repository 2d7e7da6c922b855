//! The SMTP sink: a minimal RFC 5321 server (plain text, no TLS) that accepts any
//! credentials, records every accepted message and answers queued faults at the end of
//! `DATA`.

pub(crate) mod headers;
mod io;
mod log;
mod path;
mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::SimState;

pub(crate) use log::SmtpLog;

/// Accepts connections on `listener` until `shutdown`, then waits for open sessions (each
/// answers `421` and closes).
pub(crate) fn spawn(
    listener: TcpListener,
    state: Arc<SimState>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let sessions = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY on an smtp connection");
                    }
                    state.smtp.note(log::SmtpEvent::Connection);
                    let session = session::Session::new(stream, Arc::clone(&state), shutdown.clone());
                    sessions.spawn(async move {
                        if let Err(error) = session.run().await {
                            tracing::debug!(%peer, %error, "smtp session ended with an i/o error");
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "smtp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        sessions.close();
        sessions.wait().await;
    })
}
