//! The scenarios. Each returns what it measured and which promises broke (none, when the
//! system keeps them); an `Err` means the harness itself could not run.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use switchboard_testkit::broker::stop_broker;

use super::checks::{self, Outcome};
use super::load::{self, LoadReport, Traffic};
use super::rig::{Rig, Setup};
use super::sends;

/// How big a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Small enough for every CI run (`make test`).
    Ci,
    /// The sizes the issue asks for (`make chaos`).
    Bench,
}

/// What one scenario did.
#[derive(Debug)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub name: &'static str,
    /// What was injected, how much load, what was stored.
    pub lines: Vec<String>,
    /// Promises broken (empty: none).
    pub failures: Vec<String>,
}

impl ScenarioReport {
    pub(super) fn new(name: &'static str) -> Self {
        Self {
            name,
            lines: Vec::new(),
            failures: Vec::new(),
        }
    }

    pub(super) fn line(&mut self, line: String) {
        eprintln!("{}: {line}", self.name);
        self.lines.push(line);
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let mut text = format!("== {}\n", self.name);
        for line in &self.lines {
            text.push_str(&format!("   {line}\n"));
        }
        if self.failures.is_empty() {
            text.push_str("   PASSED: nothing accepted was lost or doubled\n");
        } else {
            for failure in &self.failures {
                text.push_str(&format!("   FAILED: {failure}\n"));
            }
        }
        text
    }

    pub(super) fn outcome(&mut self, load: &LoadReport, outcome: &Outcome, senders: usize) {
        self.line(format!("load: {}", load.summary()));
        self.line(format!("stored: {}", outcome.summary()));
        if load.gave_up > 0 {
            self.failures.push(format!(
                "{} senders gave up: a message was never accepted",
                load.gave_up
            ));
        }
        self.failures.extend(outcome.failures(senders));
    }
}

/// Longest a broker or database command may take: a broker stuck stopping must fail the
/// scenario, not hang it.
const SERVICE_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a blocking service command (`rabbitmqctl`, `pg_ctlcluster`) on a blocking thread,
/// bounded by [`SERVICE_COMMAND_TIMEOUT`].
async fn bounded<T: Send + 'static>(
    what: &str,
    command: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    tokio::time::timeout(SERVICE_COMMAND_TIMEOUT, tokio::task::spawn_blocking(command))
        .await
        .with_context(|| format!("{what} did not finish within {SERVICE_COMMAND_TIMEOUT:?}"))?
        .with_context(|| format!("{what} failed"))
}

/// A unique label for a run's message ids.
fn label() -> String {
    format!("CHAOS{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// `senders` × `per_sender` webhooks at up to `rate` req/s, with this run's label and time.
pub(super) fn traffic(senders: usize, per_sender: usize, rate: u32, give_up_after: Duration) -> Traffic {
    Traffic {
        senders,
        per_sender,
        rate,
        label: label(),
        give_up_after,
        timestamp: chrono::Utc::now().timestamp(),
    }
}

/// How long `traffic` takes at its rate.
pub(super) fn planned(traffic: &Traffic) -> Duration {
    Duration::from_secs_f64(traffic.total() as f64 / f64::from(traffic.rate))
}

/// Starts driving `traffic` at the rig's processes.
pub(super) fn start_load(
    traffic: &Traffic,
    rig: &Rig,
) -> tokio::task::JoinHandle<anyhow::Result<LoadReport>> {
    let (traffic, targets) = (traffic.clone(), rig.targets.clone());
    tokio::spawn(async move { load::drive(&traffic, &targets).await })
}

/// How long the pipeline may take to settle after the load.
pub(super) const SETTLE: Duration = Duration::from_secs(240);

/// 1. Broker outage under load: RabbitMQ's application stopped and started again while signed
///    webhooks arrive. Every accepted webhook ends as exactly one message in routing's history,
///    each sender as one contact, in send order; the spool drains.
pub async fn broker_outage(setup: &Setup, scale: Scale) -> anyhow::Result<ScenarioReport> {
    let (senders, per_sender, rate, outages, outage) = match scale {
        Scale::Ci => (100, 20, 250, 1, Duration::from_secs(5)),
        Scale::Bench => (500, 40, 1_000, 3, Duration::from_secs(10)),
    };
    let mut report = ScenarioReport::new("broker outage");
    let mut setup = setup.clone();
    setup.extra_env.extend([
        (
            "SWITCHBOARD__INGRESS__PUBLISH_TIMEOUT".to_owned(),
            "1s".to_owned(),
        ),
        ("SWITCHBOARD__BUS__CONFIRM_TIMEOUT".to_owned(), "1s".to_owned()),
    ]);
    let rig = Rig::start(setup, "chaos-broker-outage", 1).await?;
    let traffic = traffic(senders, per_sender, rate, Duration::from_secs(120));
    report.line(format!(
        "{} webhooks from {senders} senders at up to {rate} req/s; RabbitMQ stop_app for {outage:?} then start_app, {outages} times",
        traffic.total()
    ));
    let driving = start_load(&traffic, &rig);
    let started = Instant::now();
    for round in 0..outages {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let broker = bounded("rabbitmqctl stop_app", stop_broker).await?;
        let stopped_at = started.elapsed();
        tokio::time::sleep(outage).await;
        bounded("rabbitmqctl start_app", move || broker.start()).await?;
        report.line(format!(
            "outage {}: stopped at {:.1} s, back at {:.1} s",
            round + 1,
            stopped_at.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ));
    }
    let load = driving.await.context("the load generator")??;
    let settle_started = Instant::now();
    let outcome = checks::settle(rig.database_url(), rig.namespace(), &traffic, &load, SETTLE).await?;
    report.line(format!(
        "settled {:.1} s after the load ended",
        settle_started.elapsed().as_secs_f64()
    ));
    let spooled = rig
        .counter("switchboard_ingress_events_total", "outcome", "spooled")
        .await;
    let relayed = rig
        .counter("switchboard_ingress_events_total", "outcome", "relayed")
        .await;
    let waited = rig
        .counter(
            "switchboard_bus_consumed_total",
            "outcome",
            "dependency_unavailable",
        )
        .await;
    report.line(format!(
        "ingress spooled {spooled} events and relayed {relayed}; consumers waited out the broker {waited} times"
    ));
    report.outcome(&load, &outcome, senders);
    rig.finish().await?;
    Ok(report)
}

/// 2. A process killed: two `--target all` processes behind a round-robin client, one killed
///    with SIGKILL mid-run and started again. Nothing accepted is lost or doubled, and the
///    survivor takes over the killed one's partitions.
pub async fn process_killed(setup: &Setup, scale: Scale) -> anyhow::Result<ScenarioReport> {
    let (senders, per_sender, rate) = match scale {
        Scale::Ci => (100, 20, 500),
        Scale::Bench => (500, 40, 1_000),
    };
    let mut report = ScenarioReport::new("process killed");
    let mut rig = Rig::start(setup.clone(), "chaos-process-killed", 2).await?;
    let traffic = traffic(senders, per_sender, rate, Duration::from_secs(120));
    let planned = planned(&traffic);
    report.line(format!(
        "{} webhooks from {senders} senders at up to {rate} req/s over two processes; one SIGKILLed {:.1} s in, started again 3 s later",
        traffic.total(),
        planned.as_secs_f64() * 0.4
    ));
    let driving = start_load(&traffic, &rig);
    tokio::time::sleep(planned.mul_f64(0.4)).await;
    rig.kill(0).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restarted = Instant::now();
    rig.start_process(0).await?;
    report.line(format!(
        "killed process ready again {:.1} s after its start",
        restarted.elapsed().as_secs_f64()
    ));
    let load = driving.await.context("the load generator")??;
    let outcome = checks::settle(rig.database_url(), rig.namespace(), &traffic, &load, SETTLE).await?;
    report.outcome(&load, &outcome, senders);
    rig.finish().await?;
    Ok(report)
}

/// 6. A duplicate storm: the same webhooks replayed five times at once across two processes.
///    Each is one message and one first-message effect (one contact, one automatic reply).
pub async fn duplicate_storm(setup: &Setup, scale: Scale) -> anyhow::Result<ScenarioReport> {
    let (senders, replays, rate) = match scale {
        Scale::Ci => (200, 5, 1_000),
        Scale::Bench => (1_000, 5, 2_000),
    };
    let mut report = ScenarioReport::new("duplicate storm");
    let rig = Rig::start(setup.clone(), "chaos-duplicate-storm", 2).await?;
    let key = rig.workspace_admin_key().await?;
    rig.always_closed_with_away_message(&key, "We are closed; we will answer soon.")
        .await?;
    // One first message per sender: each opens a conversation (an away reply) and creates a
    // contact, once however often it arrives.
    let traffic = traffic(senders, 1, rate, Duration::from_secs(120));
    report.line(format!(
        "{senders} webhooks (first messages of {senders} senders), each sent {replays} times at once across two processes, at up to {rate} req/s per replay"
    ));
    let mut replaying = tokio::task::JoinSet::new();
    for _ in 0..replays {
        let (traffic, targets) = (traffic.clone(), rig.targets.clone());
        replaying.spawn(async move { load::drive(&traffic, &targets).await });
    }
    let mut load: Option<LoadReport> = None;
    while let Some(replay) = replaying.join_next().await {
        let replay = replay.context("a replay")??;
        load = Some(match load {
            None => replay,
            Some(mut load) => {
                load.merge(replay);
                load
            }
        });
    }
    let load = load.context("no replay ran")?;
    let outcome = checks::settle(rig.database_url(), rig.namespace(), &traffic, &load, SETTLE).await?;
    report.outcome(&load, &outcome, senders);
    if outcome.stored != senders {
        report.failures.push(format!(
            "{} messages stored for {senders} distinct webhooks",
            outcome.stored
        ));
    }
    let replies = rig.away_replies(senders).await?;
    report.line(format!(
        "{replies} automatic replies for {senders} new conversations"
    ));
    if replies != senders {
        report.failures.push(format!(
            "{replies} automatic replies for {senders} first messages"
        ));
    }
    rig.finish().await?;
    Ok(report)
}

/// 4. Graceful shutdown under load: SIGTERM to one of two processes while 64 connections post,
///    a load balancer taking it out of rotation once its `/readyz` fails. Every answer is a
///    correct one (2xx, or 503 to be retried), no request is cut off, the process exits 0
///    within its grace period, and everything accepted is stored.
pub async fn graceful_shutdown(setup: &Setup, scale: Scale) -> anyhow::Result<ScenarioReport> {
    let (per_sender, rate) = match scale {
        Scale::Ci => (40, 800),
        Scale::Bench => (300, 2_000),
    };
    let senders = 64;
    // Drain 1 s (the rig's), then the default grace period.
    let within = Duration::from_secs(1 + 25);
    let mut report = ScenarioReport::new("graceful shutdown");
    let mut rig = Rig::start(setup.clone(), "chaos-graceful-shutdown", 2).await?;
    let traffic = traffic(senders, per_sender, rate, Duration::from_secs(120));
    let planned = planned(&traffic);
    report.line(format!(
        "{} webhooks over {senders} connections at up to {rate} req/s across two processes; SIGTERM to one {:.1} s in",
        traffic.total(),
        planned.as_secs_f64() * 0.3
    ));
    let driving = start_load(&traffic, &rig);
    tokio::time::sleep(planned.mul_f64(0.3)).await;
    let balancer = rig.withdraw_when_unready(0)?;
    let terminated = Instant::now();
    let status = rig.terminate(0, within + Duration::from_secs(10)).await;
    let took = terminated.elapsed();
    balancer.abort();
    match &status {
        Ok(status) => report.line(format!(
            "the terminated process exited with {status} {:.1} s after SIGTERM",
            took.as_secs_f64()
        )),
        Err(error) => report.line(format!("the terminated process did not exit: {error:#}")),
    }
    if !status.as_ref().is_ok_and(std::process::ExitStatus::success) || took > within {
        report.failures.push(format!(
            "the process did not exit 0 within drain + grace ({within:?}): {status:?} after {took:?}"
        ));
    }
    rig.start_process(0).await?;
    let load = driving.await.context("the load generator")??;
    if load.broken > 0 {
        report.failures.push(format!(
            "{} requests were cut off after they were sent",
            load.broken
        ));
    }
    let wrong: Vec<u16> = load
        .statuses
        .keys()
        .copied()
        .filter(|status| *status != 503)
        .collect();
    if !wrong.is_empty() {
        report
            .failures
            .push(format!("answers other than 2xx and 503: {:?}", load.statuses));
    }
    let outcome = checks::settle(rig.database_url(), rig.namespace(), &traffic, &load, SETTLE).await?;
    report.outcome(&load, &outcome, senders);
    rig.finish().await?;
    Ok(report)
}

/// 3. PostgreSQL restarted under consumers and Sends: the database stopped for a while and
///    started again while webhooks arrive and the API sends a reply to every sender through the
///    provider simulator. Consumers wait the outage out without a hot requeue loop (their waits
///    and redeliveries are counted and bounded), nothing valid is dead-lettered, `/readyz`
///    answers 503 while the database is away and 200 after, and every Send is made once.
pub async fn database_restart(setup: &Setup, scale: Scale) -> anyhow::Result<ScenarioReport> {
    let (senders, per_sender, rate, downtime) = match scale {
        Scale::Ci => (50, 20, 200, Duration::from_secs(5)),
        Scale::Bench => (500, 20, 1_000, Duration::from_secs(15)),
    };
    let mut report = ScenarioReport::new("database restart");
    let simulator_binary =
        switchboard_provider_sim::SimulatorProcess::beside(std::path::Path::new(&setup.binary));
    let simulator = switchboard_provider_sim::SimulatorProcess::start(&simulator_binary)
        .await
        .map_err(|error| anyhow::anyhow!("provider-sim starts: {error}"))?;
    let sim = switchboard_provider_sim::SimulatorClient::new(simulator.base_url());
    let mut setup = setup.clone();
    setup.provider = Some(simulator.base_url().to_owned());
    let mut rig = Rig::start(setup, "chaos-database-restart", 1).await?;
    sim.configure_account(
        switchboard_provider_sim::Provider::Whatsapp,
        load::PHONE_NUMBER_ID,
        &switchboard_provider_sim::AccountConfig {
            credential: load::ACCESS_TOKEN.to_owned(),
            ..switchboard_provider_sim::AccountConfig::default()
        },
    )
    .await
    .map_err(|error| anyhow::anyhow!("configure the simulated number: {error}"))?;
    let key = rig.workspace_admin_key().await?;
    let traffic = traffic(senders, per_sender, rate, Duration::from_secs(180));
    let planned = planned(&traffic);
    report.line(format!(
        "{} webhooks from {senders} senders at up to {rate} req/s and one API Send to each sender; PostgreSQL stopped {:.1} s in for {downtime:?}",
        traffic.total(),
        planned.as_secs_f64() * 0.3
    ));
    let driving = start_load(&traffic, &rig);
    let sending = tokio::spawn({
        let (traffic, database_url, grpc, key) = (
            traffic.clone(),
            rig.database_url().to_owned(),
            rig.grpc_url()?,
            key.clone(),
        );
        async move { sends::reply_to_every_sender(&traffic, &database_url, &grpc, &key).await }
    });
    tokio::time::sleep(planned.mul_f64(0.3)).await;
    let database = bounded(
        "pg_ctlcluster stop",
        switchboard_testkit::database_server::stop_database,
    )
    .await?;
    let stopped = Instant::now();
    // Readiness while it is away, then back.
    let mut unready = false;
    while stopped.elapsed() < downtime {
        unready |= rig.readiness(0).await == 503;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bounded("pg_ctlcluster start", move || database.start()).await?;
    let started = Instant::now();
    let mut ready_again = None;
    while started.elapsed() < Duration::from_secs(60) {
        if rig.readiness(0).await == 200 {
            ready_again = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    report.line(format!(
        "/readyz during the outage: {}; 200 again {}",
        if unready { "503" } else { "never 503" },
        ready_again.map_or_else(
            || "never within 60 s".to_owned(),
            |after| format!("{:.1} s after PostgreSQL was back", after.as_secs_f64())
        )
    ));
    if !unready {
        report
            .failures
            .push("/readyz never answered 503 while PostgreSQL was down".to_owned());
    }
    if ready_again.is_none() {
        report
            .failures
            .push("/readyz did not answer 200 within 60 s of PostgreSQL's return".to_owned());
    }
    let load = driving.await.context("the load generator")??;
    let sent = sending.await.context("the API sends")??;
    let outcome = checks::settle(rig.database_url(), rig.namespace(), &traffic, &load, SETTLE).await?;
    report.outcome(&load, &outcome, senders);
    report.line(format!("sends: {}", sent.summary()));
    report.failures.extend(sent.failures(senders));
    let delivered = sends::settle_sends(rig.database_url(), &sim, senders).await?;
    report.line(format!("sends stored and made: {}", delivered.summary()));
    report.failures.extend(delivered.failures(senders));
    let waited = rig
        .counter(
            "switchboard_bus_consumed_total",
            "outcome",
            "dependency_unavailable",
        )
        .await;
    let requeued = rig
        .counter("switchboard_bus_consumed_total", "outcome", "requeued")
        .await;
    let retried = rig
        .counter("switchboard_bus_consumed_total", "outcome", "retried")
        .await;
    report.line(format!(
        "consumers waited out the database {waited} times; retried {retried}, requeued {requeued}"
    ));
    // A hot requeue loop would show as requeues in the thousands; waiting in place needs none.
    let bound = u64::try_from(traffic.total()).unwrap_or(u64::MAX) / 10;
    if requeued + retried > bound {
        report.failures.push(format!(
            "{} retries and requeues for {} webhooks: more than the bound of {bound}",
            requeued + retried,
            traffic.total()
        ));
    }
    rig.finish().await?;
    simulator.stop().await;
    Ok(report)
}

/// 5. Poison: events no consumer can ever handle, on the same partitions as good traffic, go
///    to the dead-letter queue while the good traffic keeps flowing; the operator lists them
///    with `switchboard dead-letters list` and replays them with `… replay`.
///
///    No webhook a provider can send is poison any more: the last one found (a NUL in a
///    profile name) is fixed. So the poison is what a faulty producer (or a future bug) would
///    publish: an inbound event without a sender, on the partition of real senders.
pub async fn poison_message(setup: &Setup, scale: Scale) -> anyhow::Result<ScenarioReport> {
    let (senders, per_sender, rate, poisons) = match scale {
        Scale::Ci => (40, 20, 400, 5),
        Scale::Bench => (500, 20, 1_000, 50),
    };
    let mut report = ScenarioReport::new("poison message");
    let rig = Rig::start(setup.clone(), "chaos-poison-message", 1).await?;
    let traffic = traffic(senders, per_sender, rate, Duration::from_secs(120));
    report.line(format!(
        "{} webhooks from {senders} senders at up to {rate} req/s; {poisons} poison events published among them on their senders' partitions",
        traffic.total()
    ));
    let driving = start_load(&traffic, &rig);
    let partitions = rig.partitions().clone();
    for poison in 0..poisons {
        // Spread over the run, each on the partition of a sender of the load.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sender = poison % senders;
        let partition_key = format!("{}:{}", load::ACCOUNT, Traffic::sender_id(sender));
        rig.publish(poison_event(&traffic.label, poison, &partition_key, &partitions))
            .await?;
    }
    let load = driving.await.context("the load generator")??;
    let mut outcome = checks::settle(rig.database_url(), rig.namespace(), &traffic, &load, SETTLE).await?;
    outcome.expected_dead_letters = poisons as u64;
    outcome.dead_lettered = checks::dead_letters_reaching(
        rig.namespace(),
        outcome.expected_dead_letters,
        Duration::from_secs(30),
    )
    .await?;
    report.outcome(&load, &outcome, senders);

    let listed = rig
        .operator_command(&["dead-letters", "list", "--queue", "contacts.inbound"])
        .await?;
    let listing = String::from_utf8_lossy(&listed.stdout).into_owned();
    let shown = listing
        .lines()
        .filter(|line| line.contains(&format!("poison-{}", traffic.label)))
        .count();
    report.line(format!(
        "`switchboard dead-letters list --queue contacts.inbound` showed {shown} of {poisons}, e.g. {:?}",
        listing.lines().nth(1).unwrap_or_default()
    ));
    if !listed.status.success() || shown != poisons || !listing.contains("without a sender") {
        report.failures.push(format!(
            "the listing did not show every poison with its reason: {listing}{}",
            String::from_utf8_lossy(&listed.stderr)
        ));
    }
    let dead_lettered_before = rig
        .counter("switchboard_bus_consumed_total", "outcome", "dead_lettered")
        .await;
    let replayed = rig
        .operator_command(&["dead-letters", "replay", "--queue", "contacts.inbound", "--all"])
        .await?;
    let replay_output = String::from_utf8_lossy(&replayed.stdout).into_owned();
    report.line(format!("replay: {}", replay_output.trim()));
    if !replayed.status.success() || !replay_output.contains(&format!("replayed {poisons} ")) {
        report.failures.push(format!(
            "the replay did not send every poison back: {replay_output}{}",
            String::from_utf8_lossy(&replayed.stderr)
        ));
    }
    // Replayed, they are consumed again (and, still poison, dead-lettered again).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut dead_lettered_after = dead_lettered_before;
    while Instant::now() < deadline {
        dead_lettered_after = rig
            .counter("switchboard_bus_consumed_total", "outcome", "dead_lettered")
            .await;
        if dead_lettered_after >= dead_lettered_before + poisons as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    report.line(format!(
        "after the replay the consumer saw them again: dead-lettered {} more",
        dead_lettered_after - dead_lettered_before
    ));
    if dead_lettered_after != dead_lettered_before + poisons as u64 {
        report.failures.push(format!(
            "{} of {poisons} replayed poison events came back to the consumer",
            dead_lettered_after - dead_lettered_before
        ));
    }
    rig.finish().await?;
    Ok(report)
}

/// An inbound event no consumer can handle: it names no sender.
fn poison_event(
    label: &str,
    number: usize,
    partition_key: &str,
    partitions: &switchboard_messaging::Partitions,
) -> switchboard_messaging::Outgoing {
    use switchboard_proto::events::v1 as events;
    let envelope = events::Envelope {
        event_id: format!("poison-{label}-{number}"),
        event_type: "inbound.whatsapp.message".to_owned(),
        workspace_id: load::WORKSPACE.to_owned(),
        partition_key: partition_key.to_owned(),
        payload: Some(events::envelope::Payload::Inbound(events::InboundEvent {
            channel: switchboard_proto::common::v1::Channel::Whatsapp as i32,
            channel_account_id: load::ACCOUNT.to_owned(),
            sender: None,
            kind: Some(events::inbound_event::Kind::Message(events::InboundMessage {
                provider_message_id: format!("wamid.poison-{label}-{number}"),
                ..events::InboundMessage::default()
            })),
            ..events::InboundEvent::default()
        })),
        ..events::Envelope::default()
    };
    switchboard_messaging::Outgoing::envelope(&envelope, partitions)
}
