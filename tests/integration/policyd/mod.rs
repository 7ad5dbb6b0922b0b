//! `greylisting-policyd` over loopback: the server fixture (`server`), bounds, cache, DNS lists, lifecycle,
//! options, metrics.

pub mod bounds;
pub mod cache;
pub mod dns;
pub mod eof;
pub mod hostile;
pub mod lifecycle;
pub mod metrics;
pub mod options;
pub mod server;
