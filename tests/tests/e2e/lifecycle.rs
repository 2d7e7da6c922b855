use std::time::Duration;

use switchboard_e2e::{Switchboard, isolated_env, run_to_end};
use switchboard_testkit::TestDatabase;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn all_mode_serves_probes_metrics_and_grpc_health_then_drains_on_sigterm() {
    let database = TestDatabase::create().await.unwrap();
    let mut switchboard = Switchboard::start(&["--target", "all"], &isolated_env(&database));

    assert_eq!(switchboard.admin_status("/livez").await, 200);
    switchboard.wait_ready_status(200, Duration::from_secs(15)).await;
    let readyz = switchboard.admin_text("/readyz").await;
    assert!(
        readyz.contains("postgres: ok") && readyz.contains("rabbitmq: ok"),
        "{readyz}"
    );
    let metrics = switchboard.admin_text("/metrics").await;
    assert!(metrics.contains("switchboard_bus_connected 1"), "{metrics}");
    assert!(
        metrics
            .lines()
            .filter(|line| line.starts_with("# TYPE"))
            .all(|line| line.contains("switchboard_"))
    );

    for service in ["", "switchboard.tenancy.v1.ChannelAccountService"] {
        switchboard
            .wait_grpc_health(service, ServingStatus::Serving, Duration::from_secs(5))
            .await;
    }

    // SIGTERM: readiness turns 503 at once (the drain delay is 1s), then the process exits 0.
    switchboard.signal("TERM");
    switchboard
        .wait_ready_status(503, Duration::from_millis(900))
        .await;
    assert_eq!(
        switchboard.admin_status("/livez").await,
        200,
        "alive while draining"
    );
    let status = switchboard.wait(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "logs:\n{}", switchboard.logs().join("\n"));
}

#[tokio::test]
async fn the_healthcheck_subcommand_reports_the_probe_result() {
    let database = TestDatabase::create().await.unwrap();
    let switchboard = Switchboard::start(&["--target", "all"], &isolated_env(&database));
    let livez = format!("{}/livez", switchboard.admin);
    let (status, _, stderr) = run_to_end(&["healthcheck", &livez], &[]);
    assert!(status.success(), "{stderr}");
    let (status, _, stderr) = run_to_end(&["healthcheck", "http://127.0.0.1:9/livez"], &[]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
}

#[tokio::test]
async fn a_second_signal_forces_exit() {
    let database = TestDatabase::create().await.unwrap();
    let mut env = isolated_env(&database);
    env.push(("SWITCHBOARD__SHUTDOWN__DRAIN_DELAY".to_owned(), "30s".to_owned()));
    let mut switchboard = Switchboard::start(&[], &env);
    switchboard.wait_ready_status(200, Duration::from_secs(15)).await;
    switchboard.signal("TERM");
    switchboard.wait_ready_status(503, Duration::from_secs(2)).await;
    switchboard.signal("INT");
    let status = switchboard.wait(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(130));
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services_without_a_key() {
    use tonic_reflection::pb::{v1, v1alpha};

    let database = TestDatabase::create().await.unwrap();
    let switchboard = Switchboard::start(&[], &isolated_env(&database));
    let channel = switchboard.channel().await;

    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(futures_util::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
    for expected in [
        "switchboard.tenancy.v1.ChannelAccountService",
        "switchboard.tenancy.v1.WorkspaceAdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} missing from {names:?}"
        );
    }

    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = v1alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(futures_util::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    assert!(
        responses.message().await.unwrap().is_some(),
        "v1alpha answers too (older grpcurl)"
    );
}
