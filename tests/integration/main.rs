//! One integration harness (links once): each module drives the real binaries or servers.
#![allow(clippy::unwrap_used)]

mod cli;
mod cli_store;
mod cli_validation;
mod generated;
mod pattern;
mod support;
