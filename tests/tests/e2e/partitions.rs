//! Partition counts per event family through the real binary: ingress publishes each sender's
//! events to its partition among the `inbound` family's own count, and contacts and routing,
//! each family with a different count, still carry every message into history.

use std::collections::BTreeSet;
use std::time::Duration;

use switchboard_e2e::webhooks::{WebhookSwitchboard, whatsapp_text};
use switchboard_messaging::partition_for;
use switchboard_testkit::TestDatabase;

const SENDERS: usize = 12;

fn sender(index: usize) -> String {
    format!("1650555{index:04}")
}

#[tokio::test]
async fn each_family_has_its_own_partition_count_and_ingress_publishes_on_it() {
    let hooks = WebhookSwitchboard::start(&[("SWITCHBOARD__BUS__FAMILY_PARTITIONS__INBOUND", "3")]).await;
    for index in 0..SENDERS {
        let body = whatsapp_text(&format!("wamid.family-{index}"), &sender(index), "hello");
        assert_eq!(hooks.post_whatsapp(&body, None).await.status(), 200);
    }
    let queues: Vec<String> = (0..3_u16)
        .map(|partition| format!("{}contacts.inbound.p{partition:02}", hooks.namespace))
        .collect();
    for queue in &queues {
        hooks.wait_for_queue(queue, Duration::from_secs(10)).await;
    }
    let waiting = switchboard_testkit::eventually(Duration::from_secs(10), "every event queued", || async {
        let mut depths = Vec::new();
        for queue in &queues {
            depths.push(hooks.depth(queue).await as usize);
        }
        (depths.iter().sum::<usize>() == SENDERS).then_some(depths)
    })
    .await;
    let mut seen = BTreeSet::new();
    for (partition, (queue, count)) in (0_u16..).zip(queues.iter().zip(&waiting)) {
        for event in hooks.read_queue(queue, *count, Duration::from_secs(10)).await {
            assert_eq!(
                partition_for(&event.envelope.partition_key, 3),
                partition,
                "{} is on the partition its key maps to among 3",
                event.envelope.event_id
            );
            seen.insert(event.envelope.event_id);
        }
    }
    let used = waiting.iter().filter(|count| **count > 0).count();
    assert_eq!(
        seen.len(),
        SENDERS,
        "every webhook's event is on one of the 3 queues"
    );
    assert!(
        used > 1,
        "12 senders spread over more than one of 3 partitions: {waiting:?}"
    );
    hooks.cleanup().await;
}

#[tokio::test]
async fn families_with_different_counts_still_carry_every_message_into_history() {
    let hooks = WebhookSwitchboard::start_targets(
        "all",
        &[
            ("SWITCHBOARD__BUS__FAMILY_PARTITIONS__INBOUND", "3"),
            ("SWITCHBOARD__BUS__FAMILY_PARTITIONS__CONTACT", "2"),
        ],
    )
    .await;
    for index in 0..SENDERS {
        let body = whatsapp_text(&format!("wamid.mixed-{index}"), &sender(index), "hello");
        assert_eq!(hooks.post_whatsapp(&body, None).await.status(), 200);
    }
    let client = hooks.database.connect().await;
    switchboard_testkit::eventually(Duration::from_secs(30), "every message in history", || async {
        (TestDatabase::count(&client, "SELECT count(*) FROM routing.messages").await == SENDERS as i64)
            .then_some(())
    })
    .await;
    for queue in [
        "contacts.inbound.p02",
        "routing.contact.p01",
        "delivery.receipts.p02",
    ] {
        hooks
            .wait_for_queue(&format!("{}{queue}", hooks.namespace), Duration::from_secs(10))
            .await;
    }
    hooks.cleanup().await;
}
