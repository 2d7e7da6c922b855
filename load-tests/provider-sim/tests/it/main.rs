//! The simulator over real HTTP on loopback: provider shapes, credentials, rate limits,
//! faults and signed status webhooks (checked with ingress's own verifiers and normalizers).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faults;
mod limits;
mod providers;
mod receiver;
mod smtp;
mod webhooks;

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use switchboard_provider_sim::{AccountConfig, Provider, RunningSimulator, Simulator, SimulatorClient};

/// A WhatsApp phone number id.
pub const WA_PHONE: &str = "106540352242922";
/// A WhatsApp access token.
pub const WA_TOKEN: &str = "EAAB_TEST_TOKEN";
/// A Messenger page id.
pub const PAGE: &str = "107220000000001";
/// An Instagram account id.
pub const IG: &str = "17841400000000001";
/// A Telegram bot id and its token.
pub const BOT: &str = "7000000001";
/// The whole bot token.
pub const BOT_TOKEN: &str = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
/// A Twilio AccountSid and auth token.
pub const TWILIO_SID: &str = "AC33333333333333333333333333333333";
/// The auth token.
pub const TWILIO_TOKEN: &str = "my_twilio_auth_token";

/// A running simulator with its control client and a plain HTTP client.
pub struct Harness {
    /// The simulator (stops on drop).
    pub sim: RunningSimulator,
    /// Its control client.
    pub control: SimulatorClient,
    /// A client for provider calls.
    pub http: reqwest::Client,
}

/// Starts a simulator on a free loopback port.
pub async fn start() -> Harness {
    let sim = Simulator::start("127.0.0.1:0").await.expect("simulator starts");
    let control = sim.client();
    Harness {
        sim,
        control,
        http: reqwest::Client::new(),
    }
}

impl Harness {
    /// `base_url + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// Configures an account, panicking on refusal.
    pub async fn account(&self, provider: Provider, id: &str, config: AccountConfig) {
        self.control
            .configure_account(provider, id, &config)
            .await
            .expect("account configured");
    }

    /// A WhatsApp text to `to` with `token`: (status, body).
    pub async fn whatsapp_text(&self, token: &str, to: &str) -> (u16, Value) {
        let body = serde_json::json!({
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": "text", "text": {"body": "hello"},
        });
        let response = self
            .http
            .post(self.url(&format!("/v23.0/{WA_PHONE}/messages")))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("whatsapp call answered");
        read(response).await
    }

    /// A Telegram `sendMessage` to `chat_id`: (status, body).
    pub async fn telegram_text(&self, token: &str, chat_id: i64) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(&format!("/bot{token}/sendMessage")))
            .json(&serde_json::json!({"chat_id": chat_id, "text": "hello"}))
            .send()
            .await
            .expect("telegram call answered");
        read(response).await
    }

    /// A Twilio SMS `form` (pairs) posted with Basic `sid:token`: (status, body).
    pub async fn twilio_send(&self, sid: &str, token: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let mut encoded = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form {
            encoded.append_pair(name, value);
        }
        let response = self
            .http
            .post(self.url(&format!("/2010-04-01/Accounts/{sid}/Messages.json")))
            .basic_auth(sid, Some(token))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encoded.finish())
            .send()
            .await
            .expect("twilio call answered");
        read(response).await
    }
}

/// Status and JSON body of a response.
pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.expect("json body");
    (status, body)
}

/// Polls `check` every 20 ms until it returns `Some`, for at most 5 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
