//! The decision and what feeds it: the rule table, patterns, intervals, IDN, size bounds, the
//! shared engine rules.

pub(crate) mod bounds;
pub(crate) mod engine;
pub(crate) mod idn;
pub(crate) mod interval_rules;
pub(crate) mod pattern;
pub(crate) mod table;
pub(crate) mod white_patterns;
