//! `grey_listing`: the admin command. Parses, calls the library, maps errors to exit codes.

use std::io::Write;
use std::process::ExitCode;

use grey_listing::cli::{self, CliError};
use grey_listing::clock::process_env;

fn main() -> ExitCode {
    let argv: Vec<_> = std::env::args_os().skip(1).collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli::run(&argv, &process_env, &mut out).and_then(|()| out.flush().map_err(CliError::from))
    {
        Ok(()) => ExitCode::SUCCESS,
        // Like ripgrep: a closed pipe (`grey_listing -i | head`) is not an error.
        Err(CliError::Output(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "{err}");
            ExitCode::from(err.exit_code() as u8)
        }
    }
}
