//! The guards and the sweep against the local broker and PostgreSQL server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_messaging::lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use switchboard_messaging::lapin::types::{AMQPValue, FieldTable};
use switchboard_messaging::lapin::{Connection, ConnectionProperties, ExchangeKind};
use switchboard_testkit::cleanup::{self, NamespaceGuard};
use switchboard_testkit::names::HarnessNames;
use switchboard_testkit::{Harness, amqp_url, database_server_url};

/// Declares, under `namespace`, a quorum queue and its `.dlq`, a classic queue and the two
/// exchanges, as the binary and a test would.
async fn declare_namespace(namespace: &str) -> Vec<String> {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut quorum = FieldTable::default();
    quorum.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let queues = [
        format!("{namespace}contacts.inbound.p00"),
        format!("{namespace}contacts.inbound.p00.dlq"),
    ];
    for queue in &queues {
        channel
            .queue_declare(queue.as_str().into(), durable, quorum.clone())
            .await
            .unwrap();
    }
    let classic = format!("{namespace}e2e-subscriber.abc");
    channel
        .queue_declare(
            classic.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for exchange in ["switchboard.events", "switchboard.dlx"] {
        channel
            .exchange_declare(
                format!("{namespace}{exchange}").into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    let _ = connection.close(200, "declared".into()).await;
    let mut names = queues.to_vec();
    names.push(classic);
    names
}

/// The queues and exchanges of `namespace` on the broker (listed with `rabbitmqctl`).
fn on_broker(namespace: &str) -> Vec<String> {
    let mut names = Vec::new();
    for command in ["list_queues", "list_exchanges"] {
        let output = std::process::Command::new("rabbitmqctl")
            .args(["--quiet", command, "--no-table-headers", "name"])
            .output()
            .expect("rabbitmqctl runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        names.extend(
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter(|name| name.starts_with(namespace))
                .map(str::to_owned),
        );
    }
    names
}

async fn database_exists(name: &str) -> bool {
    let (client, connection) = tokio_postgres::connect(
        &format!("{}/postgres", database_server_url()),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    row.get::<_, i64>(0) == 1
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[tokio::test]
async fn a_namespace_guard_deletes_every_queue_and_exchange_under_its_namespace_also_on_panic() {
    let HarnessNames { namespace, .. } = Harness::Test.fresh_names(std::process::id());
    declare_namespace(&namespace).await;
    assert_eq!(on_broker(&namespace).len(), 5);

    let guarded = namespace.clone();
    let panicked = std::thread::spawn(move || {
        let _guard = NamespaceGuard::new(&amqp_url(), &guarded);
        panic!("the test fails while it holds the namespace");
    })
    .join();
    assert!(panicked.is_err());
    assert_eq!(on_broker(&namespace), Vec::<String>::new());
}

#[tokio::test]
async fn the_sweep_removes_a_gone_owners_namespace_and_database_and_keeps_a_live_ones() {
    let gone = Harness::Test.fresh_names(dead_pid());
    let live = Harness::Test.fresh_names(std::process::id());
    let bench = Harness::Bench.fresh_names(dead_pid());
    for names in [&gone, &live, &bench] {
        declare_namespace(&names.namespace).await;
        cleanup::DatabaseGuard::create(&database_server_url(), &names.database)
            .await
            .unwrap()
            .keep();
    }

    // (Another test process's sweep may remove the gone owner's names first: only the outcome
    // is asserted.)
    cleanup::sweep_stale(Harness::Test, &amqp_url(), Some(&database_server_url())).unwrap();

    assert_eq!(on_broker(&gone.namespace), Vec::<String>::new());
    assert!(!database_exists(&gone.database).await);
    // A live test's names stay, and so do the benches' (another harness sweeps those).
    assert_eq!(on_broker(&live.namespace).len(), 5);
    assert!(database_exists(&live.database).await);
    assert_eq!(on_broker(&bench.namespace).len(), 5);
    assert!(database_exists(&bench.database).await);

    // What a bench run left is a leftover until the benches' sweep; a live test's names never are.
    let left = cleanup::leftovers(Harness::Bench, &amqp_url(), Some(&database_server_url())).unwrap();
    assert!(
        left.contains(&format!("queue {}contacts.inbound.p00", bench.namespace)),
        "{left:?}"
    );
    assert!(left.contains(&format!("database {}", bench.database)), "{left:?}");
    let left = cleanup::leftovers(Harness::Test, &amqp_url(), Some(&database_server_url())).unwrap();
    assert!(
        !left.iter().any(|name| name.contains(&live.namespace)),
        "{left:?}"
    );
    assert!(!left.contains(&format!("database {}", live.database)), "{left:?}");
    cleanup::sweep_stale(Harness::Bench, &amqp_url(), Some(&database_server_url())).unwrap();
    assert_eq!(on_broker(&bench.namespace), Vec::<String>::new());
    assert!(!database_exists(&bench.database).await);

    let deleted = cleanup::delete_bus_namespace(&amqp_url(), &live.namespace, Vec::new()).unwrap();
    assert_eq!((deleted.queues, deleted.exchanges), (3, 2));
    cleanup::drop_database(&database_server_url(), &live.database).unwrap();
    assert!(!database_exists(&live.database).await);
}
