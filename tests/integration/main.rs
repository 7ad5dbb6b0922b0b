//! One integration harness (links once): each module drives the real binaries or servers.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

mod cli;
mod cli_argv;
mod cli_migrate;
mod cli_store;
mod cli_validation;
mod generated;
mod list_edit;
mod pattern;
mod pg_faults;
mod store_behaviour;
