//! Integration tests of the messaging kit against the real RabbitMQ.

mod helpers;
mod partitions;
mod publish_consume;
mod shutdown;
