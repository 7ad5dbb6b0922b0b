//! `greylisting-policyd` over loopback: the server fixture (`server`), bounds, cache, DNS lists, lifecycle,
//! options, metrics.

pub(crate) mod bounds;
pub(crate) mod cache;
pub(crate) mod dns;
pub(crate) mod dns_bounds;
pub(crate) mod eof;
pub(crate) mod hostile;
pub(crate) mod lifecycle;
pub(crate) mod metrics;
pub(crate) mod options;
pub(crate) mod server;
pub(crate) mod stop;
pub(crate) mod value_errors;
