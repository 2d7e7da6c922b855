//! Provider webhooks through the real binary: signed requests of every channel become
//! normalized events on the inbound queue, carrying the caller's trace; everything else gets
//! the right refusal and nothing on the bus.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_e2e::authorized;
use switchboard_e2e::webhooks::{
    EMAIL, INSTAGRAM, MESSENGER, PUBLIC_BASE_URL, SMS, TELEGRAM, WHATSAPP, WHATSAPP_VERIFY_TOKEN,
    WebhookSwitchboard, whatsapp_text,
};
use switchboard_proto::events::v1::envelope::Payload;
use switchboard_proto::events::v1::inbound_event::Kind;
use switchboard_proto::ingress::v1 as ingress;
use switchboard_proto::ingress::v1::ingress_admin_service_client::IngressAdminServiceClient;

fn meta_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        switchboard_channels::meta::hmac_sha256_hex(secret.as_bytes(), body)
    )
}

fn percent_encode(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => encoded.push(byte as char),
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// Sends a chunked WhatsApp webhook of `size` bytes over raw TCP; returns the status line.
async fn chunked_post_status(base: &str, account: &str, signature: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /webhooks/whatsapp/{account} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\nx-hub-signature-256: {signature}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 8192];
    for _ in 0..size / chunk.len() {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if stream.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Posts a signed WhatsApp message `id` as a sentinel: ingress answers 2xx only once its event
/// is on the (single, in-order) inbound queue, so an event the requests before it made is
/// ahead of it there.
async fn post_sentinel(hooks: &WebhookSwitchboard, id: &str) {
    let body = whatsapp_text(id, "16505550000", "sentinel");
    assert_eq!(hooks.post_whatsapp(&body, None).await.status(), 200);
}

/// The provider message id of an inbound message event.
fn provider_message_id(read: &switchboard_e2e::webhooks::ReadEvent) -> Option<&str> {
    match &read.envelope.payload {
        Some(Payload::Inbound(inbound)) => match &inbound.kind {
            Some(Kind::Message(message)) => Some(message.provider_message_id.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// Reads the next event of the inbound queue and asserts it is the sentinel `id` (so nothing
/// was queued between what the test read before and the sentinel), then that nothing follows.
async fn assert_next_is_sentinel(hooks: &WebhookSwitchboard, id: &str, what: &str) {
    let next = hooks.read_events(1, Duration::from_secs(15)).await;
    assert_eq!(provider_message_id(&next[0]), Some(id), "{what}: {next:#?}");
    assert_eq!(hooks.queued().await, 0, "{what}");
}

#[tokio::test]
async fn a_signed_webhook_of_every_channel_reaches_the_bus_normalized_with_its_trace() {
    let hooks = WebhookSwitchboard::start(&[]).await;
    let trace = |n: u8| format!("4bf92f3577b34da6a3ce929d0e0e47{n:02x}");
    let traceparent = |n: u8| format!("00-{}-00f067aa0ba902b7-01", trace(n));

    // WhatsApp: non-ASCII text.
    let body = whatsapp_text("wamid.E2E-1", "16505551234", "Olá, tudo bem? 👋");
    let response = hooks.post_whatsapp(&body, Some(&traceparent(1))).await;
    assert_eq!(response.status(), 200);

    // Messenger and Instagram.
    for (n, channel, (account, secret, external_id), object, mid) in [
        (2u8, "messenger", MESSENGER, "page", "m_E2E"),
        (3, "instagram", INSTAGRAM, "instagram", "aWdfE2E"),
    ] {
        let body = format!(
            r#"{{"object":"{object}","entry":[{{"id":"{external_id}","time":1718000000123,"messaging":[{{"sender":{{"id":"6789012345678901"}},"recipient":{{"id":"{external_id}"}},"timestamp":1718000000100,"message":{{"mid":"{mid}","text":"Track my order"}}}}]}}]}}"#
        );
        let response = hooks
            .http
            .post(hooks.url(channel, account))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", meta_signature(secret, body.as_bytes()))
            .header("traceparent", traceparent(n))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{channel}");
    }

    // Telegram.
    let body = r#"{"update_id":712345678,"message":{"message_id":4821,"from":{"id":123456789,"is_bot":false,"first_name":"Ana","language_code":"pt-br"},"chat":{"id":123456789,"first_name":"Ana","type":"private"},"date":1718002000,"text":"Olá, preciso de ajuda"}}"#;
    let response = hooks
        .http
        .post(hooks.url("telegram", TELEGRAM.0))
        .header("content-type", "application/json")
        .header("x-telegram-bot-api-secret-token", TELEGRAM.1)
        .header("traceparent", traceparent(4))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Twilio SMS: signed over the public URL (not the address the test connects to).
    let form = "ToCountry=US&SmsMessageSid=SM11111111111111111111111111111111&NumMedia=0&SmsSid=SM11111111111111111111111111111111&SmsStatus=received&Body=Hello+from+SMS&To=%2B14155550100&NumSegments=1&MessageSid=SM11111111111111111111111111111111&AccountSid=AC33333333333333333333333333333333&From=%2B14155550123&ApiVersion=2010-04-01";
    let params = switchboard_channels::twilio::parse_form(form.as_bytes()).unwrap();
    let public_url = format!("{PUBLIC_BASE_URL}/webhooks/sms/{}", SMS.0);
    let signature = switchboard_channels::twilio::signature(SMS.1.as_bytes(), &public_url, &params);
    let response = hooks
        .http
        .post(hooks.url("sms", SMS.0))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .header("traceparent", traceparent(5))
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.text().await.unwrap().contains("<Response></Response>"),
        "Twilio gets empty TwiML"
    );

    // E-mail through Mailgun.
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let token = "e2e-mailgun-token-1";
    let mailgun_signature = switchboard_channels::meta::hmac_sha256_hex(
        EMAIL.1.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    );
    let headers = r#"[["Message-Id","<mg-e2e-1@example.com>"]]"#;
    let form = format!(
        "timestamp={timestamp}&token={token}&signature={mailgun_signature}&recipient=support%40acme.test&from=Jane+Doe+%3Cjane%40example.com%3E&subject=Hello&body-plain=Hi+there&stripped-text=Hi+there&message-headers={}",
        percent_encode(headers)
    );
    let post_mail = || {
        hooks
            .http
            .post(hooks.url("email", EMAIL.0))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("traceparent", traceparent(6))
            .body(form.clone())
            .send()
    };
    assert_eq!(post_mail().await.unwrap().status(), 200);
    // The same Mailgun delivery again (a replay): 2xx, and no second event.
    assert_eq!(post_mail().await.unwrap().status(), 200);
    post_sentinel(&hooks, "wamid.E2E-SENTINEL").await;

    let events = hooks.read_events(6, Duration::from_secs(15)).await;
    for (n, (channel, account, kind_name)) in [
        ("whatsapp", WHATSAPP.0, "message_received"),
        ("messenger", MESSENGER.0, "message_received"),
        ("instagram", INSTAGRAM.0, "message_received"),
        ("telegram", TELEGRAM.0, "message_received"),
        ("sms", SMS.0, "message_received"),
        ("email", EMAIL.0, "message_received"),
    ]
    .into_iter()
    .enumerate()
    {
        let event_type = format!("inbound.{channel}.{kind_name}");
        let read = events
            .iter()
            .find(|read| read.envelope.event_type == event_type)
            .unwrap_or_else(|| panic!("no {event_type} among {events:#?}"));
        assert_eq!(read.message_type, event_type);
        let envelope = &read.envelope;
        assert_eq!(envelope.workspace_id, "ws_e2e-hooks");
        assert!(envelope.event_id.starts_with("evt_"), "{envelope:?}");
        let Some(Payload::Inbound(inbound)) = &envelope.payload else {
            panic!("{envelope:?}")
        };
        assert_eq!(inbound.channel_account_id, account);
        let sender = inbound.sender.as_ref().expect("sender travels");
        assert_eq!(
            envelope.partition_key,
            format!("{account}:{}", sender.channel_user_id)
        );
        assert!(inbound.received_at.is_some());
        let Some(Kind::Message(message)) = &inbound.kind else {
            panic!("{inbound:?}")
        };
        assert!(!message.provider_message_id.is_empty(), "{message:?}");
        let trace_id = trace(u8::try_from(n + 1).unwrap());
        assert!(
            read.headers
                .get("traceparent")
                .is_some_and(|value| value.contains(&trace_id)),
            "{channel}: the bus message continues the webhook's trace {trace_id}: {:?}",
            read.headers
        );
    }
    let whatsapp = events
        .iter()
        .find(|read| read.envelope.event_type.starts_with("inbound.whatsapp"))
        .unwrap();
    let Some(Payload::Inbound(inbound)) = &whatsapp.envelope.payload else {
        panic!()
    };
    assert_eq!(inbound.sender.as_ref().unwrap().display_name, "Sheena Nelson");
    assert_eq!(inbound.sender.as_ref().unwrap().phone_e164, "+16505551234");

    assert_next_is_sentinel(
        &hooks,
        "wamid.E2E-SENTINEL",
        "the replayed Mailgun delivery made no event",
    )
    .await;
    assert_eq!(
        hooks
            .metric("switchboard_ingress_webhooks_total{channel=\"email\",outcome=\"replayed\"}")
            .await,
        1.0
    );
    hooks.cleanup().await;
}

#[tokio::test]
async fn refused_webhooks_get_the_right_status_and_put_nothing_on_the_bus() {
    let hooks = WebhookSwitchboard::start(&[("SWITCHBOARD__INGRESS__MAX_BODY_BYTES", "65536")]).await;
    let body = whatsapp_text("wamid.E2E-R", "16505551234", "hello");
    let url = hooks.url("whatsapp", WHATSAPP.0);
    let post = |headers: Vec<(&'static str, String)>, body: Vec<u8>, url: String| {
        let mut request = hooks.http.post(url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move { request.send().await.unwrap() }
    };
    let good = meta_signature(WHATSAPP.1, &body);

    // Signatures: missing, wrong, one flipped bit, another tenant's secret, duplicated headers.
    assert_eq!(post(vec![], body.clone(), url.clone()).await.status(), 401);
    let mut flipped = body.clone();
    flipped[40] ^= 1;
    assert_eq!(
        post(vec![("x-hub-signature-256", good.clone())], flipped, url.clone())
            .await
            .status(),
        401
    );
    assert_eq!(
        post(
            vec![("x-hub-signature-256", meta_signature(MESSENGER.1, &body))],
            body.clone(),
            url.clone()
        )
        .await
        .status(),
        401
    );
    let duplicated = post(
        vec![
            ("x-hub-signature-256", good.clone()),
            ("x-hub-signature-256", good.clone()),
        ],
        body.clone(),
        url.clone(),
    )
    .await;
    assert_eq!(duplicated.status(), 401);
    assert!(duplicated.text().await.unwrap().contains("signature"));

    // Unknown, disabled, malformed account ids and a channel the account does not belong to.
    for wrong in [
        hooks.url("whatsapp", "chacc_nobody"),
        hooks.url("whatsapp", "chacc_e2e-disabled"),
        hooks.url("whatsapp", "not-an-id"),
        hooks.url("messenger", WHATSAPP.0),
        hooks.url("fax", WHATSAPP.0),
    ] {
        let response = post(
            vec![("x-hub-signature-256", good.clone())],
            body.clone(),
            wrong.clone(),
        )
        .await;
        assert_eq!(response.status(), 404, "{wrong}");
    }

    // Too large: declared, and streamed without a length.
    let huge = vec![b' '; 70_000];
    assert_eq!(
        post(
            vec![("x-hub-signature-256", good.clone())],
            huge.clone(),
            url.clone()
        )
        .await
        .status(),
        413
    );
    // Chunked, no length: the server stops reading at the cap and answers 413 (over raw TCP,
    // since the server may close while an HTTP client is still sending).
    let status_line = chunked_post_status(&hooks.switchboard.http, WHATSAPP.0, &good, 160 * 1024).await;
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

    // Handshake: right token echoes the challenge as text; wrong token 403.
    let handshake = |token: &str| {
        hooks
            .http
            .get(format!(
                "{url}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
            ))
            .send()
    };
    let accepted = handshake(WHATSAPP_VERIFY_TOKEN).await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(
        accepted.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(accepted.text().await.unwrap(), "1158201444");
    assert_eq!(handshake("wrong").await.unwrap().status(), 403);

    // Validly signed but truncated: 2xx and a dead-letter record with the raw body.
    let truncated = body[..body.len() / 2].to_vec();
    let response = post(
        vec![
            ("x-hub-signature-256", meta_signature(WHATSAPP.1, &truncated)),
            ("content-type", "application/json".to_owned()),
        ],
        truncated.clone(),
        url.clone(),
    )
    .await;
    assert_eq!(response.status(), 200);
    // Validly signed but nested 10,000 deep: 400 before any parser, never a panic.
    let deep = format!(
        r#"{{"object":"whatsapp_business_account","padding":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    )
    .into_bytes();
    let response = post(
        vec![("x-hub-signature-256", meta_signature(WHATSAPP.1, &deep))],
        deep,
        url.clone(),
    )
    .await;
    assert_eq!(response.status(), 400);

    let client = hooks.database.connect().await;
    let rows = client
        .query(
            "SELECT channel, channel_account_id, workspace_id, reason, body FROM ingress.dead_letters ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        1,
        "the unparseable payload is kept (the nesting bomb is refused)"
    );
    let (channel, account, workspace, reason, stored): (String, String, String, String, Vec<u8>) = (
        rows[0].get(0),
        rows[0].get(1),
        rows[0].get(2),
        rows[0].get(3),
        rows[0].get(4),
    );
    assert_eq!(
        (channel.as_str(), account.as_str(), workspace.as_str()),
        ("whatsapp", WHATSAPP.0, "ws_e2e-hooks")
    );
    assert!(reason.contains("JSON"), "{reason}");
    assert_eq!(stored, truncated, "the raw body is kept byte for byte");

    // Operators read them through the ingress admin API, scoped like every other API.
    let mut admin = IngressAdminServiceClient::new(hooks.switchboard.channel().await);
    let listed = admin
        .list_dead_letters(authorized(
            ingress::ListDeadLettersRequest::default(),
            switchboard_e2e::BOOTSTRAP_TOKEN,
        ))
        .await
        .unwrap()
        .into_inner();
    let [dead_letter] = listed.dead_letters.as_slice() else {
        panic!("{listed:?}")
    };
    assert_eq!(
        (
            dead_letter.channel_account_id.as_str(),
            dead_letter.workspace_id.as_str(),
            dead_letter.content_type.as_str()
        ),
        (WHATSAPP.0, "ws_e2e-hooks", "application/json")
    );
    assert_eq!(dead_letter.body, truncated);
    assert!(dead_letter.received_at.is_some());
    let other_workspace = crate::auth::workspace_with_key(&hooks.switchboard, "ws_e2e-other").await;
    let theirs = admin
        .list_dead_letters(authorized(
            ingress::ListDeadLettersRequest::default(),
            &other_workspace,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        theirs.dead_letters.is_empty(),
        "another workspace sees none of them"
    );
    let status = admin
        .list_dead_letters(authorized(
            ingress::ListDeadLettersRequest {
                workspace_id: "ws_e2e-hooks".to_owned(),
                ..Default::default()
            },
            &other_workspace,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);

    // A foreign phone_number_id (another tenant's number) is ignored with 2xx.
    let foreign = String::from_utf8(body.clone())
        .unwrap()
        .replace(WHATSAPP.2, "999999999999999")
        .into_bytes();
    let response = post(
        vec![("x-hub-signature-256", meta_signature(WHATSAPP.1, &foreign))],
        foreign,
        url.clone(),
    )
    .await;
    assert_eq!(response.status(), 200);

    post_sentinel(&hooks, "wamid.E2E-R-SENTINEL").await;
    assert_next_is_sentinel(&hooks, "wamid.E2E-R-SENTINEL", "nothing refused reached the bus").await;
    for (outcome, expected) in [
        ("missing_signature", 1.0),
        ("bad_signature", 2.0),
        ("ambiguous_signature", 1.0),
        ("unknown_account", 3.0),
        ("too_large", 2.0),
        ("dead_lettered", 1.0),
        ("too_deep", 1.0),
        ("ignored", 1.0),
        ("handshake", 1.0),
        ("handshake_refused", 1.0),
    ] {
        assert_eq!(
            hooks
                .metric(&format!(
                    "switchboard_ingress_webhooks_total{{channel=\"whatsapp\",outcome=\"{outcome}\"}}"
                ))
                .await,
            expected,
            "{outcome}"
        );
    }
    hooks.cleanup().await;
}

/// A line-oriented SMTP client for the tests.
struct SmtpClient {
    reader: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl SmtpClient {
    async fn connect(address: &str) -> (Self, String) {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (reader, writer) = stream.into_split();
        let mut client = Self {
            reader: tokio::io::BufReader::new(reader),
            writer,
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// Reads one (possibly multi-line) reply.
    async fn reply(&mut self) -> String {
        use tokio::io::AsyncBufReadExt;
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).await.unwrap();
            reply.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return reply;
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        use tokio::io::AsyncWriteExt;
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    async fn raw(&mut self, bytes: &[u8]) -> String {
        use tokio::io::AsyncWriteExt;
        self.writer.write_all(bytes).await.unwrap();
        self.reply().await
    }
}

#[tokio::test]
async fn the_smtp_listener_takes_mail_for_known_recipients_only_and_bounds_its_size() {
    let hooks = WebhookSwitchboard::start(&[("SWITCHBOARD__INGRESS__MAX_EMAIL_BODY_BYTES", "8192")]).await;
    let address = hooks.switchboard.listener("smtp");
    let (mut smtp, greeting) = SmtpClient::connect(&address).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert!(
        smtp.command("MAIL FROM:<jane@example.com>")
            .await
            .starts_with("503")
    );
    let ehlo = smtp.command("EHLO client.example.com").await;
    assert!(ehlo.contains("250-SIZE 8192"), "{ehlo}");
    assert!(
        smtp.command("MAIL FROM:<jane@example.com> SIZE=100000")
            .await
            .starts_with("552"),
        "a declared size over the limit is refused at MAIL"
    );
    assert!(
        smtp.command("MAIL FROM:<jane@example.com>")
            .await
            .starts_with("250")
    );
    assert!(
        smtp.command("RCPT TO:<nobody@acme.test>")
            .await
            .starts_with("550"),
        "unknown recipients are refused at RCPT"
    );
    assert!(
        smtp.command("RCPT TO:<Support@Acme.TEST>")
            .await
            .starts_with("250")
    );
    assert!(smtp.command("DATA").await.starts_with("354"));
    let message = "From: Jane Doe <jane@example.com>\r\n\
To: support@acme.test\r\n\
Subject: =?UTF-8?Q?Ol=C3=A1?=\r\n\
Message-ID: <smtp-e2e-1@example.com>\r\n\
Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello over SMTP\r\n\
..a line that starts with a dot\r\n\
.\r\n";
    let accepted = smtp.raw(message.as_bytes()).await;
    assert!(accepted.starts_with("250"), "{accepted}");

    // Too large: refused after DATA, and the session goes on.
    assert!(
        smtp.command("MAIL FROM:<jane@example.com>")
            .await
            .starts_with("250")
    );
    assert!(
        smtp.command("RCPT TO:<support@acme.test>")
            .await
            .starts_with("250")
    );
    assert!(smtp.command("DATA").await.starts_with("354"));
    let mut big = String::from("Subject: big\r\n\r\n");
    for _ in 0..200 {
        big.push_str(&"x".repeat(76));
        big.push_str("\r\n");
    }
    big.push_str(".\r\n");
    assert!(smtp.raw(big.as_bytes()).await.starts_with("552"));
    assert!(smtp.command("NOOP").await.starts_with("250"));
    assert!(smtp.command("QUIT").await.starts_with("221"));

    let events = hooks.read_events(1, Duration::from_secs(10)).await;
    let envelope = &events[0].envelope;
    assert_eq!(envelope.event_type, "inbound.email.message_received");
    let Some(Payload::Inbound(inbound)) = &envelope.payload else {
        panic!("{envelope:?}")
    };
    assert_eq!(inbound.channel_account_id, EMAIL.0);
    assert_eq!(inbound.sender.as_ref().unwrap().email, "jane@example.com");
    let Some(Kind::Message(message)) = &inbound.kind else {
        panic!("{inbound:?}")
    };
    assert_eq!(message.provider_message_id, "smtp-e2e-1@example.com");
    let text = format!("{:?}", message.parts);
    assert!(text.contains("Olá"), "RFC 2047 subject decoded: {text}");
    assert!(
        text.contains("\\n.a line that starts with a dot"),
        "dot-stuffing undone: {text}"
    );
    post_sentinel(&hooks, "wamid.E2E-SMTP-SENTINEL").await;
    assert_next_is_sentinel(
        &hooks,
        "wamid.E2E-SMTP-SENTINEL",
        "the refused message made no event",
    )
    .await;
    hooks.cleanup().await;
}

#[tokio::test]
async fn sendgrid_and_postmark_parse_posts_need_the_accounts_basic_auth() {
    use switchboard_e2e::webhooks::{SENDGRID_ACCOUNT, SENDGRID_PASSWORD};
    let hooks = WebhookSwitchboard::start(&[]).await;
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/channels/tests/fixtures/email/sendgrid_parsed.multipart"
    ))
    .unwrap();
    let post = |password: &str| {
        hooks
            .http
            .post(hooks.url("email", SENDGRID_ACCOUNT))
            .basic_auth("sendgrid", Some(password))
            .header("content-type", "multipart/form-data; boundary=xYzZY")
            .body(body.clone())
            .send()
    };
    assert_eq!(post("wrong").await.unwrap().status(), 401);
    assert_eq!(post(SENDGRID_PASSWORD).await.unwrap().status(), 200);
    let events = hooks.read_events(1, Duration::from_secs(10)).await;
    let Some(Payload::Inbound(inbound)) = &events[0].envelope.payload else {
        panic!("{events:?}")
    };
    assert_eq!(inbound.channel_account_id, SENDGRID_ACCOUNT);
    let Some(Kind::Message(message)) = &inbound.kind else {
        panic!("{inbound:?}")
    };
    assert_eq!(message.provider_message_id, "CAGRsg1@mail.example.com");
    assert_eq!(message.parts.len(), 2, "text and the PDF attachment");

    // Postmark: JSON, Basic auth credentials in the webhook URL.
    use switchboard_e2e::webhooks::{POSTMARK_ACCOUNT, POSTMARK_PASSWORD};
    let postmark = r#"{"FromName":"Jane","MessageStream":"inbound","From":"jane@example.com","FromFull":{"Email":"jane@example.com","Name":"Jane Doe"},"To":"inbound@acme.test","Subject":"Olá","MessageID":"4ab1c7f0-postmark","Date":"Thu, 5 Apr 2012 16:59:01 +0200","TextBody":"Obrigada!","Headers":[{"Name":"Message-ID","Value":"<pm-e2e@mail.example.com>"}],"Attachments":[]}"#;
    let post_postmark = |password: &str| {
        hooks
            .http
            .post(hooks.url("email", POSTMARK_ACCOUNT))
            .basic_auth("postmark", Some(password))
            .header("content-type", "application/json")
            .body(postmark)
            .send()
    };
    assert_eq!(post_postmark("wrong").await.unwrap().status(), 401);
    assert_eq!(post_postmark(POSTMARK_PASSWORD).await.unwrap().status(), 200);
    let events = hooks.read_events(1, Duration::from_secs(10)).await;
    let Some(Payload::Inbound(inbound)) = &events[0].envelope.payload else {
        panic!("{events:?}")
    };
    assert_eq!(inbound.channel_account_id, POSTMARK_ACCOUNT);
    let Some(Kind::Message(message)) = &inbound.kind else {
        panic!("{inbound:?}")
    };
    assert_eq!(message.provider_message_id, "pm-e2e@mail.example.com");
    hooks.cleanup().await;
}

#[tokio::test]
async fn a_per_channel_ingress_process_serves_its_channel_only_and_finds_accounts_over_grpc() {
    let hooks = WebhookSwitchboard::start(&[]).await;
    let telegram = hooks.start_component("ingress-telegram").await;
    let readyz = telegram.admin_text("/readyz").await;
    assert!(readyz.contains("webhook hand-over: ok"), "{readyz}");

    let url = |channel: &str, account: &str| format!("{}/webhooks/{channel}/{account}", telegram.http);
    let body = r#"{"update_id":900001,"message":{"message_id":7,"from":{"id":42,"is_bot":false,"first_name":"Ana"},"chat":{"id":42,"type":"private"},"date":1718002000,"text":"oi"}}"#;
    let response = hooks
        .http
        .post(url("telegram", TELEGRAM.0))
        .header("x-telegram-bot-api-secret-token", TELEGRAM.1)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let other = hooks
        .http
        .post(url("whatsapp", WHATSAPP.0))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "ingress-telegram serves no WhatsApp webhooks"
    );

    let events = hooks.read_events(1, Duration::from_secs(10)).await;
    assert_eq!(events[0].envelope.event_type, "inbound.telegram.message_received");

    // Its admin API takes API keys, checked by tenancy in the other process.
    let key = crate::auth::workspace_with_key(&hooks.switchboard, "ws_e2e-remote").await;
    let mut admin = IngressAdminServiceClient::new(telegram.channel().await);
    let listed = admin
        .list_dead_letters(authorized(ingress::ListDeadLettersRequest::default(), &key))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.dead_letters.is_empty());
    let refused = admin
        .list_dead_letters(authorized(
            ingress::ListDeadLettersRequest::default(),
            "sbk_0123456789abcdef0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    drop(telegram);
    hooks.cleanup().await;
}

#[tokio::test]
async fn a_batch_yields_one_event_each_in_order_and_a_retried_webhook_keeps_its_event_ids() {
    let hooks = WebhookSwitchboard::start(&[]).await;
    let batch = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/channels/tests/fixtures/whatsapp/batch_every_type.json"
    ))
    .unwrap();
    assert_eq!(hooks.post_whatsapp(&batch, None).await.status(), 200);
    // 18 messages and 4 statuses, all confirmed before the answer.
    assert_eq!(
        hooks
            .metric("switchboard_ingress_events_total{channel=\"whatsapp\",outcome=\"published\"}")
            .await,
        22.0
    );
    let events = hooks.read_events(22, Duration::from_secs(10)).await;
    let statuses = events
        .iter()
        .filter(|read| read.envelope.event_type == "inbound.whatsapp.status_received")
        .count();
    assert_eq!(statuses, 4);
    // In payload order: the same sequence the channel parser produces for this body.
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        meta_signature(WHATSAPP.1, &batch).parse().unwrap(),
    );
    let verified =
        switchboard_channels::meta::verify_signature(&headers, &batch, WHATSAPP.1.as_bytes()).unwrap();
    let expected = switchboard_channels::whatsapp::normalize(
        verified,
        &switchboard_channels::NormalizeContext {
            channel_account_id: switchboard_domain::ChannelAccountId::parse(WHATSAPP.0).unwrap(),
            external_id: WHATSAPP.2.to_owned(),
            received_at: SystemTime::now(),
        },
    )
    .unwrap();
    let kinds = |events: Vec<Option<Kind>>| -> Vec<String> {
        events
            .into_iter()
            .map(|kind| match kind {
                Some(Kind::Message(message)) => message.provider_message_id,
                Some(Kind::Status(status)) => format!("{}:{}", status.provider_message_id, status.status),
                other => format!("{other:?}"),
            })
            .collect()
    };
    let on_the_bus = kinds(
        events
            .iter()
            .map(|read| match &read.envelope.payload {
                Some(Payload::Inbound(inbound)) => inbound.kind.clone(),
                _ => None,
            })
            .collect(),
    );
    assert_eq!(
        on_the_bus,
        kinds(expected.events.into_iter().map(|event| event.kind).collect())
    );

    // The provider retries the same webhook: the events carry the same ids, so consumers
    // (idempotent on event ids) give the retry no second effect.
    let body = whatsapp_text("wamid.RETRIED", "16505551234", "once");
    assert_eq!(hooks.post_whatsapp(&body, None).await.status(), 200);
    assert_eq!(hooks.post_whatsapp(&body, None).await.status(), 200);
    let retried = hooks.read_events(2, Duration::from_secs(10)).await;
    assert_eq!(retried[0].envelope.event_id, retried[1].envelope.event_id);
    assert_ne!(retried[0].envelope.event_id, events[0].envelope.event_id);
    hooks.cleanup().await;
}

#[tokio::test]
async fn a_sender_that_stalls_mid_body_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hooks = WebhookSwitchboard::start(&[("SWITCHBOARD__INGRESS__BODY_READ_TIMEOUT", "1s")]).await;
    let address = hooks.switchboard.http.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /webhooks/whatsapp/{} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\nx-hub-signature-256: sha256=00\r\ncontent-length: 1000\r\n\r\n{{\"object\":",
        WHATSAPP.0
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut response))
        .await
        .expect("answered before the test gave up")
        .unwrap();
    let text = String::from_utf8_lossy(&response[..read]).into_owned();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    hooks.cleanup().await;
}

#[tokio::test]
async fn smtp_sessions_past_the_limit_are_told_to_come_back_later() {
    let hooks = WebhookSwitchboard::start(&[("SWITCHBOARD__INGRESS__SMTP_MAX_SESSIONS", "1")]).await;
    let address = hooks.switchboard.listener("smtp");
    let (mut first, greeting) = SmtpClient::connect(&address).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let (_, refused) = SmtpClient::connect(&address).await;
    assert!(refused.starts_with("421 "), "{refused}");
    assert!(first.command("QUIT").await.starts_with("221"));
    drop(first);
    // The slot is free again once the first session ended.
    let greeting = switchboard_testkit::eventually(Duration::from_secs(5), "a free smtp slot", || {
        let address = address.clone();
        async move {
            let (_, greeting) = SmtpClient::connect(&address).await;
            greeting.starts_with("220 ").then_some(greeting)
        }
    })
    .await;
    assert!(greeting.starts_with("220 "));
    hooks.cleanup().await;
}
