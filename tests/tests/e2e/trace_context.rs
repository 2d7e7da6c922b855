use std::time::Duration;

use fake_opentelemetry_collector::FakeCollectorServer;
use switchboard_e2e::{Switchboard, authorized, isolated_env};
use switchboard_proto::common::v1::Channel;
use switchboard_proto::tenancy::v1 as tenancy;
use switchboard_proto::tenancy::v1::channel_account_service_client::ChannelAccountServiceClient;
use switchboard_testkit::TestDatabase;

use crate::auth::workspace_with_key;

#[tokio::test]
async fn spans_continue_the_callers_trace_through_grpc_and_the_bus_and_reach_the_otlp_collector() {
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let database = TestDatabase::create().await.unwrap();
    let mut env = isolated_env(&database);
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), collector.endpoint()));
    let mut switchboard = Switchboard::start(&[], &env);
    switchboard.wait_ready_status(200, Duration::from_secs(15)).await;
    let key = workspace_with_key(&switchboard, "ws_traced").await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = authorized(
        tenancy::CreateChannelAccountRequest {
            channel: Channel::Sms as i32,
            name: "Traced number".to_owned(),
            external_id: "+15550001111".to_owned(),
            ..Default::default()
        },
        &key,
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{caller_span}-01").parse().unwrap(),
    );
    ChannelAccountServiceClient::new(switchboard.channel().await)
        .create_channel_account(request)
        .await
        .unwrap();

    // Shutdown flushes the batch exporter.
    switchboard.signal("TERM");
    assert_eq!(switchboard.wait(Duration::from_secs(20)).await.code(), Some(0));
    let spans = collector.exported_spans(2, Duration::from_secs(10)).await;
    let ours: Vec<_> = spans.iter().filter(|span| span.trace_id == trace_id).collect();
    let server = ours
        .iter()
        .find(|span| span.name == "grpc request")
        .unwrap_or_else(|| panic!("no grpc span in trace {trace_id}: {spans:#?}"));
    assert_eq!(
        server.parent_span_id, caller_span,
        "the server span continues the caller's span"
    );
    let publish = ours
        .iter()
        .find(|span| span.name == "bus publish")
        .unwrap_or_else(|| panic!("no bus publish span in trace {trace_id}: {ours:#?}"));
    assert!(
        publish
            .attributes
            .values()
            .any(|value| value.contains("channel_account_changed"))
    );
}
