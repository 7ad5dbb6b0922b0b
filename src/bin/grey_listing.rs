//! `grey_listing`: the admin command. Parses, calls the library, maps errors to exit codes.

use std::io::Write;
use std::process::ExitCode;

use grey_listing::cli::{self, CliError};
use grey_listing::clock::process_env;
use grey_listing::escape::escape_terminal;

fn main() -> ExitCode {
    let argv: Vec<_> = std::env::args_os().skip(1).collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = cli::run_status(&argv, &process_env, &mut out)
        .and_then(|status| out.flush().map(|()| status).map_err(CliError::from));
    match result {
        Ok(status) => ExitCode::from(status),
        // Like ripgrep: a closed pipe (`grey_listing -i | head`) is not an error.
        Err(CliError::Output(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(err) if err.to_stdout() => {
            let _ = writeln!(out, "{}", escape_terminal(&err.to_string()));
            let _ = out.flush();
            ExitCode::from(err.exit_code() as u8)
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "{}", escape_terminal(&err.to_string()));
            ExitCode::from(err.exit_code() as u8)
        }
    }
}
