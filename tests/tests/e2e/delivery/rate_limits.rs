//! An account's rate limit held by two delivery replicas under three times the offered load.

use futures_util::StreamExt as _;

use super::*;

/// How many messages are `sent` (`and` narrows it, e.g. `AND author_kind = 'broadcast'`).
async fn sent(rig: &Rig, and: &str) -> i64 {
    rig.db
        .query_one(
            &format!("SELECT count(*) FROM delivery.messages WHERE status = 'sent' {and}"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Limits the WhatsApp account to `per_second` in Switchboard and at the simulator.
async fn limit_whatsapp(rig: &Rig, per_second: u32) {
    rig.point_account(
        WHATSAPP.0,
        &[("access_token", WHATSAPP_TOKEN)],
        &[("rate_limit_per_second", &per_second.to_string())],
    )
    .await;
    rig.whatsapp_account(AccountConfig {
        limits: Limits {
            per_second: Some(per_second),
            ..Limits::default()
        },
        ..AccountConfig::default()
    })
    .await;
}

// The simulator stamps arrivals: it gets its own worker threads, apart from the load generator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_delivery_replicas_hold_an_80_per_second_account_limit_under_300_offered() {
    // A job lost with a broker hiccup is queued again after 20 s (the last of 900 messages
    // waits about 12 s in the lane).
    let (simulator, base) = simulator_process().await;
    let rig = Rig::start_with(
        simulator,
        &base,
        &[("SWITCHBOARD__DELIVERY__REQUEUE_AFTER", "20s")],
    )
    .await;
    limit_whatsapp(&rig, 80).await;
    let second = rig.hooks.start_component("delivery").await;
    let mut conversations = Vec::new();
    for index in 0..30 {
        conversations.push(rig.whatsapp_customer(&format!("165055506{index:02}"), 1).await.1);
    }
    // 300 sends per second for 3 seconds.
    let total = 900;
    let started = tokio::time::Instant::now();
    let mut pending = Vec::new();
    for index in 0..total {
        let due = started + Duration::from_micros(index as u64 * 1_000_000 / 300);
        tokio::time::sleep_until(due).await;
        let mut api = rig.api();
        let request = authorized(
            send(
                &conversations[index % conversations.len()],
                text(&format!("n{index}")),
                delivery::AuthorKind::Api,
            ),
            &rig.admin,
        );
        pending.push(tokio::spawn(async move { api.send(request).await.map(|_| ()) }));
    }
    for task in pending {
        task.await.unwrap().expect("accepted");
    }
    // Sends made while the 300/s were still being accepted share the two cores with them.
    let sent_while_offering = rig.calls(Provider::Whatsapp).await.len();
    let drained = tokio::time::timeout(
        Duration::from_secs(60),
        switchboard_testkit::eventually(Duration::from_secs(120), "every message to be sent", || async {
            (sent(&rig, "").await == total as i64).then_some(())
        }),
    )
    .await;
    if drained.is_err() {
        let rows = rig
            .db
            .query(
                "SELECT status, outcome_unknown, attempts, count(*) FROM delivery.messages GROUP BY 1, 2, 3",
                &[],
            )
            .await
            .unwrap();
        let counts: Vec<(String, bool, i32, i64)> = rows
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect();
        let logs = rig.hooks.switchboard.logs();
        let noteworthy: Vec<&String> = logs
            .iter()
            .filter(|line| line.contains("WARN") || line.contains("ERROR"))
            .take(20)
            .collect();
        panic!(
            "not every message was sent: {counts:?}; sim: {:?}; logs: {noteworthy:#?}",
            rig.sim.stats().await.unwrap().accounts
        );
    }
    let stats = rig.sim.stats().await.unwrap();
    let account = stats
        .accounts
        .iter()
        .find(|account| account.account == WHATSAPP.2)
        .expect("whatsapp stats");
    if account.refused > 0 {
        let calls = rig.sim.calls(&CallsQuery::default()).await.unwrap();
        if let Some(refused) = calls.iter().find(|call| call.status != Some(200)) {
            let around: Vec<(u64, Option<u16>, String)> = calls
                .iter()
                .filter(|call| call.time_ms + 1200 >= refused.time_ms && call.time_ms <= refused.time_ms + 50)
                .map(|call| {
                    (
                        call.time_ms,
                        call.status,
                        call.body["text"]["body"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            eprintln!(
                "refused at {} ms; the calls of the 1.2 s before: {around:?}",
                refused.time_ms
            );
        }
    }
    assert_eq!(account.refused, 0, "zero 429s: {account:?}");
    assert_eq!(account.violations, 0, "no second above the limit");
    assert!(account.max_accepted_in_one_second <= 80);
    let calls = rig.calls(Provider::Whatsapp).await;
    // Utilisation while a backlog waits: from the end of the offered load (before it, the
    // test's 300 Send calls per second compete for the same two cores) until the last 10%.
    let rate_between = |from: usize, to: usize| {
        (to - from) as f64 / ((calls[to].time_ms - calls[from].time_ms) as f64 / 1000.0)
    };
    let rate = rate_between(sent_while_offering.max(calls.len() / 10), calls.len() * 9 / 10);
    let overall = rate_between(0, calls.len() - 1);
    let utilisation = rate / 80.0;
    eprintln!(
        "achieved {rate:.1} msg/s of 80 while the backlog drained (utilisation {utilisation:.3}); {overall:.1} msg/s over the whole run ({sent_while_offering} sent while 300/s were offered); max in one second {}",
        account.max_accepted_in_one_second
    );
    assert!(utilisation >= 0.9, "utilisation {utilisation:.3} is at least 90%");
    drop(second);
}

// A broadcast backlog far deeper than the partition's prefetch must not delay a live reply:
// broadcasts beyond what the lanes hold wait in the database, so the live job is fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_reply_overtakes_a_broadcast_backlog_deeper_than_the_prefetch() {
    let rig = Rig::start(&[
        ("SWITCHBOARD__DELIVERY__SENDS_IN_FLIGHT", "16"),
        ("SWITCHBOARD__DELIVERY__REQUEUE_AFTER", "60s"),
    ])
    .await;
    limit_whatsapp(&rig, 20).await;
    let mut audience = Vec::new();
    for index in 0..10 {
        audience.push(rig.whatsapp_customer(&format!("165055507{index:02}"), 1).await.1);
    }
    let (_, live_conversation) = rig.whatsapp_customer("16505550799", 1).await;
    // 200 broadcasts (10 s of the account's 20/s), all queued before the live reply.
    let total = 200;
    let broadcasts = (0..total).map(|index| {
        rig.send_ok(send(
            &audience[index % audience.len()],
            text(&format!("offer {index}")),
            delivery::AuthorKind::Broadcast,
        ))
    });
    futures_util::stream::iter(broadcasts)
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let before_live = rig.calls(Provider::Whatsapp).await.len();
    let live = rig
        .send_ok(send(
            &live_conversation,
            text("live answer"),
            delivery::AuthorKind::Api,
        ))
        .await;
    rig.wait_status(&live.id, DeliveryStatus::Sent).await;
    let calls = rig.calls(Provider::Whatsapp).await;
    let position = calls
        .iter()
        .position(|call| call.body["text"]["body"] == "live answer")
        .expect("the live reply reached the provider");
    // Without the database wait the live job sits behind ~185 broadcasts in the queue.
    assert!(
        position < before_live + 40,
        "the live reply was call {position} of {} ({before_live} calls were made before it was sent)",
        calls.len()
    );
    // Every broadcast is still sent, once.
    switchboard_testkit::eventually(Duration::from_secs(60), "every broadcast sent", || async {
        (sent(&rig, "AND author_kind = 'broadcast'").await == total as i64).then_some(())
    })
    .await;
    let calls = rig.calls(Provider::Whatsapp).await;
    let offers = calls
        .iter()
        .filter(|call| {
            call.body["text"]["body"]
                .as_str()
                .is_some_and(|body| body.starts_with("offer "))
        })
        .count();
    assert_eq!(offers, total, "each broadcast reached the provider once");
    let stats = rig.sim.stats().await.unwrap();
    let account = stats
        .accounts
        .iter()
        .find(|account| account.account == WHATSAPP.2)
        .expect("whatsapp stats");
    assert_eq!((account.refused, account.violations), (0, 0), "{account:?}");
    rig.hooks.cleanup().await;
}
