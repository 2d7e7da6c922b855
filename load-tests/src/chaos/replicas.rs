//! 7. Replicas joining and leaving under load: three `contacts` processes beside one process
//!    running everything else split the partitions of `contacts.inbound` three ways; one is
//!    SIGKILLed, one joins, one stops gracefully, and after each change the live replicas hold
//!    ⌈P/N⌉ or ⌊P/N⌋ partitions within the bound. Every accepted webhook is stored once, in
//!    each sender's order.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::checks;
use super::rig::{Rig, Setup};
use super::scenarios::{SETTLE, Scale, ScenarioReport, planned, start_load, traffic};

/// The queue group whose partitions are watched.
const GROUP: &str = "contacts.inbound";
/// What the first process runs: everything but contacts.
const EVERYTHING_BUT_CONTACTS: &str = "tenancy,ingress,routing,delivery";
/// How soon after a membership change the partitions must be split again (issue 17): a
/// killed replica is noticed when its lease lapses (6 s), plus one heartbeat (2 s).
const SPLIT_BOUND: Duration = Duration::from_secs(10);

/// Runs the scenario.
pub async fn replicas_split(setup: &Setup, scale: Scale) -> anyhow::Result<ScenarioReport> {
    let (senders, per_sender, rate) = match scale {
        Scale::Ci => (100, 60, 250),
        Scale::Bench => (500, 40, 1_000),
    };
    let mut report = ScenarioReport::new("replicas join and leave");
    let mut rig = Rig::start(setup.clone(), "chaos-replicas", 0).await?;
    rig.start_process_as(0, EVERYTHING_BUT_CONTACTS).await?;
    for index in 1..=3 {
        rig.start_process_as(index, "contacts").await?;
    }
    let partitions = u64::from(rig.partitions().of_family("inbound"));
    let took = wait_for_split(&mut rig, GROUP, &[1, 2, 3], partitions).await;
    check_split(&mut report, "three replicas started", took);

    let traffic = traffic(senders, per_sender, rate, Duration::from_secs(120));
    let planned = planned(&traffic);
    report.line(format!(
        "{} webhooks from {senders} senders at up to {rate} req/s; contacts replicas change at 25 %, 50 % and 75 % of the load",
        traffic.total()
    ));
    let driving = start_load(&traffic, &rig);
    let quarter = planned.mul_f64(0.25);

    tokio::time::sleep(quarter).await;
    rig.kill(3).await?;
    let took = wait_for_split(&mut rig, GROUP, &[1, 2], partitions).await;
    check_split(&mut report, "one of three SIGKILLed", took);

    tokio::time::sleep(quarter.saturating_sub(took.unwrap_or_default())).await;
    rig.start_process_as(3, "contacts").await?;
    let took = wait_for_split(&mut rig, GROUP, &[1, 2, 3], partitions).await;
    check_split(&mut report, "a third joined", took);

    tokio::time::sleep(quarter.saturating_sub(took.unwrap_or_default())).await;
    let status = rig.terminate(1, Duration::from_secs(30)).await?;
    if !status.success() {
        report
            .failures
            .push(format!("a replica stopping gracefully exited with {status}"));
    }
    let took = wait_for_split(&mut rig, GROUP, &[2, 3], partitions).await;
    check_split(&mut report, "one of three stopped gracefully", took);

    let load = driving.await.context("the load generator")??;
    let outcome = checks::settle(rig.database_url(), rig.namespace(), &traffic, &load, SETTLE).await?;
    report.outcome(&load, &outcome, senders);
    rig.finish().await?;
    Ok(report)
}

/// Waits until processes `replicas` together hold all `partitions` of the queue group ending
/// in `group` with at most one apart; returns how long that took, or `None` when it did not
/// happen within twice the bound.
pub async fn wait_for_split(
    rig: &mut Rig,
    group: &str,
    replicas: &[usize],
    partitions: u64,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < SPLIT_BOUND * 2 {
        let mut held = Vec::new();
        for index in replicas {
            held.push(rig.partitions_held(*index, group).await.unwrap_or(0));
        }
        let (max, min) = (held.iter().max(), held.iter().min());
        if held.iter().sum::<u64>() == partitions && max.zip(min).is_some_and(|(max, min)| max - min <= 1) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Reports how long a split took after `change`, and fails the scenario past the bound.
fn check_split(report: &mut ScenarioReport, change: &str, took: Option<Duration>) {
    match took {
        Some(took) => {
            report.line(format!(
                "{change}: partitions split evenly again after {:.1} s",
                took.as_secs_f64()
            ));
            if took > SPLIT_BOUND {
                report.failures.push(format!(
                    "{change}: the split took {:.1} s, over {SPLIT_BOUND:?}",
                    took.as_secs_f64()
                ));
            }
        }
        None => report.failures.push(format!(
            "{change}: partitions not split evenly within {:?}",
            SPLIT_BOUND * 2
        )),
    }
}
