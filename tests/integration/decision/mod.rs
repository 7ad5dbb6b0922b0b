//! The decision and what feeds it: the rule table, patterns, intervals, IDN, size bounds, the
//! shared engine rules.

pub mod bounds;
pub mod engine;
pub mod idn;
pub mod interval_rules;
pub mod pattern;
pub mod table;
pub mod white_patterns;
