//! grey_listing: a re-implementation of Plesk's greylisting — the admin CLI, the mail filter
//! and the Postfix policy server share this library and one database.
//!
//! - [`pattern`]: the host-name and address pattern matcher (DESIGN.md §3).
//! - [`config`]: settings, lists and validated edits (DESIGN.md §2).
//! - [`store`]: the database behind a narrow interface (DESIGN.md §1).
//! - [`decision`]: the decision as pure functions (DESIGN.md §4).
//! - [`engine`]: the decision run against a store, one transaction per message.
//! - [`filter`]: `greylisting-filter`, the Plesk mail handler and qmail-queue wrapper (DESIGN.md §5).
//! - [`cli`]: the `grey_listing` command (DESIGN.md §2).
//! - [`policyd`]: the Postfix policy server `greylisting-policyd` (DESIGN.md §6).
//! - `bounds` and [`escape`]: size limits and escaping for every value from outside.
//! - [`milter`]: `greylisting-milter`, for Sendmail and Postfix's `smtpd_milters`.
//! - [`daemon`]: what the two daemons share: the listening socket, accepting, writing replies,
//!   the event loop's poll and stop, signals and common options.
//! - `logline`: the decision log lines every front end writes; `client`: the client's
//!   address and verified name as every front end reads them.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub(crate) mod access;
pub(crate) mod bounds;
pub mod cli;
pub(crate) mod client;
pub mod clock;
pub mod conf_file;
pub mod config;
pub mod daemon;
pub mod decision;
pub mod dns;
pub mod engine;
pub mod escape;
pub mod export_format;
pub mod filter;
pub(crate) mod header;
pub(crate) mod logging;
pub(crate) mod logline;
pub mod manual;
pub mod metrics;
pub mod milter;
pub(crate) mod names;
pub mod pattern;
pub(crate) mod plesk_import;
pub mod policyd;
pub mod store;
pub(crate) mod svg;
