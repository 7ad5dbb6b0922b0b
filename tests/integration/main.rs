//! One integration harness (links once): each module drives the real binaries or servers.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;

mod cli;
mod cli_argv;
mod cli_migrate;
mod cli_store;
mod cli_validation;
mod decision;
mod ext_check;
mod ext_engine;
mod ext_explain;
mod ext_maintenance;
mod ext_report;
mod ext_settings;
mod ext_support;
mod filter;
mod filter_concurrency;
mod filter_failopen;
mod filter_qmail;
mod filter_support;
mod generated;
mod list_edit;
mod milter;
mod milter_support;
mod pattern;
mod pg_binary_faults;
mod pg_faults;
mod policy;
mod policy_cache;
mod policy_eof;
mod postgres_multi_mx;
mod store_behaviour;
mod transfer;
