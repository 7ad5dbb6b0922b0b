//! One integration harness (links once): each module drives the real binaries or servers.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

mod cli;
mod decision;
#[path = "../support/dns_stub.rs"]
mod dns_stub;
mod ext;
mod filter;
mod logging;
mod milter;
#[cfg(feature = "postgres")]
#[path = "../support/pg_client.rs"]
mod pg_client;
mod policyd;
mod store;
