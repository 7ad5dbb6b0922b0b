//! `greylisting-filter`: the mail filter (SPEC §5). Picks the mode from argv, runs it, exits with
//! its status. Any panic that escapes the library still lets the mail through or asks for a retry.

use std::ffi::OsString;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use grey_listing::clock::process_env;
use grey_listing::handler::cli::InfoRequest;
use grey_listing::handler::plesk::{self, HandlerVerdict};
use grey_listing::handler::qmail::{self, InstallStyle, QueueExit};

fn main() -> ExitCode {
    // A panic message on stderr would break the handler protocol; the library logs panics itself.
    std::panic::set_hook(Box::new(|_| {}));
    // Hitting a file-size limit must be a write error (fail open), not a fatal signal.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let argv: Vec<OsString> = std::env::args_os().collect();
    // `--help`/`--version` as the only argument: never a handler call (it needs at least three).
    if let Some(request) = InfoRequest::from_args(argv.get(1..).unwrap_or(&[])) {
        let _ = write!(std::io::stdout(), "{}", request.text());
        return ExitCode::SUCCESS;
    }
    let argv0 = argv.first().cloned().unwrap_or_default();
    let style = if argv.get(1).is_some_and(|a| a == "--qmail-queue") {
        Some(InstallStyle::Flag)
    } else if qmail::invoked_as_qmail_queue(&argv0) {
        Some(InstallStyle::Renamed)
    } else {
        None
    };
    let code = match style {
        Some(style) => catch_unwind(AssertUnwindSafe(|| {
            let mut envelope = match qmail::envelope_fd() {
                Ok(file) => file,
                Err(err) => {
                    let _ = writeln!(std::io::stderr(), "cannot read the envelope on fd 1: {err}");
                    return QueueExit::ReadError.code();
                }
            };
            qmail::run(
                style,
                &argv0,
                &mut std::io::stdin().lock(),
                &mut envelope,
                &process_env,
            )
        }))
        // Nothing is lost: the sender retries.
        .unwrap_or(QueueExit::Temporary.code()),
        None => catch_unwind(AssertUnwindSafe(|| {
            plesk::run(
                argv.get(1..).unwrap_or(&[]),
                &mut std::io::stdin().lock(),
                &process_env,
                &mut std::io::stderr(),
            )
            .exit_code()
        }))
        .unwrap_or_else(|_| {
            let _ = writeln!(std::io::stderr(), "{}", HandlerVerdict::Skip.as_str());
            HandlerVerdict::Skip.exit_code()
        }),
    };
    ExitCode::from(code)
}
