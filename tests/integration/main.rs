//! One integration harness (links once): each module drives the real binaries or servers.
#![allow(clippy::unwrap_used)]
mod ext_check;
mod ext_engine;
mod ext_explain;
mod ext_maintenance;
mod ext_report;
mod ext_settings;
mod ext_support;
