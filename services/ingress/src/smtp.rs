//! E-mail ingress over SMTP (RFC 5321): recipients are checked against the e-mail channel
//! accounts at `RCPT` (unknown or disabled → 550), the message size is bounded (`SIZE`
//! advertised, 552 past it), and the message is answered 250 only once its events are confirmed
//! by the broker or spooled; otherwise 451, so the sending MTA keeps it and retries.
//!
//! Plain SMTP: put it behind the MTA or proxy that terminates TLS for the domain (the MX).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use switchboard_channels::NormalizeContext;
use switchboard_domain::{Channel, ChannelAccountId, EventId};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::pipeline::{Ingress, Outcome, Received};
use switchboard_directory::{DirectoryError, ResolvedAccount};

/// Longest command line (RFC 5321 §4.5.3.1.4 allows 512; some clients send longer).
const MAX_COMMAND_LINE: u64 = 2048;
/// Most recipients per message (RFC 5321 requires at least 100).
const MAX_RECIPIENTS: usize = 100;
/// How long the server waits for the next command or data line.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Accepts SMTP connections until `shutdown`; each session runs on its own task.
pub(crate) async fn serve_smtp(
    listener: TcpListener,
    ingress: Arc<Ingress>,
    hostname: String,
    shutdown: CancellationToken,
) -> Result<(), switchboard_server::BoxError> {
    // Each session may hold a whole message in memory: bound how many run at once.
    let sessions = Arc::new(tokio::sync::Semaphore::new(ingress.config.smtp_max_sessions));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(error = %error, "smtp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = sessions.clone().try_acquire_owned() else {
            let mut stream = stream;
            let _ = stream
                .write_all(b"421 4.3.2 Too many connections; try again later\r\n")
                .await;
            continue;
        };
        let (ingress, hostname, shutdown) = (ingress.clone(), hostname.clone(), shutdown.clone());
        let span = tracing::info_span!("smtp session", otel.kind = "server", peer = %peer);
        tokio::spawn(
            async move {
                if let Err(error) = Session::new(ingress, hostname).run(stream, shutdown).await {
                    tracing::debug!(error = %error, "smtp session ended");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// One SMTP conversation.
struct Session {
    ingress: Arc<Ingress>,
    hostname: String,
    greeted: bool,
    sender: Option<String>,
    recipients: Vec<Arc<ResolvedAccount>>,
}

/// How one line read ended.
enum Line {
    Text(Vec<u8>),
    TooLong,
    Closed,
}

async fn read_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, limit: u64) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let read = tokio::time::timeout(
        IDLE_TIMEOUT,
        (&mut *reader).take(limit).read_until(b'\n', &mut line),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "smtp client idle"))??;
    if read == 0 {
        return Ok(Line::Closed);
    }
    if !line.ends_with(b"\n") {
        // Skip the rest of the over-long line.
        let mut rest = Vec::new();
        reader.read_until(b'\n', &mut rest).await?;
        return Ok(Line::TooLong);
    }
    while line.last().is_some_and(|byte| *byte == b'\n' || *byte == b'\r') {
        line.pop();
    }
    Ok(Line::Text(line))
}

/// The address inside `<…>` after a `FROM:`/`TO:` keyword, and the parameters after it.
fn path_argument<'a>(argument: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let rest = argument.get(..keyword.len())?;
    if !rest.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((rest[..end].trim(), rest[end + 1..].trim()))
}

impl Session {
    fn new(ingress: Arc<Ingress>, hostname: String) -> Self {
        Self {
            ingress,
            hostname,
            greeted: false,
            sender: None,
            recipients: Vec::new(),
        }
    }

    fn max_size(&self) -> usize {
        self.ingress.config.max_email_body_bytes
    }

    async fn run(
        mut self,
        stream: tokio::net::TcpStream,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        writer
            .write_all(format!("220 {} ESMTP Switchboard\r\n", self.hostname).as_bytes())
            .await?;
        loop {
            let line = tokio::select! {
                () = shutdown.cancelled() => {
                    writer.write_all(b"421 4.3.2 Service shutting down\r\n").await?;
                    return Ok(());
                }
                line = read_line(&mut reader, MAX_COMMAND_LINE) => line?,
            };
            let line = match line {
                Line::Closed => return Ok(()),
                Line::TooLong => {
                    writer.write_all(b"500 5.5.6 Line too long\r\n").await?;
                    continue;
                }
                Line::Text(line) => String::from_utf8_lossy(&line).into_owned(),
            };
            let (verb, argument) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let reply = match verb.to_ascii_uppercase().as_str() {
                "EHLO" => {
                    self.reset();
                    self.greeted = true;
                    format!(
                        "250-{}\r\n250-SIZE {}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n",
                        self.hostname,
                        self.max_size()
                    )
                }
                "HELO" => {
                    self.reset();
                    self.greeted = true;
                    format!("250 {}\r\n", self.hostname)
                }
                "MAIL" => self.mail(argument),
                "RCPT" => self.rcpt(argument).await,
                "DATA" => {
                    if self.recipients.is_empty() {
                        "503 5.5.1 RCPT first\r\n".to_owned()
                    } else {
                        writer
                            .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                            .await?;
                        let reply = match self.read_data(&mut reader).await? {
                            Some(message) => self.deliver(message).await,
                            None => format!("552 5.3.4 Message larger than {} bytes\r\n", self.max_size()),
                        };
                        self.reset();
                        reply
                    }
                }
                "RSET" => {
                    self.reset();
                    "250 2.0.0 OK\r\n".to_owned()
                }
                "NOOP" => "250 2.0.0 OK\r\n".to_owned(),
                "VRFY" => "252 2.1.5 Cannot verify, but will try\r\n".to_owned(),
                "QUIT" => {
                    writer.write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => "500 5.5.2 Command not recognized\r\n".to_owned(),
            };
            writer.write_all(reply.as_bytes()).await?;
        }
    }

    fn reset(&mut self) {
        self.sender = None;
        self.recipients.clear();
    }

    fn mail(&mut self, argument: &str) -> String {
        if !self.greeted {
            return "503 5.5.1 EHLO first\r\n".to_owned();
        }
        if self.sender.is_some() {
            return "503 5.5.1 Sender already given\r\n".to_owned();
        }
        let Some((address, parameters)) = path_argument(argument, "FROM:") else {
            return "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".to_owned();
        };
        let declared_size = parameters.split_ascii_whitespace().find_map(|parameter| {
            let (name, value) = parameter.split_once('=')?;
            name.eq_ignore_ascii_case("SIZE")
                .then(|| value.parse::<usize>().ok())?
        });
        if declared_size.is_some_and(|size| size > self.max_size()) {
            return format!("552 5.3.4 Message larger than {} bytes\r\n", self.max_size());
        }
        // The null reverse-path `<>` (bounces) is valid.
        self.sender = Some(address.to_owned());
        "250 2.1.0 OK\r\n".to_owned()
    }

    async fn rcpt(&mut self, argument: &str) -> String {
        if self.sender.is_none() {
            return "503 5.5.1 MAIL first\r\n".to_owned();
        }
        let Some((address, _)) = path_argument(argument, "TO:") else {
            return "501 5.5.4 Syntax: RCPT TO:<address>\r\n".to_owned();
        };
        if self.recipients.len() >= MAX_RECIPIENTS {
            return "452 4.5.3 Too many recipients\r\n".to_owned();
        }
        match self.ingress.directory.find(Channel::Email, address).await {
            Ok(account) if account.enabled && account.channel == Channel::Email => {
                if !self.recipients.iter().any(|known| known.id == account.id) {
                    self.recipients.push(account);
                }
                "250 2.1.5 OK\r\n".to_owned()
            }
            Ok(_) | Err(DirectoryError::NotFound) => {
                self.ingress.metrics.webhook("email", "unknown_account", 0.0);
                "550 5.1.1 No such mailbox here\r\n".to_owned()
            }
            Err(error) => {
                tracing::error!(error = %error, "cannot look up an e-mail recipient");
                "451 4.3.0 Recipient cannot be checked now; try again later\r\n".to_owned()
            }
        }
    }

    /// Reads the message up to the lone dot, undoing dot-stuffing; `None` when it is larger
    /// than allowed (the rest is read and dropped, so the session can go on).
    async fn read_data<R: AsyncRead + Unpin>(
        &self,
        reader: &mut BufReader<R>,
    ) -> std::io::Result<Option<Vec<u8>>> {
        let limit = self.max_size();
        let mut message = Vec::new();
        let mut too_large = false;
        // Lines are read in bounded pieces; only a piece that starts a line can be the end
        // marker or carry a stuffed dot.
        let mut at_line_start = true;
        loop {
            let mut piece = Vec::new();
            let read = tokio::time::timeout(
                IDLE_TIMEOUT,
                (&mut *reader).take(64 * 1024).read_until(b'\n', &mut piece),
            )
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "smtp client idle"))??;
            if read == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed during DATA",
                ));
            }
            if at_line_start && (piece == b".\r\n" || piece == b".\n") {
                break;
            }
            let content = if at_line_start {
                piece.strip_prefix(b".").unwrap_or(&piece)
            } else {
                &piece
            };
            at_line_start = piece.ends_with(b"\n");
            if message.len() + content.len() > limit {
                too_large = true;
                message = Vec::new();
            }
            if !too_large {
                message.extend_from_slice(content);
            }
        }
        Ok((!too_large).then_some(message))
    }

    /// Normalizes and hands over the message for every recipient account.
    async fn deliver(&self, message: Vec<u8>) -> String {
        let started = Instant::now();
        let correlation_id = EventId::generate().into_string();
        let mut outcome = Outcome::Accepted;
        for account in &self.recipients {
            let Ok(channel_account_id) = ChannelAccountId::parse(&account.id) else {
                continue;
            };
            let context = NormalizeContext {
                channel_account_id,
                external_id: account.external_id.clone(),
                received_at: SystemTime::now(),
            };
            let verified = switchboard_channels::email::accepted_by_smtp_listener(&message);
            let normalized = switchboard_channels::email::normalize_raw(verified, &context);
            let received = Received {
                channel: Channel::Email,
                account,
                content_type: "message/rfc822",
                body: &message,
                correlation_id: &correlation_id,
            };
            match self.ingress.accept(&received, normalized, None).await {
                Ok(Outcome::Accepted) => {}
                Ok(other) => outcome = other,
                Err(_) => {
                    self.ingress
                        .metrics
                        .webhook("email", "unavailable", started.elapsed().as_secs_f64());
                    return "451 4.3.0 Cannot accept the message now; try again later\r\n".to_owned();
                }
            }
        }
        self.ingress
            .metrics
            .webhook("email", outcome.as_str(), started.elapsed().as_secs_f64());
        format!("250 2.0.0 OK queued as {correlation_id}\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_parameters_are_parsed() {
        assert_eq!(
            path_argument("FROM:<jane@example.com> SIZE=1200", "FROM:"),
            Some(("jane@example.com", "SIZE=1200"))
        );
        assert_eq!(path_argument("from: <>", "FROM:"), Some(("", "")));
        assert_eq!(
            path_argument("TO:<Support@Acme.test>", "TO:"),
            Some(("Support@Acme.test", ""))
        );
        assert_eq!(path_argument("TO:support@acme.test", "TO:"), None);
        assert_eq!(path_argument("", "TO:"), None);
        assert_eq!(path_argument("T", "TO:"), None);
    }
}
