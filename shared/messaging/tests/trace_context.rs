//! Trace context over AMQP, in its own test binary: it installs a thread-local subscriber,
//! which must not race with other tests' spans for callsite interest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "it/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::Duration;

use switchboard_testkit::eventually;

use helpers::{TestBus, header_text, outgoing};

#[tokio::test]
async fn the_publisher_span_context_travels_in_amqp_headers() {
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_sdk::trace::InMemorySpanExporter::default())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let test = TestBus::start(switchboard_testkit::bus_config()).await;
    let queue = test.bus.queue("it", "inbound");
    test.declare(std::slice::from_ref(&queue)).await;
    let webhook = tracing::info_span!("webhook");
    let trace_id = webhook.context().span().span_context().trace_id().to_string();
    test.bus
        .publisher()
        .publish(outgoing(
            &test.bus,
            "inbound.telegram.message_received",
            "evt_traced",
            "",
        ))
        .instrument(webhook)
        .await
        .unwrap();
    let message = eventually(Duration::from_secs(5), "the traced message", || async {
        test.get_one(&queue.name).await
    })
    .await;
    let headers = message.delivery.properties.headers().clone().unwrap();
    let traceparent = header_text(&headers, "traceparent").expect("traceparent header");
    assert!(
        traceparent.contains(&trace_id),
        "{traceparent} should carry trace {trace_id}"
    );
    test.cleanup(&[queue]).await;
}
