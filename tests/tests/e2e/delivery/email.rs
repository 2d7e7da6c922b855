//! E-mail over SMTP: replies thread under the customer's message; SMTP codes decide retry or
//! failure.

use super::*;

/// Posts a Mailgun inbound e-mail from jane@example.com (`headers` is Mailgun's JSON list).
async fn mailgun_inbound(rig: &Rig, token: &str, subject: &str, headers: &str) {
    let timestamp = Utc::now().timestamp().to_string();
    let signature = switchboard_channels::meta::hmac_sha256_hex(
        EMAIL.1.as_bytes(),
        format!("{timestamp}{token}").as_bytes(),
    );
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|byte| match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (byte as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    };
    let form = format!(
        "timestamp={timestamp}&token={token}&signature={signature}&recipient=support%40acme.test&from={}&subject={}&body-plain=Hi&stripped-text=Hi&message-headers={}",
        encode("Jane Doe <jane@example.com>"),
        encode(subject),
        encode(headers)
    );
    let response = rig
        .hooks
        .http
        .post(rig.hooks.url("email", EMAIL.0))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Switchboard with the e-mail account sending to the simulator's SMTP sink (user `acme`).
/// Attachments come from a file host on loopback, which the egress policy allows.
async fn smtp_rig() -> Rig {
    smtp_rig_with(&[("SWITCHBOARD__EGRESS__ALLOW_NETWORKS", "127.0.0.1/32")]).await
}

/// [`smtp_rig`] with `env` instead of the loopback allowance.
async fn smtp_rig_with(env: &[(&str, &str)]) -> Rig {
    let simulator = Simulator::start_with_smtp("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("simulator");
    let base = simulator.base_url().to_owned();
    let smtp_port = simulator.smtp_addr().expect("smtp listener").port().to_string();
    let rig = Rig::start_with(SimulatorHost::InProcess(simulator), &base, env).await;
    rig.point_account(
        EMAIL.0,
        &[("smtp_username", "acme"), ("smtp_password", "smtp-secret")],
        &[
            ("inbound_provider", "mailgun"),
            ("smtp_host", "127.0.0.1"),
            ("smtp_port", &smtp_port),
            ("smtp_tls", "none"),
            ("from_name", "Acme Support"),
        ],
    )
    .await;
    rig
}

#[tokio::test]
async fn an_email_reply_threads_under_the_customers_message_and_smtp_codes_decide_retry_or_failure() {
    let rig = smtp_rig().await;
    mailgun_inbound(
        &rig,
        "mg-token-1",
        "Where is my order?",
        r#"[["Message-Id","<thread-1@example.com>"]]"#,
    )
    .await;
    let (_, conversation) = rig.conversation_of("thread-1@example.com").await;

    // An agent's reply quotes the customer's message: it threads under it.
    let mut reply = send(
        &conversation,
        delivery::OutboundContent {
            parts: vec![ContentPart {
                part: Some(Part::Text(TextPart {
                    body: "It ships today.".to_owned(),
                    subject: "Re: Where is my order?".to_owned(),
                })),
            }],
            ..Default::default()
        },
        delivery::AuthorKind::Agent,
    );
    reply.reply_to_provider_message_id = "thread-1@example.com".to_owned();
    let sent = rig.send_ok(reply).await;
    let sent = rig.wait_status(&sent.id, DeliveryStatus::Sent).await;
    let domain_id = format!("{}@acme.test", sent.id);
    assert_eq!(sent.provider_message_id, domain_id);
    let mails = rig.sim.smtp_messages().await.unwrap();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.rcpt_to, ["jane@example.com"]);
    assert_eq!(mail.auth_user.as_deref(), Some("acme"));
    assert_eq!(
        mail.message_id.as_deref(),
        Some(format!("<{domain_id}>").as_str())
    );
    assert_eq!(mail.in_reply_to.as_deref(), Some("<thread-1@example.com>"));
    assert_eq!(mail.reference_ids(), ["<thread-1@example.com>"]);
    assert_eq!(mail.subject.as_deref(), Some("Re: Where is my order?"));
    assert!(mail.auto_submitted.is_none(), "an agent's mail is not automatic");
    assert!(mail.body().contains("It ships today."));

    // The customer answers our mail: routing links the answer to it.
    mailgun_inbound(
        &rig,
        "mg-token-2",
        "Re: Re: Where is my order?",
        &format!(r#"[["Message-Id","<thread-2@example.com>"],["In-Reply-To","<{domain_id}>"]]"#),
    )
    .await;
    let (_, same) = rig.conversation_of("thread-2@example.com").await;
    assert_eq!(same, conversation);
    let linked: Option<String> = rig
        .db
        .query_one(
            "SELECT reply_to_message_id FROM routing.messages WHERE provider_message_id = 'thread-2@example.com'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        linked.as_deref(),
        Some(sent.id.as_str()),
        "the answer links to our message"
    );

    // 451 (greylisted) is retried; 550 fails with the SMTP code.
    rig.sim
        .add_smtp_faults(&[SmtpFault::new(
            SmtpFaultKind::SmtpReply {
                code: 451,
                enhanced: Some("4.7.1".to_owned()),
                text: Some("greylisted".to_owned()),
            },
            1,
        )])
        .await
        .unwrap();
    let retried = rig
        .send_ok(send(&conversation, text("second"), delivery::AuthorKind::Agent))
        .await;
    let retried = rig.wait_status(&retried.id, DeliveryStatus::Sent).await;
    let outcomes: Vec<&str> = retried
        .attempts
        .iter()
        .map(|attempt| attempt.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["retryable", "accepted"]);
    rig.sim
        .add_smtp_faults(&[SmtpFault::new(
            SmtpFaultKind::SmtpReply {
                code: 550,
                enhanced: Some("5.1.1".to_owned()),
                text: Some("mailbox unavailable".to_owned()),
            },
            1,
        )])
        .await
        .unwrap();
    let refused = rig
        .send_ok(send(&conversation, text("third"), delivery::AuthorKind::Agent))
        .await;
    let failed = rig.wait_status(&refused.id, DeliveryStatus::Failed).await;
    assert_eq!(failed.error.unwrap().code, "550");
    assert_eq!(failed.attempts.len(), 1, "a permanent refusal is not retried");
}

#[tokio::test]
async fn an_email_carries_media_parts_as_mime_attachments() {
    let rig = smtp_rig().await;
    mailgun_inbound(
        &rig,
        "mg-token-a",
        "Invoice please",
        r#"[["Message-Id","<att-1@example.com>"]]"#,
    )
    .await;
    let (_, conversation) = rig.conversation_of("att-1@example.com").await;
    // Real PDFs carry binary bytes early (so the part is base64-encoded).
    let pdf: &'static [u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n";
    let (host, _) = file_host(pdf, "application/pdf").await;
    let content = delivery::OutboundContent {
        parts: vec![
            ContentPart {
                part: Some(Part::Text(TextPart {
                    body: "Here is your invoice.".to_owned(),
                    subject: "Your invoice".to_owned(),
                })),
            },
            ContentPart {
                part: Some(Part::Media(MediaPart {
                    url: format!("{host}/files/invoice.pdf"),
                    filename: "invoice.pdf".to_owned(),
                    mime_type: "application/pdf".to_owned(),
                    ..Default::default()
                })),
            },
        ],
        ..Default::default()
    };
    let sent = rig
        .send_ok(send(&conversation, content, delivery::AuthorKind::Api))
        .await;
    rig.wait_status(&sent.id, DeliveryStatus::Sent).await;
    let mails = rig.sim.smtp_messages().await.unwrap();
    let raw = &mails.last().expect("a mail").raw;
    assert!(raw.contains("multipart/mixed"), "{raw}");
    assert!(
        raw.contains("Content-Disposition: attachment; filename=\"invoice.pdf\""),
        "{raw}"
    );
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(pdf);
    assert!(raw.contains(&encoded), "the file's bytes are in the mail: {raw}");
    assert!(!raw.contains("invoice.pdf: http"), "attached, not linked: {raw}");
    rig.hooks.cleanup().await;
}

#[tokio::test]
async fn an_email_attachment_on_switchboards_own_network_fails_the_message_unfetched() {
    // Without the check at Send, the download at send time is the guard.
    let rig = smtp_rig_with(&[("SWITCHBOARD__DELIVERY__CHECK_ATTACHMENTS", "false")]).await;
    mailgun_inbound(
        &rig,
        "mg-token-ssrf",
        "Invoice please",
        r#"[["Message-Id","<ssrf-1@example.com>"]]"#,
    )
    .await;
    let (_, conversation) = rig.conversation_of("ssrf-1@example.com").await;
    let (host, hits) = file_host(b"%PDF-1.7\n", "application/pdf").await;
    let content = delivery::OutboundContent {
        parts: vec![
            ContentPart {
                part: Some(Part::Text(TextPart {
                    body: "Here is your invoice.".to_owned(),
                    subject: "Your invoice".to_owned(),
                })),
            },
            ContentPart {
                part: Some(Part::Media(MediaPart {
                    url: format!("{host}/files/invoice.pdf"),
                    filename: "invoice.pdf".to_owned(),
                    mime_type: "application/pdf".to_owned(),
                    ..Default::default()
                })),
            },
        ],
        ..Default::default()
    };
    let sent = rig
        .send_ok(send(&conversation, content, delivery::AuthorKind::Api))
        .await;
    let failed = rig.wait_status(&sent.id, DeliveryStatus::Failed).await;
    let error = failed.error.expect("an error");
    assert_eq!(error.code, "ATTACHMENT_URL_REFUSED", "{error:?}");
    assert!(error.message.contains("egress.allow_networks"), "{error:?}");
    assert_eq!(failed.attempts.len(), 1, "a refused url is not retried");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "never fetched");
    assert!(
        rig.sim.smtp_messages().await.unwrap().is_empty(),
        "no mail went out"
    );
    rig.hooks.cleanup().await;
}
