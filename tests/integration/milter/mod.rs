//! `greylisting-milter` over loopback, spoken to byte by byte.

pub mod dns;
pub mod metrics;
pub mod protocol;
