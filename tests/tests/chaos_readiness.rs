//! The binary's readiness follows RabbitMQ: stopped → `/readyz` 503 and gRPC health
//! NOT_SERVING; started again → 200 and SERVING, without restarting the process. This test
//! stops the shared local broker, so it runs alone (the Makefile's serial `chaos_` pass) and
//! always starts the broker again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchboard_e2e::{Switchboard, isolated_env};
use switchboard_testkit::TestDatabase;
use switchboard_testkit::broker::stop_broker;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_readiness_follows_the_broker_without_a_restart() {
    let database = TestDatabase::create().await.unwrap();
    let mut switchboard = Switchboard::start(&[], &isolated_env(&database));
    switchboard.wait_ready_status(200, Duration::from_secs(15)).await;
    switchboard
        .wait_grpc_health("", ServingStatus::Serving, Duration::from_secs(5))
        .await;

    let guard = tokio::task::spawn_blocking(stop_broker).await.unwrap();
    switchboard.wait_ready_status(503, Duration::from_secs(15)).await;
    let readyz = switchboard.admin_text("/readyz").await;
    assert!(
        readyz.contains("rabbitmq: failing") && readyz.contains("postgres: ok"),
        "{readyz}"
    );
    switchboard
        .wait_grpc_health("", ServingStatus::NotServing, Duration::from_secs(5))
        .await;
    assert_eq!(
        switchboard.admin_status("/livez").await,
        200,
        "a broker outage must not fail liveness"
    );

    tokio::task::spawn_blocking(move || guard.start()).await.unwrap();
    switchboard.wait_ready_status(200, Duration::from_secs(60)).await;
    switchboard
        .wait_grpc_health("", ServingStatus::Serving, Duration::from_secs(5))
        .await;

    switchboard.signal("TERM");
    assert_eq!(switchboard.wait(Duration::from_secs(20)).await.code(), Some(0));
}
