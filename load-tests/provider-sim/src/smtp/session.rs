//! One SMTP connection: the RFC 5321 command state machine.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::headers;
use super::io::{DataReader, DataStep, LineRead, read_line};
use super::log::SmtpEvent;
use super::path::{parse_path, strip_keyword};
use crate::model::{SmtpFaultKind, SmtpMessage};
use crate::state::SimState;

/// The name the sink greets with.
const HOSTNAME: &str = "provider-sim";
/// Longest command line, `CRLF` included (RFC 5321 asks for at least 512; `AUTH` needs more).
const MAX_COMMAND_LINE: usize = 2048;
/// Longest line of message data, `CRLF` included (RFC 5321 §4.5.3.1.6).
const MAX_TEXT_LINE: usize = 1000;
/// Most recipients of one transaction (RFC 5321 asks for at least 100).
const MAX_RECIPIENTS: usize = 1000;
/// Refused commands after which the connection is closed.
const MAX_ERRORS: u32 = 20;

/// Whether the session goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// One line of input, or the end of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// A line is in `Session::line`.
    Line,
    /// An overlong line was dropped.
    TooLong,
    /// Peer gone, idle timeout or shutdown (the last two were answered `421`).
    Closed,
}

/// How an `AUTH` challenge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthStep {
    /// The client's decoded response.
    Response(Vec<u8>),
    /// The exchange was refused or cancelled (already answered).
    Refused,
    /// The connection is closing.
    Closed,
}

/// What `MAIL`, `RCPT` and the greeting gathered for one message.
struct Envelope {
    helo: String,
    auth_user: Option<String>,
    mail_from: String,
    rcpt_to: Vec<String>,
}

/// The state of one connection.
pub(super) struct Session {
    conn: BufReader<TcpStream>,
    state: Arc<SimState>,
    shutdown: CancellationToken,
    line: Vec<u8>,
    helo: Option<String>,
    auth_user: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    errors: u32,
}

impl Session {
    /// A session on `stream`, ended early by `shutdown`.
    pub(super) fn new(stream: TcpStream, state: Arc<SimState>, shutdown: CancellationToken) -> Self {
        Self {
            conn: BufReader::new(stream),
            state,
            shutdown,
            line: Vec::new(),
            helo: None,
            auth_user: None,
            mail_from: None,
            rcpt_to: Vec::new(),
            errors: 0,
        }
    }

    /// Greets, then answers commands until `QUIT`, the peer leaves, a timeout or shutdown.
    pub(super) async fn run(mut self) -> std::io::Result<()> {
        self.reply(&format!("220 {HOSTNAME} ESMTP Switchboard provider simulator"))
            .await?;
        loop {
            let flow = match self.read(MAX_COMMAND_LINE).await? {
                Input::Closed => Flow::Close,
                Input::TooLong => self.refuse("500 5.5.2 Line too long").await?,
                Input::Line => self.command().await?,
            };
            if flow == Flow::Close {
                break;
            }
            if self.errors >= MAX_ERRORS {
                self.reply("421 4.7.0 Too many errors, closing connection")
                    .await?;
                break;
            }
        }
        self.conn.get_mut().shutdown().await.or(Ok(()))
    }

    /// Sends one reply (its lines in a single write, so no Nagle delay splits them).
    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(text.len() + 2);
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.conn.get_mut().write_all(&bytes).await
    }

    /// Answers a refused command (counted towards [`MAX_ERRORS`]).
    async fn refuse(&mut self, text: &str) -> std::io::Result<Flow> {
        self.errors += 1;
        self.reply(text).await?;
        Ok(Flow::Continue)
    }

    async fn ok(&mut self, text: &str) -> std::io::Result<Flow> {
        self.reply(text).await?;
        Ok(Flow::Continue)
    }

    /// Reads the next line of at most `max` octets into `self.line`.
    async fn read(&mut self, max: usize) -> std::io::Result<Input> {
        let idle = self.state.options.smtp_idle_timeout;
        let read = tokio::select! {
            () = self.shutdown.cancelled() => None,
            read = tokio::time::timeout(idle, read_line(&mut self.conn, &mut self.line, max)) => Some(read),
        };
        match read {
            None => {
                self.reply("421 4.3.2 Service shutting down").await?;
                Ok(Input::Closed)
            }
            Some(Err(_elapsed)) => {
                self.reply("421 4.4.2 Idle timeout, closing connection").await?;
                Ok(Input::Closed)
            }
            Some(Ok(read)) => Ok(match read? {
                LineRead::Line => Input::Line,
                LineRead::TooLong => Input::TooLong,
                LineRead::Eof => Input::Closed,
            }),
        }
    }

    /// The current line without its line ending, lossily decoded.
    fn text(&self) -> String {
        let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        String::from_utf8_lossy(line).into_owned()
    }

    fn clear_transaction(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    async fn command(&mut self) -> std::io::Result<Flow> {
        let text = self.text();
        let (verb, args) = match text.split_once(' ') {
            Some((verb, args)) => (verb.to_ascii_uppercase(), args.trim()),
            None => (text.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" | "HELO" => self.hello(&verb, args).await,
            "AUTH" => self.auth(args).await,
            "MAIL" => self.mail(args).await,
            "RCPT" => self.rcpt(args).await,
            "DATA" => self.data(args).await,
            "RSET" => {
                self.clear_transaction();
                self.ok("250 2.0.0 Ok").await
            }
            "NOOP" => self.ok("250 2.0.0 Ok").await,
            "QUIT" => {
                self.reply("221 2.0.0 Bye").await?;
                Ok(Flow::Close)
            }
            "STARTTLS" => self.refuse("454 4.7.0 TLS not available").await,
            "VRFY" => {
                self.ok("252 2.0.0 Cannot VRFY user, but will accept message")
                    .await
            }
            "HELP" => self.ok("214 2.0.0 See RFC 5321").await,
            "EXPN" | "BDAT" | "ETRN" | "TURN" => self.refuse("502 5.5.1 Command not implemented").await,
            _ => self.refuse("500 5.5.2 Command not recognized").await,
        }
    }

    async fn hello(&mut self, verb: &str, args: &str) -> std::io::Result<Flow> {
        let Some(name) = args.split_whitespace().next() else {
            return self.refuse(&format!("501 5.5.4 Syntax: {verb} hostname")).await;
        };
        let reply = if verb == "HELO" {
            format!("250 {HOSTNAME}")
        } else {
            let max_size = self.state.options.smtp_max_message_size;
            format!(
                "250-{HOSTNAME} Hello {name}\r\n250-SIZE {max_size}\r\n250-8BITMIME\r\n\
                 250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES"
            )
        };
        self.helo = Some(name.to_owned());
        self.clear_transaction();
        self.ok(&reply).await
    }

    async fn auth(&mut self, args: &str) -> std::io::Result<Flow> {
        if self.helo.is_none() {
            return self.refuse("503 5.5.1 Error: send HELO/EHLO first").await;
        }
        if self.auth_user.is_some() {
            return self.refuse("503 5.5.1 Error: already authenticated").await;
        }
        if self.mail_from.is_some() {
            return self.refuse("503 5.5.1 Error: MAIL transaction in progress").await;
        }
        let (mechanism, initial) = match args.split_once(' ') {
            Some((mechanism, initial)) => (mechanism.to_ascii_uppercase(), Some(initial.trim().to_owned())),
            None => (args.to_ascii_uppercase(), None),
        };
        let user = match mechanism.as_str() {
            "PLAIN" => {
                let response = match self.auth_response(initial, "").await? {
                    AuthStep::Response(response) => response,
                    AuthStep::Refused => return Ok(Flow::Continue),
                    AuthStep::Closed => return Ok(Flow::Close),
                };
                // authzid NUL authcid NUL passwd (RFC 4616).
                let parts: Vec<&[u8]> = response.split(|&byte| byte == 0).collect();
                match parts.as_slice() {
                    [_authzid, authcid, _passwd] => String::from_utf8_lossy(authcid).into_owned(),
                    _ => return self.refuse("501 5.5.2 Malformed PLAIN response").await,
                }
            }
            "LOGIN" => {
                let user = match self.auth_response(initial, "VXNlcm5hbWU6").await? {
                    AuthStep::Response(user) => user,
                    AuthStep::Refused => return Ok(Flow::Continue),
                    AuthStep::Closed => return Ok(Flow::Close),
                };
                match self.auth_response(None, "UGFzc3dvcmQ6").await? {
                    AuthStep::Response(_password) => {}
                    AuthStep::Refused => return Ok(Flow::Continue),
                    AuthStep::Closed => return Ok(Flow::Close),
                }
                String::from_utf8_lossy(&user).into_owned()
            }
            _ => return self.refuse("504 5.5.4 Unrecognized authentication type").await,
        };
        if user.is_empty() {
            return self.refuse("535 5.7.8 Authentication credentials invalid").await;
        }
        self.auth_user = Some(user);
        self.state.smtp.note(SmtpEvent::Authenticated);
        self.ok("235 2.7.0 Authentication successful").await
    }

    /// The decoded client response: `initial` if given (`=` is empty), else the answer to a
    /// `334 challenge` (`challenge` is base64).
    async fn auth_response(&mut self, initial: Option<String>, challenge: &str) -> std::io::Result<AuthStep> {
        let response = match initial {
            Some(initial) => initial,
            None => {
                self.reply(&format!("334 {challenge}")).await?;
                match self.read(MAX_COMMAND_LINE).await? {
                    Input::Line => self.text().trim().to_owned(),
                    Input::TooLong => {
                        self.refuse("500 5.5.6 Authentication exchange line is too long")
                            .await?;
                        return Ok(AuthStep::Refused);
                    }
                    Input::Closed => return Ok(AuthStep::Closed),
                }
            }
        };
        if response == "*" {
            self.refuse("501 5.7.0 Authentication cancelled").await?;
            return Ok(AuthStep::Refused);
        }
        if response == "=" {
            return Ok(AuthStep::Response(Vec::new()));
        }
        match STANDARD.decode(response.as_bytes()) {
            Ok(decoded) => Ok(AuthStep::Response(decoded)),
            Err(_) => {
                self.refuse("501 5.5.2 Cannot decode response").await?;
                Ok(AuthStep::Refused)
            }
        }
    }

    async fn mail(&mut self, args: &str) -> std::io::Result<Flow> {
        if self.helo.is_none() {
            return self.refuse("503 5.5.1 Error: send HELO/EHLO first").await;
        }
        if self.mail_from.is_some() {
            return self.refuse("503 5.5.1 Error: nested MAIL command").await;
        }
        let Some((path, params)) = strip_keyword(args, "FROM:").and_then(parse_path) else {
            return self.refuse("501 5.5.4 Syntax: MAIL FROM:<address>").await;
        };
        if !path.is_empty() && !path.contains('@') {
            return self.refuse("501 5.1.7 Bad sender address syntax").await;
        }
        for param in params.split_whitespace() {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            match name.to_ascii_uppercase().as_str() {
                "SIZE" => match value.parse::<u64>() {
                    Ok(size) if size > self.max_size() => {
                        return self
                            .refuse("552 5.3.4 Message size exceeds fixed maximum message size")
                            .await;
                    }
                    Ok(_) => {}
                    Err(_) => return self.refuse("501 5.5.4 Bad SIZE parameter").await,
                },
                "BODY" if ["7BIT", "8BITMIME"].contains(&value.to_ascii_uppercase().as_str()) => {}
                "AUTH" => {}
                _ => {
                    return self
                        .refuse(&format!("555 5.5.4 Unsupported option: {name}"))
                        .await;
                }
            }
        }
        self.mail_from = Some(path);
        self.state.smtp.note(SmtpEvent::Transaction);
        self.ok("250 2.1.0 Ok").await
    }

    fn max_size(&self) -> u64 {
        u64::try_from(self.state.options.smtp_max_message_size).unwrap_or(u64::MAX)
    }

    async fn rcpt(&mut self, args: &str) -> std::io::Result<Flow> {
        if self.mail_from.is_none() {
            return self.refuse("503 5.5.1 Error: need MAIL command").await;
        }
        let Some((path, params)) = strip_keyword(args, "TO:").and_then(parse_path) else {
            return self.refuse("501 5.5.4 Syntax: RCPT TO:<address>").await;
        };
        if !params.trim().is_empty() {
            return self.refuse("555 5.5.4 Unsupported option").await;
        }
        if !(path.contains('@') || path.eq_ignore_ascii_case("postmaster")) {
            return self.refuse("501 5.1.3 Bad recipient address syntax").await;
        }
        if self.rcpt_to.len() >= MAX_RECIPIENTS {
            return self.refuse("452 4.5.3 Error: too many recipients").await;
        }
        self.rcpt_to.push(path);
        self.ok("250 2.1.5 Ok").await
    }

    async fn data(&mut self, args: &str) -> std::io::Result<Flow> {
        if !args.is_empty() {
            return self.refuse("501 5.5.4 Syntax: DATA").await;
        }
        if self.mail_from.is_none() {
            return self.refuse("503 5.5.1 Error: need MAIL command").await;
        }
        if self.rcpt_to.is_empty() {
            return self.refuse("554 5.5.1 Error: no valid recipients").await;
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        let mut data = DataReader::new(self.state.options.smtp_max_message_size);
        loop {
            let read = match self.read(MAX_TEXT_LINE).await? {
                Input::Closed => return Ok(Flow::Close),
                Input::Line => LineRead::Line,
                Input::TooLong => LineRead::TooLong,
            };
            if data.push(read, &self.line) == DataStep::End {
                break;
            }
        }
        let envelope = Envelope {
            helo: self.helo.clone().unwrap_or_default(),
            auth_user: self.auth_user.clone(),
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
        };
        if data.too_large() {
            self.state.smtp.note(SmtpEvent::Rejected);
            return self
                .ok("552 5.3.4 Message size exceeds fixed maximum message size")
                .await;
        }
        if data.line_too_long() {
            self.state.smtp.note(SmtpEvent::Rejected);
            return self
                .ok("500 5.5.2 Message has a line longer than 998 characters")
                .await;
        }
        match self.state.smtp.take_fault() {
            Some(SmtpFaultKind::SmtpReply { code, enhanced, text }) => {
                let text = text.unwrap_or_else(|| "injected fault".to_owned());
                let reply = match enhanced {
                    Some(enhanced) => format!("{code} {enhanced} {text}"),
                    None => format!("{code} {text}"),
                };
                self.reply(&reply).await?;
                // 421 means the server closes the channel (RFC 5321 §3.8).
                return Ok(if code == 421 { Flow::Close } else { Flow::Continue });
            }
            Some(SmtpFaultKind::Disconnect) => return Ok(Flow::Close),
            None => {}
        }
        let time_ms = self.state.elapsed_ms();
        let (bytes, size) = data.finish();
        let queue_id = self.state.smtp.record(message(envelope, &bytes, size, time_ms));
        self.ok(&format!("250 2.0.0 Ok: queued as {queue_id}")).await
    }
}

/// Builds the record of an accepted message (its `seq` and `queue_id` come from the log).
fn message(envelope: Envelope, bytes: &[u8], size: u64, time_ms: u64) -> SmtpMessage {
    let raw = String::from_utf8_lossy(bytes).into_owned();
    let (headers, _) = headers::parse(&raw);
    let field = |name: &str| headers::first(&headers, name);
    SmtpMessage {
        seq: 0,
        queue_id: String::new(),
        helo: envelope.helo,
        auth_user: envelope.auth_user,
        mail_from: envelope.mail_from,
        rcpt_to: envelope.rcpt_to,
        message_id: field("Message-ID"),
        in_reply_to: field("In-Reply-To"),
        references: field("References"),
        subject: field("Subject"),
        from: field("From"),
        to: field("To"),
        auto_submitted: field("Auto-Submitted"),
        headers,
        raw,
        size,
        time_ms,
    }
}
