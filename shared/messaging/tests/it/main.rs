//! Integration tests of the messaging kit against the real RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod batches;
mod helpers;
mod ordering;
mod partitions;
mod publish_consume;
mod seats;
mod shutdown;
