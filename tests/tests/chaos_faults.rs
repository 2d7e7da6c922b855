//! The fault suite at CI size (`switchboard_load_tests::chaos`): the real binary under signed
//! webhook load while the broker stops, a process is killed, or duplicates storm in, with the
//! stored outcome checked in PostgreSQL. The same scenarios run at bench size in `make chaos`.
//! They stop and start the shared local services, so they run alone (the `chaos_` serial pass).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_load_tests::chaos::{Scale, ScenarioReport, Setup, replicas, scenarios};

fn setup() -> Setup {
    Setup {
        binary: switchboard_e2e::binary_path().to_string_lossy().into_owned(),
        amqp_url: switchboard_testkit::amqp_url(),
        database_server: switchboard_testkit::database_server_url(),
        extra_env: Vec::new(),
        provider: None,
    }
}

fn assert_kept_every_promise(report: &ScenarioReport) {
    println!("{}", report.text());
    assert!(report.failures.is_empty(), "{}", report.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_a_broker_outage_under_load_loses_nothing() {
    let report = scenarios::broker_outage(&setup(), Scale::Ci).await.unwrap();
    assert_kept_every_promise(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_a_killed_process_loses_nothing_and_its_partitions_are_taken_over() {
    let report = scenarios::process_killed(&setup(), Scale::Ci).await.unwrap();
    assert_kept_every_promise(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_a_database_restart_under_consumers_and_sends_dead_letters_nothing() {
    let report = scenarios::database_restart(&setup(), Scale::Ci).await.unwrap();
    assert_kept_every_promise(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_a_graceful_shutdown_under_load_answers_every_request_correctly() {
    let report = scenarios::graceful_shutdown(&setup(), Scale::Ci).await.unwrap();
    assert_kept_every_promise(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_poison_is_dead_lettered_beside_flowing_traffic_and_the_operator_lists_and_replays_it() {
    let report = scenarios::poison_message(&setup(), Scale::Ci).await.unwrap();
    assert_kept_every_promise(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_a_duplicate_storm_is_one_message_and_one_first_message_effect_each() {
    let report = scenarios::duplicate_storm(&setup(), Scale::Ci).await.unwrap();
    assert_kept_every_promise(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_three_contacts_replicas_split_the_partitions_and_close_ranks_when_one_is_killed() {
    let report = replicas::replicas_split(&setup(), Scale::Ci).await.unwrap();
    assert_kept_every_promise(&report);
}
