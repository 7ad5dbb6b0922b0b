//! The extension commands: `--check`, `--explain`, `--stats`/`--purge`, `--report` (also as HTML),
//! extension settings.

pub mod check;
pub mod explain;
pub mod maintenance;
pub mod report;
pub mod report_html;
pub mod selective;
pub mod settings;
