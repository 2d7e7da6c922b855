//! End-to-end tests of the `switchboard` binary against real PostgreSQL and RabbitMQ.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod assignment;
mod auth;
mod channel_accounts;
mod config;
mod contacts;
mod conversation_work;
mod delivery;
mod lifecycle;
mod migrate;
mod partitions;
mod routing;
mod routing_isolation;
mod trace_context;
mod webchat;
mod webhooks;
