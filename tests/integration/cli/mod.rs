//! `grey_listing`: its commands and outputs, bad input, the generated man pages and the README's
//! tour.

pub mod argv;
pub mod commands;
pub mod conf_file;
pub mod dns;
pub mod dns_lists;
pub mod generated;
pub mod list_edit;
pub mod migrate;
pub mod readme;
pub mod settings_table;
pub mod store;
pub mod terminal_escapes;
pub mod transfer;
pub mod validation;
pub mod version;
