//! What a scenario must leave behind, read from PostgreSQL (and the broker's dead-letter
//! queues), never from logs: every accepted webhook exactly once in routing's history, in each
//! sender's order, one contact per sender, an empty spool, no dead letters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::load::{ACCOUNT, LoadReport, Traffic};

/// The stored outcome of a run.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Accepted webhooks missing from the history (`sender-n`, at most 20 listed).
    pub missing: Vec<String>,
    /// How many accepted webhooks are missing in all.
    pub missing_count: usize,
    /// Messages in the history (this run's).
    pub stored: usize,
    /// Stored although never answered 2xx (the answer was lost; stored once: allowed).
    pub stored_unanswered: usize,
    /// Senders whose history is not in send order, with their order as stored (at most 5).
    pub out_of_order: Vec<(usize, Vec<usize>)>,
    /// Conversations holding messages of more than one sender, or a sender in two.
    pub mixed_conversations: usize,
    /// Contacts of the chaos account's senders.
    pub contacts: i64,
    /// Identities of the chaos account.
    pub identities: i64,
    /// Events left in the ingress spool.
    pub spooled: i64,
    /// Messages in the namespace's dead-letter queues.
    pub dead_lettered: u64,
    /// Dead letters the scenario put there on purpose (poison).
    pub expected_dead_letters: u64,
}

impl Outcome {
    /// The failures, in words (empty when the run kept every promise).
    pub fn failures(&self, senders: usize) -> Vec<String> {
        let mut failures = Vec::new();
        if self.missing_count > 0 {
            failures.push(format!(
                "{} accepted webhooks never reached routing's history, e.g. {:?}",
                self.missing_count, self.missing
            ));
        }
        if !self.out_of_order.is_empty() {
            failures.push(format!(
                "senders' messages out of send order in the history: {:?}",
                self.out_of_order
            ));
        }
        if self.mixed_conversations > 0 {
            failures.push(format!(
                "{} conversations mix senders or split one",
                self.mixed_conversations
            ));
        }
        let senders = i64::try_from(senders).unwrap_or(i64::MAX);
        if self.contacts != senders || self.identities != senders {
            failures.push(format!(
                "{} contacts and {} identities for {senders} senders",
                self.contacts, self.identities
            ));
        }
        if self.spooled != 0 {
            failures.push(format!("{} events still in the spool", self.spooled));
        }
        if self.dead_lettered != self.expected_dead_letters {
            failures.push(format!(
                "{} messages dead-lettered ({} expected)",
                self.dead_lettered, self.expected_dead_letters
            ));
        }
        failures
    }

    /// One line for a report.
    pub fn summary(&self) -> String {
        format!(
            "{} messages stored ({} whose 2xx was lost), {} missing, {} senders out of order, {} contacts, {} identities, spool {}, dead letters {}",
            self.stored,
            self.stored_unanswered,
            self.missing_count,
            self.out_of_order.len(),
            self.contacts,
            self.identities,
            self.spooled,
            self.dead_lettered
        )
    }
}

/// A connection to the run's database.
pub async fn connect(database_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .context("connect to the run's database")?;
    tokio::spawn(connection);
    Ok(client)
}

/// Waits until routing's history holds every accepted webhook of `traffic` (or `timeout`
/// passes), then reads the whole outcome.
pub async fn settle(
    database_url: &str,
    namespace: &str,
    traffic: &Traffic,
    load: &LoadReport,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + timeout;
    let accepted = load.accepted();
    loop {
        // A fresh connection per look: the database may have restarted under the scenario.
        let stored = match connect(database_url).await {
            Ok(db) => count_stored(&db, traffic).await.unwrap_or(0),
            Err(_) => 0,
        };
        let spooled = match connect(database_url).await {
            Ok(db) => db
                .query_one("SELECT count(*) FROM ingress.spool", &[])
                .await
                .map_or(1, |row| row.get::<_, i64>(0)),
            Err(_) => 1,
        };
        if (stored >= accepted && spooled == 0) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let db = connect(database_url).await?;
    let mut outcome = read(&db, traffic, load).await?;
    outcome.dead_lettered = dead_letters(namespace).await?;
    Ok(outcome)
}

async fn count_stored(db: &tokio_postgres::Client, traffic: &Traffic) -> anyhow::Result<usize> {
    let row = db
        .query_one(
            "SELECT count(*) FROM routing.messages WHERE channel_account_id = $1 AND provider_message_id LIKE $2",
            &[&ACCOUNT, &format!("wamid.{}-%", traffic.label)],
        )
        .await?;
    Ok(usize::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

async fn read(db: &tokio_postgres::Client, traffic: &Traffic, load: &LoadReport) -> anyhow::Result<Outcome> {
    let rows = db
        .query(
            "SELECT conversation_id, provider_message_id FROM routing.messages
             WHERE channel_account_id = $1 AND provider_message_id LIKE $2
             ORDER BY conversation_id, provider_timestamp, arrival",
            &[&ACCOUNT, &format!("wamid.{}-%", traffic.label)],
        )
        .await?;
    let mut outcome = Outcome {
        stored: rows.len(),
        ..Outcome::default()
    };
    let mut by_conversation: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
    for row in &rows {
        let id: String = row.get(1);
        let parsed = traffic
            .parse_message_id(&id)
            .with_context(|| format!("unexpected message id {id}"))?;
        by_conversation.entry(row.get(0)).or_default().push(parsed);
    }
    let mut stored_per_sender: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for messages in by_conversation.values() {
        let sender = messages[0].0;
        if messages.iter().any(|(other, _)| *other != sender) || stored_per_sender.contains_key(&sender) {
            outcome.mixed_conversations += 1;
        }
        stored_per_sender
            .entry(sender)
            .or_default()
            .extend(messages.iter().map(|(_, n)| *n));
    }
    for (sender, &accepted) in load.accepted_per_sender.iter().enumerate() {
        let stored = stored_per_sender.get(&sender).cloned().unwrap_or_default();
        for n in 0..accepted {
            if !stored.contains(&n) {
                outcome.missing_count += 1;
                if outcome.missing.len() < 20 {
                    outcome.missing.push(format!("{sender}-{n}"));
                }
            }
        }
        outcome.stored_unanswered += stored.iter().filter(|n| **n >= accepted).count();
        if stored.windows(2).any(|pair| pair[0] >= pair[1]) && outcome.out_of_order.len() < 5 {
            outcome.out_of_order.push((sender, stored));
        }
    }
    outcome.identities = db
        .query_one(
            "SELECT count(*) FROM contacts.identities WHERE channel_account_id = $1",
            &[&ACCOUNT],
        )
        .await?
        .get(0);
    outcome.contacts = db
        .query_one(
            "SELECT count(DISTINCT c.id) FROM contacts.contacts c
             JOIN contacts.identities i ON i.contact_id = c.id
             WHERE i.channel_account_id = $1",
            &[&ACCOUNT],
        )
        .await?
        .get(0);
    outcome.spooled = db
        .query_one("SELECT count(*) FROM ingress.spool", &[])
        .await?
        .get(0);
    Ok(outcome)
}

/// The dead letters of `namespace` once they number at least `expected` (or `timeout`
/// passes): the broker reports a quorum queue's depth some seconds late.
pub async fn dead_letters_reaching(namespace: &str, expected: u64, timeout: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let count = dead_letters(namespace).await?;
        if count >= expected || Instant::now() >= deadline {
            return Ok(count);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Messages waiting in the dead-letter queues of bus `namespace` (listed with `rabbitmqctl`).
pub async fn dead_letters(namespace: &str) -> anyhow::Result<u64> {
    let output = tokio::process::Command::new("rabbitmqctl")
        .args(["list_queues", "--quiet", "--no-table-headers", "name", "messages"])
        .output()
        .await
        .context("run rabbitmqctl list_queues")?;
    anyhow::ensure!(
        output.status.success(),
        "rabbitmqctl list_queues: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(name, _)| name.starts_with(namespace) && name.ends_with(".dlq"))
        .filter_map(|(_, messages)| messages.trim().parse::<u64>().ok())
        .sum())
}
