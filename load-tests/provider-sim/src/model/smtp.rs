//! The SMTP sink's control types: recorded messages, faults and counters.

use serde::{Deserialize, Serialize};

/// One header field of a recorded message, unfolded (`CRLF` before whitespace removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpHeader {
    /// The field name as sent.
    pub name: String,
    /// The unfolded, trimmed value (encoded words are not decoded).
    pub value: String,
}

/// A message the SMTP sink accepted (`GET /_sim/smtp/messages`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpMessage {
    /// Order of acceptance, from 1.
    pub seq: u64,
    /// The id of the `250 2.0.0 Ok: queued as <id>` reply.
    pub queue_id: String,
    /// The `HELO`/`EHLO` argument.
    pub helo: String,
    /// The username of a successful `AUTH`, if the client authenticated.
    pub auth_user: Option<String>,
    /// The `MAIL FROM` reverse-path without angle brackets (`""` for the null sender).
    pub mail_from: String,
    /// The `RCPT TO` forward-paths without angle brackets, in order.
    pub rcpt_to: Vec<String>,
    /// `Message-ID` as sent (angle brackets kept).
    pub message_id: Option<String>,
    /// `In-Reply-To` as sent.
    pub in_reply_to: Option<String>,
    /// `References` as sent, unfolded (see [`SmtpMessage::reference_ids`]).
    pub references: Option<String>,
    /// `Subject` as sent (encoded words are not decoded).
    pub subject: Option<String>,
    /// `From` as sent.
    pub from: Option<String>,
    /// `To` as sent.
    pub to: Option<String>,
    /// `Auto-Submitted` as sent.
    pub auto_submitted: Option<String>,
    /// Every header field, in order.
    pub headers: Vec<SmtpHeader>,
    /// The message as received after dot-unstuffing, without the terminating `.` line
    /// (UTF-8 lossy).
    pub raw: String,
    /// Size of the message in octets, before lossy decoding.
    pub size: u64,
    /// Milliseconds since the simulator started, at the end of `DATA`.
    pub time_ms: u64,
}

impl SmtpMessage {
    /// The first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.as_str())
    }

    /// The body: everything after the blank line that ends the header section.
    pub fn body(&self) -> &str {
        let (_, body_start) = crate::smtp::headers::parse(&self.raw);
        self.raw.get(body_start..).unwrap_or_default()
    }

    /// The `<…>` ids of `References`, in order, brackets kept.
    pub fn reference_ids(&self) -> Vec<&str> {
        let Some(references) = &self.references else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        let mut rest = references.as_str();
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else {
                break;
            };
            ids.push(&rest[open..=open + close]);
            rest = &rest[open + close + 1..];
        }
        ids
    }
}

/// A fault queued on the SMTP sink: `kind` applied to the next `count` transactions.
///
/// Faults are consumed at the end of `DATA` (after the whole message was received), one per
/// transaction, in order; a faulted message is not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpFault {
    /// What happens to the transaction.
    #[serde(flatten)]
    pub kind: SmtpFaultKind,
    /// How many transactions it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

impl SmtpFault {
    /// `kind` applied to the next `count` transactions.
    pub fn new(kind: SmtpFaultKind, count: u32) -> Self {
        Self { kind, count }
    }

    /// An `smtp_reply` fault: `code enhanced text` for the next `count` transactions.
    pub fn reply(code: u16, enhanced: &str, text: &str, count: u32) -> Self {
        Self::new(
            SmtpFaultKind::SmtpReply {
                code,
                enhanced: Some(enhanced.to_owned()),
                text: Some(text.to_owned()),
            },
            count,
        )
    }

    /// Why the fault cannot be used, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        match &self.kind {
            SmtpFaultKind::SmtpReply { code, enhanced, text } => {
                if !(400..=599).contains(code) {
                    return Err(format!("smtp_reply code {code} is not a 4xx or 5xx reply"));
                }
                if let Some(enhanced) = enhanced
                    && !is_enhanced_code(enhanced, *code)
                {
                    return Err(format!(
                        "enhanced status {enhanced:?} is not {}.x.y (RFC 3463)",
                        code / 100
                    ));
                }
                if text
                    .as_deref()
                    .is_some_and(|text| text.chars().any(char::is_control))
                {
                    return Err("smtp_reply text must not contain control characters".to_owned());
                }
                Ok(())
            }
            SmtpFaultKind::Disconnect => Ok(()),
        }
    }
}

/// `class.subject.detail` with the reply code's class (RFC 3463).
fn is_enhanced_code(enhanced: &str, code: u16) -> bool {
    let parts: Vec<&str> = enhanced.split('.').collect();
    let numeric = |part: &&str| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 3 && parts.iter().all(numeric) && parts[0] == (code / 100).to_string()
}

/// What an SMTP fault does to a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmtpFaultKind {
    /// `DATA` is answered with this reply instead of `250` (e.g. `451 4.7.1 greylisted`,
    /// `550 5.1.1 mailbox unavailable`); the message is not recorded. After `421` the sink
    /// closes the connection, as RFC 5321 §3.8 says.
    SmtpReply {
        /// The reply code, 400–599.
        code: u16,
        /// The RFC 3463 enhanced status (`4.7.1`), left out of the reply when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enhanced: Option<String>,
        /// The reply text (default `injected fault`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// The connection is closed after the message data, without a reply (the outcome is
    /// unknown to the client); the message is not recorded.
    Disconnect,
}

/// The SMTP sink's counters (`GET /_sim/stats`, field `smtp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpStats {
    /// Connections accepted.
    pub connections: u64,
    /// Successful `AUTH` exchanges.
    pub authentications: u64,
    /// Transactions begun (`MAIL FROM` accepted).
    pub transactions: u64,
    /// Messages accepted and recorded (`250 … queued as`).
    pub accepted: u64,
    /// Transactions ended by an injected fault.
    pub faults_injected: u64,
    /// Messages refused after `DATA` for exceeding the size or line-length limits.
    pub rejected: u64,
    /// Messages held in the log.
    pub messages_recorded: u64,
    /// Oldest messages discarded because the log was full.
    pub messages_discarded: u64,
}
