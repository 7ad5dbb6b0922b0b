//! `greylisting-milter` over loopback, spoken to byte by byte.

pub mod metrics;
pub mod protocol;
