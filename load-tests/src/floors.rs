//! The machine's floors, measured in the same run as a figure so the figure can be reported as
//! a ratio: a bare lapin consume + ack, and PostgreSQL single-row inserts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;

/// Connections of the PostgreSQL floor.
pub const INSERT_CONNECTIONS: u64 = 16;
/// Prefetch of the consume floor.
const CONSUME_PREFETCH: u16 = 8;

/// One bare lapin consumer on a quorum queue holding `count` messages, prefetch 8, acking each
/// delivery; returns messages per second.
pub async fn consume_floor(amqp_url: &str, queue: &str, count: u64) -> anyhow::Result<f64> {
    let connection = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(CONSUME_PREFETCH, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "bench-floor".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let started = Instant::now();
    let mut acked = 0;
    while acked < count {
        let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .context("the consume floor stalled")?
            .context("the floor consumer ended")??;
        delivery.acker.ack(BasicAckOptions::default()).await?;
        acked += 1;
    }
    let rate = acked as f64 / started.elapsed().as_secs_f64();
    let _ = channel.close(200, "done".into()).await;
    let _ = connection.close(200, "done".into()).await;
    Ok(rate)
}

/// `inserts` single-row autocommit inserts over 16 connections into `table` (created by
/// `create` on each connection, columns `id bigint, workspace_id text, payload text`); returns
/// inserts per second.
pub async fn insert_floor(
    database_url: &str,
    create: &str,
    table: &str,
    inserts: u64,
) -> anyhow::Result<f64> {
    let clients = connect_all(database_url, INSERT_CONNECTIONS as usize).await?;
    for client in &clients {
        client.batch_execute(create).await?;
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for client in clients {
        let (next, table) = (next.clone(), table.to_owned());
        workers.spawn(async move {
            let statement = client
                .prepare(&format!(
                    "INSERT INTO {table} (id, workspace_id, payload) VALUES ($1, $2, $3)"
                ))
                .await?;
            loop {
                let id = next.fetch_add(1, Ordering::Relaxed);
                if id >= inserts {
                    return Ok::<(), tokio_postgres::Error>(());
                }
                let id = i64::try_from(id).unwrap_or(i64::MAX);
                let payload = format!("floor row {id} with about sixty bytes of text in it ......");
                client.execute(&statement, &[&id, &"ws_floor", &payload]).await?;
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined??;
    }
    Ok(inserts as f64 / started.elapsed().as_secs_f64())
}

/// Rows per statement of the batch-insert floor.
const BATCH_ROWS: usize = 1_000;
/// Connections of the batch-insert floor.
const BATCH_CONNECTIONS: usize = 4;

/// `rows` rows inserted `BATCH_ROWS` per statement (`unnest` of arrays) over 4 connections
/// into a fresh table `table`; returns rows per second.
pub async fn batch_insert_floor(database_url: &str, table: &str, rows: u64) -> anyhow::Result<f64> {
    let clients = connect_all(database_url, BATCH_CONNECTIONS).await?;
    if let Some(first) = clients.first() {
        first
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (id bigint PRIMARY KEY, workspace_id text, payload text)"
            ))
            .await?;
    }
    let batches = rows.div_ceil(BATCH_ROWS as u64);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for client in clients {
        let (next, table) = (next.clone(), table.to_owned());
        workers.spawn(async move {
            let statement = client
                .prepare(&format!(
                    "INSERT INTO {table} (id, workspace_id, payload)
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])"
                ))
                .await?;
            loop {
                let batch = next.fetch_add(1, Ordering::Relaxed);
                if batch >= batches {
                    return Ok::<(), tokio_postgres::Error>(());
                }
                let first = batch * BATCH_ROWS as u64;
                let ids: Vec<i64> = (first..(first + BATCH_ROWS as u64).min(rows))
                    .map(|id| i64::try_from(id).unwrap_or(i64::MAX))
                    .collect();
                let workspaces = vec!["ws_floor"; ids.len()];
                let payloads: Vec<String> = ids
                    .iter()
                    .map(|id| format!("floor row {id} with about sixty bytes of text in it ......"))
                    .collect();
                client
                    .execute(&statement, &[&ids, &workspaces, &payloads])
                    .await?;
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined??;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// `count` connections to `database_url`, their driver tasks spawned.
async fn connect_all(database_url: &str, count: usize) -> anyhow::Result<Vec<tokio_postgres::Client>> {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        clients.push(client);
    }
    Ok(clients)
}
