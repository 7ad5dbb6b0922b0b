//! How a `grey_listing` run fails: the error line printed and the exit status it maps to.

use thiserror::Error;

use crate::store::StoreError;

/// The exit statuses of `grey_listing` (DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success.
    Success = 0,
    /// Bad input: nothing was changed.
    BadInput = 1,
    /// Database or system error.
    System = 2,
    /// A monitoring plugin's own error (`--check`): Nagios UNKNOWN.
    PluginUnknown = 3,
}

/// Why a `grey_listing` run failed. Displays as the one line printed on stderr.
#[derive(Debug, Error)]
pub enum CliError {
    /// Bad input, found before anything was opened or written.
    #[error("An error occurred during {operation}: {message}")]
    BadInput {
        /// What was being done (`update of server-wide settings`, ...).
        operation: String,
        /// What was wrong, naming the argument.
        message: String,
    },
    /// The store failed.
    #[error("An error occurred during {operation}: {source}")]
    Store {
        /// What was being done.
        operation: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The configuration file is missing, unreadable or invalid (the text is the whole line).
    #[error("{0}")]
    Config(crate::conf_file::ConfError),
    /// Writing the output failed.
    #[error("An error occurred during output: {0}")]
    Output(#[from] std::io::Error),
    /// Any error of the `--check` plugin, reported as Nagios UNKNOWN on standard output.
    #[error("GREY_LISTING UNKNOWN - {0}")]
    PluginUnknown(Box<CliError>),
}

impl CliError {
    /// The exit status for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::BadInput { .. } => ExitCode::BadInput,
            CliError::Store { .. } | CliError::Config(_) | CliError::Output(_) => ExitCode::System,
            CliError::PluginUnknown(_) => ExitCode::PluginUnknown,
        }
    }

    /// Whether the line belongs on standard output (monitoring plugins report there).
    pub fn to_stdout(&self) -> bool {
        matches!(self, CliError::PluginUnknown(_))
    }
}
