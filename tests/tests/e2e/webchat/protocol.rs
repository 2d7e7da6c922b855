//! The visitor's protocol against the running binary.

use std::time::Duration;

use serde_json::json;
use switchboard_e2e::webhooks::{WEBCHAT, WEBCHAT_ORIGIN};
use switchboard_proto::common::v1::DeliveryStatus;
use switchboard_proto::delivery::v1::ConversationAction;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{Chat, Socket, created_seqs};

#[tokio::test]
async fn webchat_session_send_reply_typing_and_read_receipts_both_ways() {
    let chat = Chat::start(&[]).await;
    let typing_queue = chat.hooks.subscribe(switchboard_webchat_typing_event()).await;
    let session = chat.visitor("Ada").await;
    let mut socket = chat.socket(&session).await;
    socket.send("resume", json!({"last_seq": 0})).await;
    socket
        .send(
            "message.send",
            json!({"client_id": "c-hello", "text": "Where is my order?"}),
        )
        .await;
    let echo = socket.expect("message.created").await;
    assert_eq!(echo["data"]["client_id"], "c-hello");
    assert_eq!(echo["data"]["seq"], 1);
    assert_eq!(echo["data"]["author"], "visitor");
    let wcm = echo["data"]["id"].as_str().unwrap().to_owned();

    // The message is an inbound event like any channel's: contacts and routing take it.
    let conversation = chat.conversation_of(&wcm).await;

    // Visitor typing reaches subscribers of the bus.
    socket.send("typing", json!({"state": "on"})).await;
    let typing = chat
        .hooks
        .read_queue(&typing_queue, 1, Duration::from_secs(10))
        .await;
    assert_eq!(typing[0].envelope.event_type, "webchat.visitor_typing");

    // Agent typing and the agent's read mark reach the socket.
    chat.agent_action(&conversation, ConversationAction::TypingOn, "")
        .await;
    let typing = socket.expect("typing").await;
    assert_eq!(typing["data"], json!({"who": "agent", "state": "on"}));
    chat.agent_action(&conversation, ConversationAction::MarkRead, &wcm)
        .await;
    let read = socket.expect("read").await;
    assert_eq!(read["data"], json!({"reader": "agent", "up_to_seq": 1}));

    // The agent's reply arrives live; the visitor's delivered and read marks flow back to
    // delivery as receipts.
    let reply = chat.agent_reply(&conversation, "It ships today.").await;
    let created = socket.expect("message.created").await;
    assert_eq!(created["data"]["text"], "It ships today.");
    assert_eq!(created["data"]["author"], "agent");
    assert_eq!(created["data"]["seq"], 2);
    chat.wait_delivery_status(&reply, DeliveryStatus::Sent).await;
    socket.send("delivered", json!({"up_to_seq": 2})).await;
    chat.wait_delivery_status(&reply, DeliveryStatus::Delivered).await;
    socket.send("read", json!({"up_to_seq": 2})).await;
    chat.wait_delivery_status(&reply, DeliveryStatus::Read).await;
    chat.hooks.cleanup().await;
}

fn switchboard_webchat_typing_event() -> &'static str {
    "webchat.visitor_typing"
}

#[tokio::test]
async fn webchat_dedupes_a_resent_client_id_and_resumes_without_gap_or_duplicate() {
    let chat = Chat::start(&[]).await;
    let session = chat.visitor("Grace").await;
    let mut socket = chat.socket(&session).await;
    socket.send("resume", json!({"last_seq": 0})).await;
    socket
        .send("message.send", json!({"client_id": "c-1", "text": "first"}))
        .await;
    let first = socket.expect("message.created").await;
    // The client did not see the echo and sends again: the same message comes back.
    socket
        .send("message.send", json!({"client_id": "c-1", "text": "first"}))
        .await;
    let again = socket.expect("message.created").await;
    assert_eq!(again["data"]["id"], first["data"]["id"]);
    assert_eq!(again["data"]["seq"], 1);
    let conversation = chat.conversation_of(first["data"]["id"].as_str().unwrap()).await;

    // The socket drops; meanwhile the agent answers twice and the visitor writes from another
    // tab over REST.
    drop(socket);
    chat.agent_reply(&conversation, "reply one").await;
    chat.agent_reply(&conversation, "reply two").await;
    let response = chat
        .hooks
        .http
        .post(format!("{}/webchat/{}/messages", chat.http_base(), WEBCHAT.0))
        .bearer_auth(&session.token)
        .json(&json!({"client_id": "c-2", "text": "second"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let stored: i64 =
        switchboard_testkit::eventually(Duration::from_secs(30), "both replies stored", || async {
            let row = chat
                .db
                .query_one(
                    "SELECT count(*) FROM webchat.messages WHERE visitor_id = $1",
                    &[&session.visitor_id],
                )
                .await
                .unwrap();
            let count: i64 = row.get(0);
            (count == 4).then_some(count)
        })
        .await;
    assert_eq!(stored, 4);

    // Reconnect with the last seq seen: everything after it, once, in order; then live.
    let mut socket = chat.socket(&session).await;
    socket.send("resume", json!({"last_seq": 1})).await;
    let frames = socket.drain(Duration::from_millis(800)).await;
    assert_eq!(created_seqs(&frames), vec![2, 3, 4], "{frames:#?}");
    chat.agent_reply(&conversation, "reply three").await;
    let live = socket.expect("message.created").await;
    assert_eq!(live["data"]["seq"], 5);
    assert_eq!(live["data"]["text"], "reply three");
    let rest = socket.drain(Duration::from_millis(500)).await;
    assert!(created_seqs(&rest).is_empty(), "no duplicate: {rest:#?}");

    // The REST fallback pages the same history.
    let page: serde_json::Value = chat
        .hooks
        .http
        .get(format!(
            "{}/webchat/{}/messages?after_seq=2&limit=2",
            chat.http_base(),
            WEBCHAT.0
        ))
        .bearer_auth(&session.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seqs: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![3, 4]);
    assert_eq!(page["has_more"], true);
    chat.hooks.cleanup().await;
}

#[tokio::test]
async fn webchat_refuses_foreign_origins_bad_tokens_and_oversized_messages() {
    let chat = Chat::start(&[]).await;
    let base = chat.http_base();
    // Sessions: the form is checked; a foreign origin is refused, the allowed one gets CORS.
    let (status, body) = chat.session_at(&base, json!({}), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("field_required"))
    );
    assert_eq!(body["error"]["field"], "name");
    let (status, body) = chat
        .session_at(&base, json!({"name": "Eve", "email": "not-an-address"}), None)
        .await;
    assert_eq!((status, body["error"]["field"].as_str()), (400, Some("email")));
    let (status, body) = chat
        .session_at(&base, json!({"name": "Eve"}), Some("https://evil.example"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    let allowed = chat
        .hooks
        .http
        .post(format!("{base}/webchat/{}/sessions", WEBCHAT.0))
        .header("origin", WEBCHAT_ORIGIN)
        .json(&json!({"name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 201);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"].to_str().unwrap(),
        WEBCHAT_ORIGIN
    );
    // A verified user id (CHANNELS.md V10) is one visitor on every device; a wrong hash is 401.
    let verified = json!({"user_id": "user-42", "user_hash": "e8f84e2e69b7c6c74b3f0562be0f523be1ee952ed78d6447bf8051ab3df055fd", "name": "Kim"});
    let (status, first) = chat.session_at(&base, verified.clone(), None).await;
    assert_eq!(status, 201, "{first}");
    let (_, second) = chat.session_at(&base, verified.clone(), None).await;
    assert_eq!(first["visitor_id"], second["visitor_id"]);
    // The signed-in user's session resumes only for that user: not after a sign-out.
    let token = first["session_token"].as_str().unwrap();
    let (status, _) = chat
        .session_at(&base, json!({"session_token": token}), None)
        .await;
    assert_eq!(status, 401);
    let mut again = verified.clone();
    again["session_token"] = json!(token);
    let (status, resumed) = chat.session_at(&base, again, None).await;
    assert_eq!((status, resumed["resumed"].as_bool()), (201, Some(true)));
    assert_eq!(resumed["visitor_id"], first["visitor_id"]);
    let (status, body) = chat
        .session_at(&base, json!({"user_id": "user-43", "user_hash": "e8f84e2e69b7c6c74b3f0562be0f523be1ee952ed78d6447bf8051ab3df055fd", "name": "Kim"}), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("identity_not_verified"))
    );
    // A returning visitor resumes with the token: same visitor.
    let session = chat.visitor("Ada").await;
    let (status, resumed) = chat
        .session_at(&base, json!({"session_token": session.token}), None)
        .await;
    assert_eq!(status, 201);
    assert_eq!(resumed["visitor_id"].as_str(), Some(session.visitor_id.as_str()));
    assert_eq!(resumed["resumed"], true);

    // The socket: foreign origin refused before the upgrade; a forged token closes with 4401.
    let refused = Socket::open(&base, &session.token, Some("https://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        Err(other) => panic!("expected HTTP 403, got {other}"),
        Ok(_) => panic!("a foreign origin got a socket"),
    }
    assert!(
        Socket::open(&base, &session.token, Some(WEBCHAT_ORIGIN))
            .await
            .is_ok()
    );
    let forged = format!("{}x", session.token);
    let url = format!(
        "{}/webchat/{}/ws?token={forged}",
        base.replacen("http", "ws", 1),
        WEBCHAT.0
    );
    let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("upgrade");
    let mut bad = Socket { stream };
    assert_eq!(bad.closed().await.0, CloseCode::from(4401));

    // Oversized text is refused with an error frame (the socket stays); a frame over 64 KiB
    // closes it with 1009. Nothing of either was stored.
    let mut socket = chat.socket(&session).await;
    socket.send("resume", json!({"last_seq": 0})).await;
    socket
        .send(
            "message.send",
            json!({"client_id": "big", "text": "x".repeat(4097)}),
        )
        .await;
    let error = socket.expect("error").await;
    assert_eq!(error["data"]["code"], "message_too_large");
    assert_eq!(error["data"]["client_id"], "big");
    socket.send("bogus", json!({})).await;
    assert_eq!(socket.expect("error").await["data"]["code"], "invalid_frame");
    socket
        .send(
            "message.send",
            json!({"client_id": "huge", "text": "y".repeat(70 * 1024)}),
        )
        .await;
    assert_eq!(socket.closed().await.0, CloseCode::Size);
    let stored: i64 = chat
        .db
        .query_one(
            "SELECT count(*) FROM webchat.messages WHERE visitor_id = $1",
            &[&session.visitor_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
    chat.hooks.cleanup().await;
}

#[tokio::test]
async fn webchat_limits_messages_and_sessions_and_checks_attachments() {
    let chat = Chat::start(&[
        ("SWITCHBOARD__WEBCHAT__MESSAGES_PER_SECOND", "1"),
        ("SWITCHBOARD__WEBCHAT__MESSAGE_BURST", "3"),
        ("SWITCHBOARD__WEBCHAT__MAX_RATE_VIOLATIONS", "4"),
        ("SWITCHBOARD__WEBCHAT__SESSIONS_PER_IP_PER_MINUTE", "3"),
    ])
    .await;
    let base = chat.http_base();
    let session = chat.visitor("Ada").await;
    let mut socket = chat.socket(&session).await;
    socket.send("resume", json!({"last_seq": 0})).await;
    for n in 0..4 {
        socket
            .send(
                "message.send",
                json!({"client_id": format!("m{n}"), "text": format!("message {n}")}),
            )
            .await;
    }
    let frames = socket.drain(Duration::from_millis(800)).await;
    assert_eq!(created_seqs(&frames), vec![1, 2, 3], "{frames:#?}");
    let limited: Vec<_> = frames.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(limited.len(), 1, "{frames:#?}");
    assert_eq!(limited[0]["data"]["code"], "rate_limited");
    assert_eq!(limited[0]["data"]["client_id"], "m3");
    // A client that keeps flooding is closed with 4429.
    for n in 10..20 {
        socket
            .send(
                "message.send",
                json!({"client_id": format!("m{n}"), "text": "flood"}),
            )
            .await;
    }
    assert_eq!(socket.closed().await.0, CloseCode::from(4429));

    // New sessions per IP: the fourth within a minute is 429 with Retry-After (resuming is not
    // limited).
    for _ in 0..2 {
        let (status, _) = chat.session_at(&base, json!({"name": "N"}), None).await;
        assert_eq!(status, 201);
    }
    let response = chat
        .hooks
        .http
        .post(format!("{base}/webchat/{}/sessions", WEBCHAT.0))
        .json(&json!({"name": "N"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let (status, _) = chat
        .session_at(&base, json!({"session_token": session.token}), None)
        .await;
    assert_eq!(status, 201);

    // Attachments: an image is stored and served; an executable and 20 MiB + 1 are refused.
    let upload = |bytes: Vec<u8>, name: &str, mime: &str| {
        chat.hooks
            .http
            .post(format!(
                "{base}/webchat/{}/attachments?filename={name}",
                WEBCHAT.0
            ))
            .bearer_auth(&session.token)
            .header("content-type", mime.to_owned())
            .body(bytes)
            .send()
    };
    let png = b"\x89PNG\r\n\x1a\n0000".to_vec();
    let stored = upload(png.clone(), "cat.png", "image/png").await.unwrap();
    assert_eq!(stored.status(), 201);
    let stored: serde_json::Value = stored.json().await.unwrap();
    // Its URL is on the public origin (ingress.public_base_url); fetch it from this process.
    let url = stored["attachment"]["url"].as_str().unwrap().to_owned();
    let local = url
        .strip_prefix(switchboard_e2e::webhooks::PUBLIC_BASE_URL)
        .unwrap_or_else(|| panic!("{url} is not on the public origin"));
    let served = chat
        .hooks
        .http
        .get(format!("{base}{local}"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap().as_ref(), png.as_slice());
    let exe = upload(
        b"MZ\x90\x00\x03".to_vec(),
        "setup.exe",
        "application/octet-stream",
    )
    .await
    .unwrap();
    assert_eq!(exe.status(), 415);
    let huge = upload(
        vec![0u8; 20 * 1024 * 1024 + 1],
        "big.bin",
        "application/octet-stream",
    )
    .await
    .unwrap();
    assert_eq!(huge.status(), 413);
    chat.hooks.cleanup().await;
}
