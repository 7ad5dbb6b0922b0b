//! `greylisting-milter` over loopback, spoken to byte by byte.

pub(crate) mod bounds;
pub(crate) mod close;
pub(crate) mod concurrent;
pub(crate) mod dns;
pub(crate) mod lifecycle;
pub(crate) mod metrics;
#[cfg(feature = "postgres")]
pub(crate) mod pg_faults;
pub(crate) mod protocol;
pub(crate) mod socket;
pub(crate) mod store;
