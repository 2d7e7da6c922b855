//! Rate limits: enforced per account, refused in the provider's shape, counted.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{Value, json};
use switchboard_provider_sim::{AccountConfig, CallOutcome, CallsQuery, Limits, Provider};

use crate::{BOT, BOT_TOKEN, Harness, TWILIO_SID, TWILIO_TOKEN, WA_PHONE, WA_TOKEN, start};

fn per_second(limit: u32) -> Limits {
    Limits {
        per_second: Some(limit),
        per_recipient_per_second: Some(0),
        ..Limits::default()
    }
}

/// Sends `2 * limit` at once to distinct recipients; returns the answers and how long it took.
async fn burst(harness: &Harness, provider: Provider, limit: u32) -> (Vec<(u16, Value)>, Duration) {
    let started = Instant::now();
    let sends = (0..2 * limit).map(|index| async move {
        let recipient = format!("1650555{index:04}");
        match provider {
            Provider::Whatsapp => harness.whatsapp_text(WA_TOKEN, &recipient).await,
            Provider::Telegram => harness.telegram_text(BOT_TOKEN, i64::from(index) + 1).await,
            _ => {
                let to = format!("+{recipient}");
                let form = [("To", to.as_str()), ("From", "+14155550100"), ("Body", "hi")];
                harness.twilio_send(TWILIO_SID, TWILIO_TOKEN, &form).await
            }
        }
    });
    let answers = join_all(sends).await;
    (answers, started.elapsed())
}

#[tokio::test]
async fn a_burst_of_twice_the_limit_accepts_exactly_the_limit_and_counts_the_rest() {
    let harness = start().await;
    let cases = [
        (Provider::Telegram, BOT, BOT_TOKEN, 10, 200, 429),
        (Provider::Whatsapp, WA_PHONE, WA_TOKEN, 10, 200, 400),
        (Provider::Twilio, TWILIO_SID, TWILIO_TOKEN, 5, 201, 429),
    ];
    for (provider, account, credential, limit, ok, refused) in cases {
        let config = AccountConfig {
            limits: per_second(limit),
            ..AccountConfig::new(credential)
        };
        harness.account(provider, account, config).await;
        let (answers, took) = burst(&harness, provider, limit).await;
        assert!(
            took < Duration::from_millis(900),
            "the burst took {took:?}, longer than the window"
        );
        let accepted = answers.iter().filter(|(status, _)| *status == ok).count();
        let limited: Vec<&Value> = answers
            .iter()
            .filter(|(status, _)| *status == refused)
            .map(|(_, body)| body)
            .collect();
        let limit = usize::try_from(limit).unwrap();
        assert_eq!(accepted, limit, "{provider}: {answers:?}");
        assert_eq!(limited.len(), limit, "{provider}: {answers:?}");
        for body in limited {
            match provider {
                Provider::Telegram => {
                    assert_eq!(body["ok"], false);
                    assert_eq!(body["error_code"], 429);
                    let retry_after = body["parameters"]["retry_after"].as_u64().unwrap();
                    assert_eq!(
                        body["description"],
                        format!("Too Many Requests: retry after {retry_after}")
                    );
                }
                Provider::Whatsapp => assert_eq!(body["error"]["code"], 130429),
                _ => assert_eq!(body["code"], 20429),
            }
        }
        let stats = harness.control.stats().await.unwrap();
        let account_stats = stats.account(provider, account).unwrap();
        let limit = u64::try_from(limit).unwrap();
        assert_eq!(account_stats.accepted, limit);
        assert_eq!(account_stats.refused, limit);
        assert_eq!(account_stats.violations, limit);
        assert_eq!(account_stats.violations_by_limit.per_second, limit);
        assert_eq!(account_stats.max_accepted_in_one_second, limit);
        let calls = harness
            .control
            .calls(&CallsQuery {
                provider: Some(provider),
                ..CallsQuery::default()
            })
            .await
            .unwrap();
        let limited_calls = calls
            .iter()
            .filter(|call| call.outcome == CallOutcome::RateLimited)
            .count();
        assert_eq!(u64::try_from(limited_calls).unwrap(), limit);
    }
}

#[tokio::test]
async fn telegram_limits_each_chat_per_second_and_each_group_per_minute() {
    let harness = start().await;
    harness
        .account(Provider::Telegram, BOT, AccountConfig::new(BOT_TOKEN))
        .await;
    assert_eq!(harness.telegram_text(BOT_TOKEN, 42).await.0, 200);
    let (status, body) = harness.telegram_text(BOT_TOKEN, 42).await;
    assert_eq!(
        (status, body),
        (
            429,
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}})
        )
    );
    // Another chat is not limited by chat 42.
    assert_eq!(harness.telegram_text(BOT_TOKEN, 43).await.0, 200);

    let config = AccountConfig {
        limits: Limits {
            per_recipient_per_second: Some(0),
            per_group_per_minute: Some(3),
            ..Limits::default()
        },
        ..AccountConfig::new(BOT_TOKEN)
    };
    harness.account(Provider::Telegram, BOT, config).await;
    for _ in 0..3 {
        assert_eq!(harness.telegram_text(BOT_TOKEN, -100_777).await.0, 200);
    }
    let (status, body) = harness.telegram_text(BOT_TOKEN, -100_777).await;
    assert_eq!(status, 429);
    let retry_after = body["parameters"]["retry_after"].as_u64().unwrap();
    assert!((55..=60).contains(&retry_after), "{body}");

    let stats = harness.control.stats().await.unwrap();
    let bot = stats.account(Provider::Telegram, BOT).unwrap();
    assert_eq!(bot.violations_by_limit.per_recipient_per_second, 1);
    assert_eq!(bot.violations_by_limit.per_group_per_minute, 1);
    assert_eq!(bot.violations, 2);
    assert_eq!(bot.limits.per_group_per_minute, Some(3));
}

#[tokio::test]
async fn whatsapp_pair_rate_is_refused_with_131056_when_configured() {
    let harness = start().await;
    let config = AccountConfig {
        limits: Limits {
            per_recipient_per_minute: Some(2),
            ..Limits::default()
        },
        ..AccountConfig::new(WA_TOKEN)
    };
    harness.account(Provider::Whatsapp, WA_PHONE, config).await;
    assert_eq!(harness.whatsapp_text(WA_TOKEN, "16505551234").await.0, 200);
    assert_eq!(harness.whatsapp_text(WA_TOKEN, "16505551234").await.0, 200);
    let (status, body) = harness.whatsapp_text(WA_TOKEN, "16505551234").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 131056);
    assert!(body["error"]["error_data"]["details"].is_string());
    assert_eq!(harness.whatsapp_text(WA_TOKEN, "16505550000").await.0, 200);
}
