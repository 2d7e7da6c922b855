//! The fault suite: the real `switchboard` binary as processes against the real PostgreSQL and
//! RabbitMQ, signed webhooks from a load generator, faults injected while the load runs (the
//! broker stopped, a process killed, the database restarted, a graceful shutdown, poison,
//! duplicates, replicas joining and leaving), and the stored outcome checked in PostgreSQL.
//!
//! Each scenario runs at two sizes: [`Scale::Ci`] in `make test` (the `chaos_` serial pass,
//! through `tests/tests/chaos_faults.rs`) and [`Scale::Bench`] in `make chaos`, whose figures go
//! in `docs/reliability.md`. Faults stop and start the local services with `rabbitmqctl` and
//! `pg_ctlcluster`: run scenarios one at a time, on a machine whose services may be disturbed.

pub mod checks;
pub mod load;
pub mod replicas;
pub mod rig;
pub mod scenarios;
pub mod sends;

pub use rig::{Rig, Setup};
pub use scenarios::{Scale, ScenarioReport};
