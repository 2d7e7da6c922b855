//! The SMTP sink: lettre end to end (AUTH, threading headers, faults, dot-stuffing) and the
//! protocol edges over a raw connection.

use std::net::SocketAddr;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use switchboard_provider_sim::{
    RunningSimulator, Simulator, SimulatorOptions, SmtpFault, SmtpFaultKind, SmtpMessage,
};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A simulator with its SMTP sink on free loopback ports.
async fn start_smtp() -> RunningSimulator {
    Simulator::start_with_smtp("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("simulator with smtp starts")
}

fn smtp_addr(sim: &RunningSimulator) -> SocketAddr {
    sim.smtp_addr().expect("smtp sink listening")
}

/// A lettre transport to the sink, authenticating as `user` with `mechanism` when given.
fn mailer(sim: &RunningSimulator, auth: Option<(&str, Mechanism)>) -> AsyncSmtpTransport<Tokio1Executor> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp_addr(sim).port())
        .timeout(Some(Duration::from_secs(10)));
    if let Some((user, mechanism)) = auth {
        builder = builder
            .credentials(Credentials::new(user.to_owned(), "secret".to_owned()))
            .authentication(vec![mechanism]);
    }
    builder.build()
}

/// A plain text message with `Message-ID` `<id@switchboard.test>`.
fn email(id: &str, body: &str) -> Message {
    Message::builder()
        .message_id(Some(format!("<{id}@switchboard.test>")))
        .from("Support <support+conv_1@switchboard.test>".parse().unwrap())
        .to("Alice <alice@example.com>".parse().unwrap())
        .subject(format!("Re: order {id}"))
        .body(body.to_owned())
        .unwrap()
}

#[tokio::test]
async fn lettre_sends_with_auth_and_threading_headers_and_the_message_reads_back() {
    let sim = start_smtp().await;
    let message = Message::builder()
        .message_id(Some("<out-7f3a@switchboard.test>".to_owned()))
        .in_reply_to("<in-1@example.com>".to_owned())
        .references("<root@example.com> <in-1@example.com>".to_owned())
        .from("Support <support+conv_1@switchboard.test>".parse().unwrap())
        .reply_to("support+conv_1@switchboard.test".parse().unwrap())
        .to("Alice <alice@example.com>".parse().unwrap())
        .cc("bob@example.com".parse().unwrap())
        .subject("Re: your order")
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-replied".to_owned(),
        ))
        .body("Hello Alice,\r\nyour order shipped.\r\n".to_owned())
        .unwrap();
    let response = mailer(&sim, Some(("apikey-user", Mechanism::Plain)))
        .send(message)
        .await
        .expect("accepted");
    assert!(response.is_positive());

    let messages = sim.client().smtp_messages().await.unwrap();
    assert_eq!(messages.len(), 1);
    let sent = &messages[0];
    assert_eq!(sent.seq, 1);
    assert_eq!(sent.auth_user.as_deref(), Some("apikey-user"));
    assert_eq!(sent.mail_from, "support+conv_1@switchboard.test");
    assert_eq!(sent.rcpt_to, ["alice@example.com", "bob@example.com"]);
    assert_eq!(sent.message_id.as_deref(), Some("<out-7f3a@switchboard.test>"));
    assert_eq!(sent.in_reply_to.as_deref(), Some("<in-1@example.com>"));
    assert_eq!(sent.reference_ids(), ["<root@example.com>", "<in-1@example.com>"]);
    assert_eq!(sent.subject.as_deref(), Some("Re: your order"));
    assert!(sent.to.as_deref().unwrap().contains("<alice@example.com>"));
    assert!(
        sent.from
            .as_deref()
            .unwrap()
            .contains("support+conv_1@switchboard.test")
    );
    assert_eq!(sent.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(sent.header("reply-to"), Some("support+conv_1@switchboard.test"));
    // lettre always ends the data with `\r\n.\r\n`, so a body ending in CRLF gains an empty line.
    assert_eq!(sent.body(), "Hello Alice,\r\nyour order shipped.\r\n\r\n");
    assert_eq!(sent.size, u64::try_from(sent.raw.len()).unwrap());
    let reply = response.first_line().unwrap_or_default().to_owned();
    assert!(
        reply.ends_with(&format!("queued as {}", sent.queue_id)),
        "{reply:?} vs {}",
        sent.queue_id
    );

    // AUTH LOGIN too; the log keeps the order.
    mailer(&sim, Some(("login-user", Mechanism::Login)))
        .send(email("second", "hi\r\n"))
        .await
        .expect("accepted");
    let messages = sim.client().smtp_messages().await.unwrap();
    let users: Vec<Option<&str>> = messages.iter().map(|m| m.auth_user.as_deref()).collect();
    assert_eq!(users, [Some("apikey-user"), Some("login-user")]);
    assert_eq!(sim.client().smtp_messages_since(1).await.unwrap().len(), 1);
    let stats = sim.client().stats().await.unwrap().smtp;
    assert_eq!(
        (stats.transactions, stats.accepted, stats.authentications),
        (2, 2, 2)
    );
    assert_eq!(stats.messages_recorded, 2);
}

#[tokio::test]
async fn a_451_greylisting_fault_is_transient_and_the_next_send_succeeds() {
    let sim = start_smtp().await;
    let queued = sim
        .client()
        .add_smtp_faults(&[SmtpFault::reply(451, "4.7.1", "greylisted", 2)])
        .await
        .unwrap();
    assert_eq!(queued, 2);
    let mailer = mailer(&sim, None);
    for attempt in 0..2 {
        let error = mailer
            .send(email("grey", "body\r\n"))
            .await
            .expect_err("greylisted");
        assert!(error.is_transient(), "attempt {attempt}: {error}");
        assert_eq!(
            error.status().map(|code| code.to_string()).as_deref(),
            Some("451")
        );
    }
    mailer
        .send(email("grey", "body\r\n"))
        .await
        .expect("accepted after the faults");

    let messages = sim.client().smtp_messages().await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].auth_user, None);
    let stats = sim.client().stats().await.unwrap().smtp;
    assert_eq!(
        (stats.transactions, stats.faults_injected, stats.accepted),
        (3, 2, 1)
    );
}

#[tokio::test]
async fn a_550_fault_posted_as_json_is_permanent_and_nothing_is_recorded() {
    let sim = start_smtp().await;
    let response = reqwest::Client::new()
        .post(format!("{}/_sim/smtp/faults", sim.base_url()))
        .json(&json!({"kind": "smtp_reply", "code": 550, "enhanced": "5.1.1", "text": "mailbox unavailable"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let error = mailer(&sim, None)
        .send(email("bounce", "body\r\n"))
        .await
        .expect_err("refused");
    assert!(error.is_permanent(), "{error}");
    assert!(error.to_string().contains("mailbox unavailable"), "{error}");
    assert!(sim.client().smtp_messages().await.unwrap().is_empty());

    // Invalid faults are refused; a list is accepted.
    for invalid in [
        json!({"kind": "smtp_reply", "code": 250}),
        json!({"kind": "smtp_reply", "code": 451, "enhanced": "5.7.1"}),
        json!({"kind": "smtp_reply", "code": 451, "text": "a\r\n250 ok"}),
        json!({"kind": "bounce"}),
    ] {
        let response = reqwest::Client::new()
            .post(format!("{}/_sim/smtp/faults", sim.base_url()))
            .json(&invalid)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{invalid}");
    }
    let response = reqwest::Client::new()
        .post(format!("{}/_sim/smtp/faults", sim.base_url()))
        .json(&json!([{"kind": "smtp_reply", "code": 421, "count": 2}, {"kind": "disconnect"}]))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["faults_queued"], 3);
}

#[tokio::test]
async fn dot_stuffed_lines_round_trip() {
    let sim = start_smtp().await;
    let body = "first\r\n.\r\n..two dots\r\n.leading dot\r\n. \r\nlast\r\n";
    mailer(&sim, None)
        .send(email("dots", body))
        .await
        .expect("accepted");
    let messages = sim.client().smtp_messages().await.unwrap();
    assert_eq!(
        messages[0].body(),
        format!("{body}\r\n"),
        "lettre adds CRLF before the terminator"
    );
}

#[tokio::test]
async fn a_disconnect_fault_closes_without_a_reply_and_reset_clears_everything() {
    let sim = start_smtp().await;
    sim.client()
        .add_smtp_faults(&[SmtpFault::new(SmtpFaultKind::Disconnect, 1)])
        .await
        .unwrap();
    let mailer = mailer(&sim, None);
    let error = mailer.send(email("cut", "x\r\n")).await.expect_err("no reply");
    assert!(!error.is_permanent(), "{error}");
    mailer.send(email("ok", "x\r\n")).await.expect("accepted");
    sim.client()
        .add_smtp_faults(&[SmtpFault::reply(451, "4.3.0", "later", 5)])
        .await
        .unwrap();
    let stats = sim.client().stats().await.unwrap().smtp;
    assert_eq!((stats.faults_injected, stats.accepted), (1, 1));

    sim.client().reset().await.unwrap();
    assert!(sim.client().smtp_messages().await.unwrap().is_empty());
    assert_eq!(sim.client().stats().await.unwrap().smtp.accepted, 0);
    // The queued faults went too.
    mailer.send(email("after", "x\r\n")).await.expect("accepted");
    let messages: Vec<SmtpMessage> = sim.client().smtp_messages().await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].seq, 1);
}

/// A raw SMTP connection.
struct Raw {
    conn: BufReader<TcpStream>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Self {
        let mut raw = Self {
            conn: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        };
        assert!(raw.reply().await.starts_with("220 "));
        raw
    }

    /// The next reply, its lines joined by `\n` (empty when the connection closed).
    async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(5), self.conn.read_line(&mut line))
                .await
                .expect("reply in time")
                .unwrap();
            if read == 0 {
                return lines.join("\n");
            }
            assert!(line.ends_with("\r\n"), "{line:?}");
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.trim_end().to_owned());
            if last {
                return lines.join("\n");
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.conn.get_mut().write_all(bytes).await.unwrap();
    }

    /// Sends `line` + CRLF and returns the reply.
    async fn send(&mut self, line: &str) -> String {
        self.write(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }
}

fn code(reply: &str) -> &str {
    reply.get(..3).unwrap_or(reply)
}

#[tokio::test]
async fn the_protocol_answers_sequencing_errors_starttls_and_auth_login() {
    let sim = start_smtp().await;
    let mut raw = Raw::connect(smtp_addr(&sim)).await;
    assert_eq!(code(&raw.send("MAIL FROM:<a@x.test>").await), "503");
    let ehlo = raw.send("EHLO client.test").await;
    for extension in ["250-SIZE 31457280", "250-8BITMIME", "250-AUTH PLAIN LOGIN"] {
        assert!(ehlo.contains(extension), "{ehlo}");
    }
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(raw.send("STARTTLS").await, "454 4.7.0 TLS not available");
    assert_eq!(code(&raw.send("AUTH CRAM-MD5").await), "504");
    assert_eq!(raw.send("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(raw.send("bWFyeQ==").await, "334 UGFzc3dvcmQ6");
    assert_eq!(code(&raw.send("c2VjcmV0").await), "235");
    assert_eq!(code(&raw.send("AUTH PLAIN AGEAYg==").await), "503");
    assert_eq!(code(&raw.send("RCPT TO:<b@x.test>").await), "503");
    assert_eq!(code(&raw.send("DATA").await), "503");
    assert_eq!(
        code(&raw.send("MAIL FROM:<a@x.test> SIZE=999999999999").await),
        "552"
    );
    assert_eq!(code(&raw.send("MAIL FROM:<a@x.test> XFOO=1").await), "555");
    assert_eq!(code(&raw.send("MAIL FROM:a@x.test").await), "250");
    assert_eq!(code(&raw.send("MAIL FROM:<a@x.test>").await), "503");
    assert_eq!(code(&raw.send("RSET").await), "250");
    assert_eq!(code(&raw.send("mail from:<> BODY=8BITMIME").await), "250");
    assert_eq!(code(&raw.send("DATA").await), "554");
    assert_eq!(code(&raw.send("RCPT TO:<>").await), "501");
    assert_eq!(code(&raw.send("RCPT TO:<b@x.test>").await), "250");
    assert_eq!(code(&raw.send("RCPT TO:<c@x.test>").await), "250");
    assert_eq!(
        code(&raw.send(&format!("NOOP {}", "x".repeat(3000))).await),
        "500"
    );
    assert_eq!(code(&raw.send("FROB").await), "500");
    assert_eq!(code(&raw.send("NOOP").await), "250");
    assert_eq!(code(&raw.send("DATA").await), "354");
    raw.write(b"Subject: bounce\r\nReferences: <a@x>\r\n <b@x>\r\n\r\n..hidden\r\n.\r\n")
        .await;
    let queued = raw.reply().await;
    assert!(queued.starts_with("250 2.0.0 Ok: queued as "), "{queued}");
    assert_eq!(raw.send("QUIT").await, "221 2.0.0 Bye");
    assert_eq!(raw.reply().await, "", "closed after QUIT");

    let messages = sim.client().smtp_messages().await.unwrap();
    let message = &messages[0];
    assert_eq!(message.helo, "client.test");
    assert_eq!(message.auth_user.as_deref(), Some("mary"));
    assert_eq!(message.mail_from, "");
    assert_eq!(message.rcpt_to, ["b@x.test", "c@x.test"]);
    assert_eq!(message.references.as_deref(), Some("<a@x> <b@x>"));
    assert_eq!(message.body(), ".hidden\r\n");
    assert!(queued.ends_with(&message.queue_id));
}

#[tokio::test]
async fn oversized_messages_and_long_lines_get_5xx_and_the_session_goes_on() {
    let options = SimulatorOptions {
        smtp_max_message_size: 1024,
        ..SimulatorOptions::default()
    };
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start_with_listeners(http, Some(smtp), options, Vec::new())
        .await
        .unwrap();
    let mut raw = Raw::connect(smtp_addr(&sim)).await;
    assert!(raw.send("EHLO c").await.contains("250-SIZE 1024"));
    let line = format!("{}\r\n", "y".repeat(98));
    for (data, expected) in [
        (line.repeat(20), "552 5.3.4"),
        (format!("Subject: x\r\n\r\n{}\r\n", "z".repeat(1200)), "500 5.5.2"),
        (line.repeat(5), "250 2.0.0"),
    ] {
        assert_eq!(code(&raw.send("MAIL FROM:<a@x.test>").await), "250");
        assert_eq!(code(&raw.send("RCPT TO:<b@x.test>").await), "250");
        assert_eq!(code(&raw.send("DATA").await), "354");
        raw.write(data.as_bytes()).await;
        raw.write(b".\r\n").await;
        let reply = raw.reply().await;
        assert!(reply.starts_with(expected), "{reply}");
    }
    let stats = sim.client().stats().await.unwrap().smtp;
    assert_eq!((stats.transactions, stats.rejected, stats.accepted), (3, 2, 1));
    assert_eq!(sim.client().smtp_messages().await.unwrap()[0].size, 500);
}

#[tokio::test]
async fn garbage_is_refused_without_panicking_and_too_many_errors_close_the_session() {
    let sim = start_smtp().await;
    let mut raw = Raw::connect(smtp_addr(&sim)).await;
    raw.write(b"\x00\xff\xfe garbage\r\n").await;
    assert_eq!(code(&raw.reply().await), "500");
    assert_eq!(code(&raw.send("EHLO").await), "501");
    assert_eq!(code(&raw.send("EHLO c").await), "250");
    assert_eq!(code(&raw.send("AUTH PLAIN !!!notbase64").await), "501");
    assert_eq!(code(&raw.send("AUTH PLAIN bm9udWxz").await), "501");
    assert_eq!(raw.send("AUTH PLAIN").await, "334");
    assert_eq!(code(&raw.send("*").await), "501");
    // Five refusals so far; the twentieth closes the session.
    for _ in 0..15 {
        assert_eq!(code(&raw.send("\u{1F600}").await), "500");
    }
    assert!(raw.reply().await.starts_with("421 4.7.0"));
    assert_eq!(raw.reply().await, "", "closed");
    // The sink still serves.
    let mut raw = Raw::connect(smtp_addr(&sim)).await;
    assert_eq!(code(&raw.send("HELO c").await), "250");
}

#[tokio::test]
async fn shutdown_answers_open_sessions_with_421() {
    let sim = start_smtp().await;
    let mut raw = Raw::connect(smtp_addr(&sim)).await;
    assert_eq!(code(&raw.send("HELO c").await), "250");
    let stopping = tokio::spawn(sim.shutdown());
    assert!(raw.reply().await.starts_with("421 4.3.2"));
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_plain_http_simulator_has_no_smtp_sink() {
    let sim = Simulator::start("127.0.0.1:0").await.unwrap();
    assert_eq!(sim.smtp_addr(), None);
    assert_eq!(sim.client().stats().await.unwrap().smtp.connections, 0);
}

#[tokio::test]
async fn a_421_fault_answers_then_closes_the_connection() {
    let sim = start_smtp().await;
    sim.client()
        .add_smtp_faults(&[SmtpFault::reply(421, "4.3.2", "going down", 1)])
        .await
        .unwrap();
    let mut raw = Raw::connect(smtp_addr(&sim)).await;
    assert_eq!(code(&raw.send("HELO c").await), "250");
    assert_eq!(code(&raw.send("MAIL FROM:<a@x.test>").await), "250");
    assert_eq!(code(&raw.send("RCPT TO:<b@x.test>").await), "250");
    assert_eq!(code(&raw.send("DATA").await), "354");
    assert_eq!(
        raw.send("Subject: x\r\n\r\nhi\r\n.").await,
        "421 4.3.2 going down"
    );
    assert_eq!(raw.reply().await, "", "closed after 421");
}
