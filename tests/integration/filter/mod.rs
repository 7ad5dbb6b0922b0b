//! `greylisting-filter`: Plesk mail-handler and qmail-queue modes, concurrency, failing open,
//! hostile input.

pub mod concurrency;
pub mod dns;
pub mod failopen;
pub mod handler;
pub mod hostile;
pub mod qmail;
