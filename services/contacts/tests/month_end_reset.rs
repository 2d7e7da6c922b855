//! The month-end reset against real PostgreSQL: only contacts carrying the workspace's reset
//! tag go, once per month, and a workspace that just turned it on loses nothing yet.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use switchboard_contacts::month_end_reset;
use switchboard_messaging::Partitions;
use switchboard_testkit::TestDatabase;

#[tokio::test]
async fn the_reset_erases_only_tagged_contacts_once_a_month() {
    let database = TestDatabase::create().await.unwrap();
    let pool = switchboard_postgres::connect(&database.config()).await.unwrap();
    switchboard_postgres::migrate(&pool, &switchboard_contacts::MIGRATIONS)
        .await
        .unwrap();
    let client = pool.get().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO contacts.settings (workspace_id, quota_reset_tag, quota_reset_month)
                 VALUES ('ws_a', 'trial', '2026-10-01'), ('ws_new', 'trial', NULL);
             INSERT INTO contacts.contacts (id, workspace_id, first_name, tags) VALUES
                 ('ct_a1', 'ws_a', 'Trial one', '{trial}'),
                 ('ct_a2', 'ws_a', 'Trial two', '{trial,vip}'),
                 ('ct_a3', 'ws_a', 'Customer', '{vip}'),
                 ('ct_b1', 'ws_b', 'Other workspace', '{trial}'),
                 ('ct_n1', 'ws_new', 'Just enabled', '{trial}');
             INSERT INTO contacts.identities (channel_account_id, channel_user_id, workspace_id, channel, contact_id)
                 VALUES ('chacc_1', '111', 'ws_a', 'sms', 'ct_a1');",
        )
        .await
        .unwrap();
    let november = Utc.with_ymd_and_hms(2026, 11, 1, 0, 5, 0).unwrap();
    assert_eq!(
        month_end_reset(&pool, &Partitions::uniform(1), november)
            .await
            .unwrap(),
        2
    );
    let left: Vec<String> = client
        .query("SELECT id FROM contacts.contacts ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(left, vec!["ct_a3", "ct_b1", "ct_n1"]);
    let identities: i64 = client
        .query_one("SELECT count(*) FROM contacts.identities", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(identities, 0);
    let tombstones: i64 = client
        .query_one(
            "SELECT count(*) FROM contacts.outbox WHERE event_type = 'contact.erased'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tombstones, 2);
    // Later the same month: nothing more; next month: the newly enabled workspace's turn.
    client
        .batch_execute(
            "INSERT INTO contacts.contacts (id, workspace_id, tags) VALUES ('ct_a4', 'ws_a', '{trial}')",
        )
        .await
        .unwrap();
    assert_eq!(
        month_end_reset(&pool, &Partitions::uniform(1), november)
            .await
            .unwrap(),
        0
    );
    let december = Utc.with_ymd_and_hms(2026, 12, 1, 0, 5, 0).unwrap();
    assert_eq!(
        month_end_reset(&pool, &Partitions::uniform(1), december)
            .await
            .unwrap(),
        2
    );
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM contacts.contacts WHERE tags @> '{trial}'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 1, "only the other workspace's");
}
