//! The extension commands: `--check`, `--explain`, `--stats`/`--purge`, `--report` (also as HTML),
//! extension settings.

pub(crate) mod check;
pub(crate) mod explain;
pub(crate) mod maintenance;
pub(crate) mod report;
pub(crate) mod report_html;
pub(crate) mod selective;
pub(crate) mod settings;
