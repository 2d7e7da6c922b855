//! Fetches of URLs that API callers (or their flows) give Switchboard: an attachment it checks
//! or downloads, and any future outbound fetch. Without this guard a caller could make
//! Switchboard probe its own network (`http://169.254.169.254/…`, `http://127.0.0.1:5432/`):
//! server-side request forgery.
//!
//! The rule: a URL may reach only public addresses. Every address a host name resolves to
//! must be public (one private answer refuses the host), the connection goes only to the
//! addresses checked (no second lookup to rebind), every redirect is checked again, and
//! redirects, time and bytes are capped. Networks an operator lists in
//! `egress.allow_networks` (an in-cluster media store, the provider simulator in tests) are
//! allowed. The client ignores `HTTP_PROXY`: a proxy would resolve names itself.
//!
//! It is for caller-given URLs only; provider API calls go to configured base URLs.

mod address;
mod client;
mod config;

pub use address::{Reserved, reserved};
pub use client::{EgressClient, EgressError, read_capped};
pub use config::{EgressConfig, EgressPolicy};
