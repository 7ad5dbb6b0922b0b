//! One integration harness (links once): each module drives the real binaries or servers.
#![allow(clippy::unwrap_used)]

mod decision;
mod filter;
mod filter_concurrency;
mod filter_failopen;
mod filter_qmail;
mod filter_support;
