//! A local HTTP simulator of the providers' send APIs, so delivery can be tested end to end
//! over real HTTP: WhatsApp Cloud API, Messenger and Instagram (Graph
//! `POST /{version}/{id}/messages`), Telegram (`POST /bot{token}/{method}`) and Twilio
//! (`POST /2010-04-01/Accounts/{sid}/Messages.json`) answer with the providers' ids, shapes
//! and error envelopes, enforce per-account rate limits (and count violations), inject
//! queued faults, and post signed status webhooks back to Switchboard's ingress.
//!
//! An optional SMTP sink (plain SMTP with any `AUTH PLAIN`/`LOGIN` credentials, as lettre's
//! `builder_dangerous(host).port(p)` speaks it) records every accepted message with its
//! envelope and threading headers, and answers queued `4xx`/`5xx` faults at the end of `DATA`
//! (see [`Simulator::start_with_smtp`] and [`SmtpMessage`]).
//!
//! Accounts, faults, the call log and counters are driven through the JSON control API under
//! `/_sim/` (see [`SimulatorClient`]). Start one in-process with [`Simulator::start`] or run
//! the `provider-sim` binary ([`SimulatorProcess`] starts it). Test tooling only: it depends
//! on no Switchboard crate.

mod client;
mod control;
mod error;
mod limits;
pub mod model;
mod process;
mod providers;
mod server;
pub mod sign;
mod smtp;
mod state;
mod webhooks;
mod wire;

pub use client::SimulatorClient;
pub use error::SimulatorError;
pub use model::{
    AccountConfig, AccountSeed, AccountStats, CallOutcome, CallRecord, CallsQuery, ConfiguredAccount,
    EffectiveLimits, Fault, FaultKind, Limits, Provider, ReceiptStatus, SmtpFault, SmtpFaultKind, SmtpHeader,
    SmtpMessage, SmtpStats, Stats, ViolationCounts, WebhookStats,
};
pub use process::SimulatorProcess;
pub use server::{RunningSimulator, Simulator, SimulatorOptions};

/// Parses an accounts file: a JSON list of [`AccountSeed`]s
/// (`[{"provider":"whatsapp","external_id":"1065…","credential":"…", …}]`).
pub fn parse_accounts(json: &str) -> Result<Vec<AccountSeed>, SimulatorError> {
    Ok(serde_json::from_str(json)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_file_is_a_list_of_put_bodies_with_provider_and_external_id() {
        let seeds = parse_accounts(
            r#"[{"provider":"whatsapp","external_id":"106540352242922","credential":"EAAB",
                 "webhook_url":"http://127.0.0.1:8080/webhooks/whatsapp/chacc_x","webhook_secret":"s",
                 "receipts":["sent","delivered"],"limits":{"per_second":20}},
                {"provider":"telegram","external_id":"7000000001","credential":"7000000001:AAH"}]"#,
        )
        .unwrap();
        assert_eq!(seeds.len(), 2);
        assert_eq!(seeds[0].provider, Provider::Whatsapp);
        assert_eq!(seeds[0].config.limits.per_second, Some(20));
        assert_eq!(
            seeds[0].config.receipts,
            [ReceiptStatus::Sent, ReceiptStatus::Delivered]
        );
        assert_eq!(seeds[1].config.credential, "7000000001:AAH");
        assert!(
            parse_accounts(r#"[{"provider":"whatsapp","external_id":"1","credential":"x","typo":1}]"#)
                .is_err()
        );
    }
}
