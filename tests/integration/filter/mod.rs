//! `greylisting-filter`: Plesk mail-handler and qmail-queue modes, concurrency, failing open,
//! hostile input.

pub(crate) mod concurrency;
pub(crate) mod dns;
pub(crate) mod failopen;
pub(crate) mod handler;
pub(crate) mod hostile;
pub(crate) mod qmail;
