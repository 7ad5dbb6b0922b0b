//! `grey_listing`: its commands and outputs, bad input, the generated man pages and the README's
//! tour.

pub(crate) mod argv;
pub(crate) mod commands;
pub(crate) mod conf_file;
pub(crate) mod dns;
pub(crate) mod dns_lists;
pub(crate) mod generated;
pub(crate) mod input_errors;
pub(crate) mod list_edit;
pub(crate) mod migrate;
pub(crate) mod readme;
pub(crate) mod settings_table;
pub(crate) mod store;
pub(crate) mod terminal_escapes;
pub(crate) mod transfer;
pub(crate) mod validation;
pub(crate) mod version;
