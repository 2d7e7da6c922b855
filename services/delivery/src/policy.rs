//! The channel policy: reply windows (WhatsApp and Messenger 24 hours after the customer's last
//! message, Instagram and Messenger human-agent replies up to 7 days, no window on Telegram,
//! SMS, e-mail and web chat, templates allowed outside), blocked contacts, SMS opt-out, e-mail
//! consent for automated mail, and bot subscription for bot and broadcast sends. One function
//! answers `CanSend` and guards `Send`.

use chrono::{DateTime, Duration, Utc};
use switchboard_domain::Channel;
use switchboard_domain::time::to_timestamp;
use switchboard_proto::delivery::v1::{AuthorKind, CanSendResponse, Refusal};

use crate::DeliveryError;
use crate::content::ContentKind;

/// The standard reply window.
pub const REPLY_WINDOW: Duration = Duration::hours(24);
/// How long after the customer's last message a human agent may still answer with the
/// HUMAN_AGENT tag (Messenger, Instagram).
pub const HUMAN_AGENT_WINDOW: Duration = Duration::days(7);

/// What the policy decides on.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The account's channel.
    pub channel: Channel,
    /// Disabled accounts send nothing.
    pub account_enabled: bool,
    /// The contact has an identity on the account (someone to address).
    pub has_identity: bool,
    /// The contact is blocked.
    pub blocked: bool,
    /// SMS STOP without START since.
    pub sms_opted_out: bool,
    /// Bot (and broadcast) subscription.
    pub bot_subscribed: bool,
    /// E-mail opt-in.
    pub email_opted_in: bool,
    /// E-mail opt-out.
    pub email_opted_out: bool,
    /// The customer's last message on this account (the conversation's, else the identity's).
    pub last_inbound_at: Option<DateTime<Utc>>,
}

fn has_window(channel: Channel) -> bool {
    matches!(
        channel,
        Channel::Whatsapp | Channel::Messenger | Channel::Instagram
    )
}

fn has_human_agent_tag(channel: Channel) -> bool {
    matches!(channel, Channel::Messenger | Channel::Instagram)
}

fn refusal(reason: &str, applies_to: &str, message: String) -> Refusal {
    Refusal {
        reason: reason.to_owned(),
        message,
        applies_to: applies_to.to_owned(),
    }
}

/// What `author` may send under `facts` at `now`.
pub fn evaluate(facts: &Facts, author: AuthorKind, now: DateTime<Utc>) -> CanSendResponse {
    let channel = facts.channel;
    let window_expires = facts.last_inbound_at.map(|at| at + REPLY_WINDOW);
    let tag_expires = facts.last_inbound_at.map(|at| at + HUMAN_AGENT_WINDOW);
    let window_open = !has_window(channel) || window_expires.is_some_and(|until| now < until);
    let tag_open = has_human_agent_tag(channel) && tag_expires.is_some_and(|until| now < until);
    let mut refusals = Vec::new();
    if !facts.account_enabled {
        refusals.push(refusal(
            "ACCOUNT_DISABLED",
            "all",
            "the channel account is disabled; enable it to send".to_owned(),
        ));
    }
    if !facts.has_identity {
        refusals.push(refusal(
            "NO_CHANNEL_IDENTITY",
            "all",
            format!(
                "the contact has never written on this {} account; there is no one to address",
                channel.as_str()
            ),
        ));
    }
    if facts.blocked {
        refusals.push(refusal(
            "CONTACT_BLOCKED",
            "all",
            "the contact is blocked; unblock them to send".to_owned(),
        ));
    }
    if channel == Channel::Sms && facts.sms_opted_out {
        refusals.push(refusal(
            "SMS_OPTED_OUT",
            "all",
            "the contact replied STOP; nothing is sent until they reply START".to_owned(),
        ));
    }
    if channel == Channel::Email && facts.email_opted_out {
        refusals.push(refusal(
            "EMAIL_OPTED_OUT",
            "all",
            "the contact opted out of e-mail".to_owned(),
        ));
    }
    let automated = crate::author::is_automated_bulk(author);
    if channel == Channel::Email && automated && !facts.email_opted_in {
        refusals.push(refusal(
            "EMAIL_OPT_IN_REQUIRED",
            "all",
            "bot and broadcast e-mail needs the contact's opt-in".to_owned(),
        ));
    }
    if automated && !facts.bot_subscribed {
        refusals.push(refusal(
            "BOT_UNSUBSCRIBED",
            "all",
            "the contact unsubscribed from bot and broadcast messages".to_owned(),
        ));
    }
    if !window_open {
        let message = match facts.last_inbound_at {
            None => "the customer has not written yet: only a template may open the conversation".to_owned(),
            Some(at) => format!(
                "the 24-hour window closed at {}: send a template{}",
                (at + REPLY_WINDOW).to_rfc3339(),
                if tag_open && author == AuthorKind::Agent {
                    ", or reply as a human agent with the HUMAN_AGENT tag"
                } else {
                    ""
                }
            ),
        };
        refusals.push(refusal("WINDOW_CLOSED", "free_text", message));
    }
    let blocked_all = refusals.iter().any(|refusal| refusal.applies_to == "all");
    CanSendResponse {
        channel: channel.to_proto() as i32,
        has_window: has_window(channel),
        window_open,
        window_expires_at: if has_window(channel) {
            window_expires.map(to_timestamp)
        } else {
            None
        },
        free_text_allowed: !blocked_all && window_open,
        template_allowed: !blocked_all && channel == Channel::Whatsapp,
        human_agent_tag_allowed: !blocked_all && tag_open && author == AuthorKind::Agent,
        human_agent_window_expires_at: if has_human_agent_tag(channel) {
            tag_expires.map(to_timestamp)
        } else {
            None
        },
        contact_blocked: facts.blocked,
        sms_opted_out: facts.sms_opted_out,
        bot_subscribed: facts.bot_subscribed,
        email_opted_in: facts.email_opted_in,
        email_opted_out: facts.email_opted_out,
        refusals,
    }
}

/// Refuses a send of `kind` content (with the HUMAN_AGENT tag or not) that `evaluate` does
/// not allow, with the first applicable reason.
pub fn check_send(
    facts: &Facts,
    author: AuthorKind,
    kind: ContentKind,
    human_agent_tag: bool,
    now: DateTime<Utc>,
) -> Result<(), DeliveryError> {
    let answer = evaluate(facts, author, now);
    if let Some(first) = answer.refusals.iter().find(|refusal| refusal.applies_to == "all") {
        return Err(DeliveryError::refused(
            first.reason.clone(),
            first.message.clone(),
        ));
    }
    if human_agent_tag {
        if author != AuthorKind::Agent || !has_human_agent_tag(facts.channel) {
            return Err(DeliveryError::content(
                "HUMAN_AGENT_TAG",
                "the HUMAN_AGENT tag is for agents' replies on Messenger and Instagram",
            ));
        }
        if !answer.human_agent_tag_allowed {
            return Err(DeliveryError::refused(
                "HUMAN_AGENT_WINDOW_CLOSED",
                "the 7-day human-agent window is closed; send a template or wait for the customer",
            ));
        }
        return Ok(());
    }
    if kind == ContentKind::FreeForm && !answer.free_text_allowed {
        let refusal = answer
            .refusals
            .iter()
            .find(|refusal| refusal.applies_to == "free_text")
            .map(|refusal| (refusal.reason.clone(), refusal.message.clone()))
            .unwrap_or_else(|| {
                (
                    "WINDOW_CLOSED".to_owned(),
                    "the reply window is closed".to_owned(),
                )
            });
        return Err(DeliveryError::refused(refusal.0, refusal.1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(channel: Channel, hours_ago: Option<i64>) -> Facts {
        Facts {
            channel,
            account_enabled: true,
            has_identity: true,
            blocked: false,
            sms_opted_out: false,
            bot_subscribed: true,
            email_opted_in: false,
            email_opted_out: false,
            last_inbound_at: hours_ago.map(|hours| Utc::now() - Duration::hours(hours)),
        }
    }

    fn reason(result: Result<(), DeliveryError>) -> String {
        match result {
            Err(DeliveryError::Refused { reason, .. }) => reason,
            Err(DeliveryError::Content { reason, .. }) => reason.to_owned(),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn windows_close_after_24_hours_and_templates_still_go() {
        let now = Utc::now();
        let open = facts(Channel::Whatsapp, Some(23));
        assert!(check_send(&open, AuthorKind::Agent, ContentKind::FreeForm, false, now).is_ok());
        let closed = facts(Channel::Whatsapp, Some(25));
        assert_eq!(
            reason(check_send(
                &closed,
                AuthorKind::Agent,
                ContentKind::FreeForm,
                false,
                now
            )),
            "WINDOW_CLOSED"
        );
        assert!(check_send(&closed, AuthorKind::Agent, ContentKind::Template, false, now).is_ok());
        let never = facts(Channel::Whatsapp, None);
        assert!(!evaluate(&never, AuthorKind::Api, now).window_open);
        let telegram = facts(Channel::Telegram, None);
        assert!(check_send(&telegram, AuthorKind::Bot, ContentKind::FreeForm, false, now).is_ok());
    }

    #[test]
    fn human_agents_answer_for_seven_days_on_messenger_and_instagram() {
        let now = Utc::now();
        let three_days = facts(Channel::Instagram, Some(72));
        assert!(check_send(&three_days, AuthorKind::Agent, ContentKind::FreeForm, true, now).is_ok());
        assert_eq!(
            reason(check_send(
                &three_days,
                AuthorKind::Bot,
                ContentKind::FreeForm,
                true,
                now
            )),
            "HUMAN_AGENT_TAG"
        );
        let eight_days = facts(Channel::Messenger, Some(24 * 8));
        assert_eq!(
            reason(check_send(
                &eight_days,
                AuthorKind::Agent,
                ContentKind::FreeForm,
                true,
                now
            )),
            "HUMAN_AGENT_WINDOW_CLOSED"
        );
    }

    #[test]
    fn consent_and_blocks_refuse_everything() {
        let now = Utc::now();
        let mut blocked = facts(Channel::Telegram, None);
        blocked.blocked = true;
        assert_eq!(
            reason(check_send(
                &blocked,
                AuthorKind::Agent,
                ContentKind::FreeForm,
                false,
                now
            )),
            "CONTACT_BLOCKED"
        );
        let mut stopped = facts(Channel::Sms, None);
        stopped.sms_opted_out = true;
        assert_eq!(
            reason(check_send(
                &stopped,
                AuthorKind::Agent,
                ContentKind::FreeForm,
                false,
                now
            )),
            "SMS_OPTED_OUT"
        );
        let mail = facts(Channel::Email, None);
        assert!(check_send(&mail, AuthorKind::Agent, ContentKind::FreeForm, false, now).is_ok());
        assert_eq!(
            reason(check_send(
                &mail,
                AuthorKind::Broadcast,
                ContentKind::FreeForm,
                false,
                now
            )),
            "EMAIL_OPT_IN_REQUIRED"
        );
        let mut unsubscribed = facts(Channel::Telegram, None);
        unsubscribed.bot_subscribed = false;
        assert_eq!(
            reason(check_send(
                &unsubscribed,
                AuthorKind::Bot,
                ContentKind::FreeForm,
                false,
                now
            )),
            "BOT_UNSUBSCRIBED"
        );
        assert!(
            check_send(
                &unsubscribed,
                AuthorKind::Agent,
                ContentKind::FreeForm,
                false,
                now
            )
            .is_ok()
        );
    }
}
