//! Membership against the real PostgreSQL: replicas that join split the seats, one that
//! leaves gracefully is gone at the others' next heartbeat, one that is killed once its lease
//! lapses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use switchboard_membership::{LeaseTiming, Membership, MembershipMetrics};
use switchboard_messaging::{Seat, SeatWatch};
use switchboard_testkit::{TestDatabase, eventually};
use tokio_util::sync::CancellationToken;

const TIMING: LeaseTiming = LeaseTiming {
    heartbeat: Duration::from_millis(100),
    lease: Duration::from_millis(400),
};

struct Replica {
    seat: SeatWatch,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn join(pool: &switchboard_postgres::Pool, member_id: &str) -> Replica {
    let membership = Membership::new(
        pool.clone(),
        "contacts",
        member_id.to_owned(),
        TIMING,
        Arc::new(MembershipMetrics::default()),
    );
    let seat = membership.seat();
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move { membership.run(stop).await.unwrap() }
    });
    Replica { seat, stop, task }
}

async fn seats_become(replicas: &[&Replica], expected: &[Seat]) {
    eventually(Duration::from_secs(5), &format!("seats {expected:?}"), || async {
        let seats: Vec<Seat> = replicas.iter().map(|replica| *replica.seat.borrow()).collect();
        (seats == expected).then_some(())
    })
    .await;
}

#[tokio::test]
async fn replicas_split_the_seats_and_take_over_from_one_that_leaves_or_is_killed() {
    let database = TestDatabase::create().await.unwrap();
    let pool = switchboard_postgres::connect(&database.config()).await.unwrap();
    switchboard_postgres::migrate(&pool, &switchboard_membership::MIGRATIONS)
        .await
        .unwrap();

    let (a, b, c) = (join(&pool, "a"), join(&pool, "b"), join(&pool, "c"));
    let seat = |index, members| Seat { index, members };
    seats_become(&[&a, &b, &c], &[seat(0, 3), seat(1, 3), seat(2, 3)]).await;

    // b stops gracefully: it deletes its lease, and the others close ranks.
    b.stop.cancel();
    b.task.await.unwrap();
    let client = database.connect().await;
    assert_eq!(
        TestDatabase::count(
            &client,
            "SELECT count(*) FROM membership.members WHERE member_id = 'b'"
        )
        .await,
        0,
        "a graceful leave deletes the lease (the others need not wait for it to lapse)"
    );
    seats_become(&[&a, &c], &[seat(0, 2), seat(1, 2)]).await;

    // c is killed: no goodbye, so its seat moves once its lease lapses.
    c.task.abort();
    seats_become(&[&a], &[Seat::ALONE]).await;

    // A newcomer gets a seat beside a.
    let d = join(&pool, "d");
    seats_become(&[&a, &d], &[seat(0, 2), seat(1, 2)]).await;
    for replica in [a, d] {
        replica.stop.cancel();
        replica.task.await.unwrap();
    }
    assert_eq!(
        TestDatabase::count(&client, "SELECT count(*) FROM membership.members").await,
        0,
        "members that stopped left no lease"
    );
}
