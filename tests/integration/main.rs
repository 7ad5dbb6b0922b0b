//! One integration harness (links once): each module drives the real binaries or servers.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod support;
mod terminal_escapes;

mod backup;
mod bounds;
mod cli;
mod cli_argv;
mod cli_migrate;
mod cli_store;
mod cli_validation;
mod conf_file;
mod decision;
mod dns_cache;
mod dns_cli;
mod dns_filter;
mod dns_lists;
mod dns_report;
#[path = "../support/dns_stub.rs"]
mod dns_stub;
mod ext_check;
mod ext_engine;
mod ext_explain;
mod ext_maintenance;
mod ext_report;
mod ext_settings;
mod ext_support;
mod files;
mod filter;
mod filter_concurrency;
mod filter_failopen;
mod filter_hostile;
mod filter_qmail;
mod filter_support;
mod generated;
mod idn;
mod interval_rules;
mod list_edit;
mod log_injection;
mod log_lines;
mod metrics;
mod milter;
mod milter_support;
mod openmetrics;
mod pattern;
mod pg_binary_faults;
mod pg_faults;
mod pg_secrets;
mod policy;
mod policy_bounds;
mod policy_cache;
mod policy_eof;
mod policy_hostile;
mod policy_lifecycle;
mod policy_options;
mod postgres_multi_mx;
mod read_only;
mod readme;
mod report_html;
mod settings_table;
mod store_behaviour;
mod transfer;
mod unprivileged;
mod version;
mod white_patterns;
