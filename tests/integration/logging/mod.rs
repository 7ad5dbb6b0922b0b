//! Log lines: what syslog would add on stderr, and client values that cannot forge or split a line.

pub(crate) mod injection;
pub(crate) mod lines;
