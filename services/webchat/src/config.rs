use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[webchat]` config section: limits of the web chat channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebchatConfig {
    /// How long a session token is valid; a visitor who comes back within it keeps their
    /// contact and conversation (every visit renews it).
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Longest visitor message, in characters.
    pub max_message_chars: usize,
    /// Largest WebSocket frame; a bigger one closes the socket with 1009.
    pub max_frame_bytes: usize,
    /// Largest uploaded attachment (the limit other channels have, 20 MiB).
    pub max_attachment_bytes: usize,
    /// Uploads per session per minute.
    pub uploads_per_minute: u32,
    /// How long an uploaded file no message refers to is kept.
    #[serde(with = "humantime_serde")]
    pub unsent_attachment_ttl: Duration,
    /// Sustained visitor messages per second per session (bursts up to `message_burst`).
    pub messages_per_second: u32,
    /// Messages a session may send at once before `messages_per_second` applies.
    pub message_burst: u32,
    /// Rate-limited frames after which the socket is closed with 4429.
    pub max_rate_violations: u32,
    /// New sessions per client IP per minute (per replica).
    pub sessions_per_ip_per_minute: u32,
    /// The header holding the client's IP when Switchboard runs behind one proxy
    /// (e.g. `x-forwarded-for`, whose last address, the one the proxy added, is used); unset:
    /// the TCP peer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip_header: Option<String>,
    /// Interval of the client's pings; a socket silent for three of them is closed (4408).
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Most messages replayed on `resume`; a longer gap gets `resync_required`.
    pub resume_replay_limit: i64,
    /// Longest long-poll of the REST fallback.
    #[serde(with = "humantime_serde")]
    pub long_poll_max: Duration,
    /// How long a resolved channel account is reused before asking tenancy again.
    #[serde(with = "humantime_serde")]
    pub account_cache_ttl: Duration,
    /// How often the outbox relay looks for unpublished events.
    #[serde(with = "humantime_serde")]
    pub relay_interval: Duration,
}

impl Default for WebchatConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            max_message_chars: 4096,
            max_frame_bytes: 64 * 1024,
            max_attachment_bytes: 20 * 1024 * 1024,
            uploads_per_minute: 10,
            unsent_attachment_ttl: Duration::from_secs(24 * 3600),
            messages_per_second: 5,
            message_burst: 10,
            max_rate_violations: 20,
            sessions_per_ip_per_minute: 30,
            client_ip_header: None,
            heartbeat: Duration::from_secs(25),
            resume_replay_limit: 200,
            long_poll_max: Duration::from_secs(25),
            account_cache_ttl: Duration::from_secs(30),
            relay_interval: Duration::from_millis(500),
        }
    }
}

impl WebchatConfig {
    /// Checks the values a person can get wrong.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("webchat.max_message_chars", self.max_message_chars),
            ("webchat.max_frame_bytes", self.max_frame_bytes),
            ("webchat.max_attachment_bytes", self.max_attachment_bytes),
            ("webchat.uploads_per_minute", self.uploads_per_minute as usize),
            ("webchat.messages_per_second", self.messages_per_second as usize),
            ("webchat.message_burst", self.message_burst as usize),
            (
                "webchat.sessions_per_ip_per_minute",
                self.sessions_per_ip_per_minute as usize,
            ),
            (
                "webchat.resume_replay_limit",
                self.resume_replay_limit.max(0) as usize,
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(format!("{name} must be greater than zero"));
        }
        if self.max_frame_bytes < self.max_message_chars * 4 {
            return Err(format!(
                "webchat.max_frame_bytes ({}) must hold a message of webchat.max_message_chars ({}) characters of up to 4 bytes each",
                self.max_frame_bytes, self.max_message_chars
            ));
        }
        for (name, value) in [
            ("webchat.session_ttl", self.session_ttl),
            ("webchat.unsent_attachment_ttl", self.unsent_attachment_ttl),
            ("webchat.heartbeat", self.heartbeat),
            ("webchat.long_poll_max", self.long_poll_max),
            ("webchat.relay_interval", self.relay_interval),
        ] {
            if value.is_zero() {
                return Err(format!("{name} must be greater than zero"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_a_frame_must_hold_a_message() {
        assert_eq!(WebchatConfig::default().validate(), Ok(()));
        let config = WebchatConfig {
            max_frame_bytes: 1000,
            ..WebchatConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("max_frame_bytes"));
    }
}
