//! The broker's queues and exchanges: listed with `rabbitmqctl` (a local broker, as on CI and a
//! Debian install) or the management API (as in `deploy/compose.yaml`), deleted over AMQP.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use switchboard_messaging::lapin::{Connection, ConnectionProperties};

use crate::cleanup::Deleted;

/// Longest wait for the broker's AMQP handshake.
const AMQP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a listing (`rabbitmqctl` boots an Erlang VM).
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// One queue as the broker lists it.
pub(crate) struct ListedQueue {
    pub(crate) name: String,
    pub(crate) consumers: u64,
}

/// The broker's queues and exchanges in the AMQP URL's virtual host.
pub(crate) struct Listing {
    pub(crate) queues: Vec<ListedQueue>,
    pub(crate) exchanges: Vec<String>,
}

/// Lists the broker's queues and exchanges: with `rabbitmqctl` when the broker is on this
/// machine, else (or when that fails) through the management API on port 15672.
pub(crate) async fn list_broker(amqp_url: &str) -> anyhow::Result<Listing> {
    let url = reqwest::Url::parse(amqp_url).context("parse the AMQP URL")?;
    let vhost = match percent_decode(url.path().trim_start_matches('/')) {
        vhost if vhost.is_empty() => "/".to_owned(),
        vhost => vhost,
    };
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]" | "::1"));
    let rabbitmqctl = if local {
        list_with_rabbitmqctl(&vhost).await
    } else {
        Err(anyhow::anyhow!("the broker is not on this machine"))
    };
    match rabbitmqctl {
        Ok(listing) => Ok(listing),
        Err(rabbitmqctl_error) => list_with_management_api(&url, &vhost)
            .await
            .with_context(|| format!("rabbitmqctl failed too: {rabbitmqctl_error:#}")),
    }
}

async fn list_with_rabbitmqctl(vhost: &str) -> anyhow::Result<Listing> {
    let queues = rabbitmqctl_rows(vhost, &["list_queues", "name", "consumers"]).await?;
    let exchanges = rabbitmqctl_rows(vhost, &["list_exchanges", "name"]).await?;
    Ok(Listing {
        queues: queues
            .iter()
            .filter_map(|row| {
                let (name, consumers) = row.split_once('\t')?;
                Some(ListedQueue {
                    name: name.to_owned(),
                    consumers: consumers.trim().parse().unwrap_or(0),
                })
            })
            .collect(),
        exchanges,
    })
}

/// The rows `rabbitmqctl <command> … <columns>` prints for `vhost` (tab-separated columns).
async fn rabbitmqctl_rows(vhost: &str, command: &[&str]) -> anyhow::Result<Vec<String>> {
    let (name, columns) = command.split_first().context("a rabbitmqctl command")?;
    let output = tokio::time::timeout(
        LIST_TIMEOUT,
        tokio::process::Command::new("rabbitmqctl")
            .args(["--quiet", name, "--no-table-headers", "-p", vhost])
            .args(columns)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("rabbitmqctl timed out")?
    .context("run rabbitmqctl")?;
    anyhow::ensure!(
        output.status.success(),
        "rabbitmqctl {name}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

async fn list_with_management_api(url: &reqwest::Url, vhost: &str) -> anyhow::Result<Listing> {
    let host = url.host_str().context("the AMQP URL has no host")?;
    let base = format!("http://{host}:15672/api");
    let vhost = percent_encode(vhost);
    let client = reqwest::Client::builder().timeout(LIST_TIMEOUT).build()?;
    let get = |path: String| {
        client
            .get(format!("{base}/{path}"))
            .basic_auth(percent_decode(url.username()), url.password().map(percent_decode))
            .send()
    };
    let queues: Vec<serde_json::Value> = get(format!("queues/{vhost}?columns=name,consumers"))
        .await
        .context("reach the management API")?
        .error_for_status()?
        .json()
        .await?;
    let exchanges: Vec<serde_json::Value> = get(format!("exchanges/{vhost}?columns=name"))
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(Listing {
        queues: queues
            .iter()
            .filter_map(|queue| {
                Some(ListedQueue {
                    name: queue["name"].as_str()?.to_owned(),
                    consumers: queue["consumers"].as_u64().unwrap_or(0),
                })
            })
            .collect(),
        exchanges: exchanges
            .iter()
            .filter_map(|exchange| Some(exchange["name"].as_str()?.to_owned()))
            .collect(),
    })
}

/// Deletes `queues` and `exchanges` over AMQP (a missing one is no error).
pub(crate) async fn delete_objects(
    amqp_url: &str,
    queues: &BTreeSet<String>,
    exchanges: &BTreeSet<String>,
) -> anyhow::Result<Deleted> {
    let connection = tokio::time::timeout(
        AMQP_TIMEOUT,
        Connection::connect(amqp_url, ConnectionProperties::default()),
    )
    .await
    .context("the broker did not answer the AMQP handshake")?
    .context("connect to the broker")?;
    let mut deleted = Deleted::default();
    let mut channel = connection.create_channel().await?;
    for queue in queues {
        match channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await
        {
            Ok(_) => deleted.queues += 1,
            // A failed method closes its channel; carry on with a new one.
            Err(_) => channel = connection.create_channel().await?,
        }
    }
    for exchange in exchanges {
        match channel
            .exchange_delete(exchange.as_str().into(), Default::default())
            .await
        {
            Ok(()) => deleted.exchanges += 1,
            Err(_) => channel = connection.create_channel().await?,
        }
    }
    let _ = connection.close(200, "cleaned up".into()).await;
    Ok(deleted)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => char::from(byte).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosts_round_trip_through_percent_encoding() {
        assert_eq!(percent_decode("%2f"), "/");
        assert_eq!(percent_decode("a%2Fb%zz"), "a/b%zz");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("tests.v1"), "tests.v1");
    }
}
