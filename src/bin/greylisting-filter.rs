//! `greylisting-filter`: the mail filter (DESIGN.md §5). Picks the mode from argv, runs it, exits with
//! its status. Any panic that escapes the library still lets the mail through or asks for a retry.

use std::ffi::OsString;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};

use grey_listing::clock::process_env;
use grey_listing::filter::handler_mode::{self, HandlerVerdict};
use grey_listing::filter::qmail_queue::{self, InstallStyle, QueueExit};
use grey_listing::filter::usage::InfoRequest;

/// Which of fds 0 and 1 were closed when the process started: bit 0 for fd 0, bit 1 for fd 1;
/// bit 7 says the check ran. It has to run before `main`: the Rust runtime reopens closed
/// standard descriptors on /dev/null before calling `main`, after which a closed fd 1 reads as
/// an empty envelope (exit 91, "malformed") and a closed fd 0 as an empty message, hiding the
/// real fault. Functions in `.init_array` are called by the C library before `main` and so
/// before the runtime's start-up, on glibc and musl alike.
static CLOSED_AT_START: AtomicU8 = AtomicU8::new(0);

extern "C" fn record_closed_fds() {
    let mut bits = 0x80;
    for fd in [0, 1] {
        // SAFETY: F_GETFD only reads the descriptor table; -1 (EBADF) means not open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            bits |= 1 << fd;
        }
    }
    CLOSED_AT_START.store(bits, Ordering::Relaxed);
}

// SAFETY: `.init_array` holds plain `extern "C" fn()` pointers called once at start-up; the
// function touches nothing but one atomic and the `fcntl` system call.
#[used]
#[unsafe(link_section = ".init_array")]
static RECORD_CLOSED_FDS: extern "C" fn() = record_closed_fds;

/// The descriptor (0 or 1) that was closed at start-up, if any.
fn closed_at_start() -> Option<i32> {
    let bits = CLOSED_AT_START.load(Ordering::Relaxed);
    [0, 1].into_iter().find(|fd| bits & (1 << fd) != 0)
}

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
    } else if qmail_queue::invoked_as_qmail_queue(&argv0) {
        Some(InstallStyle::Renamed)
    } else {
        None
    };
    let code = match style {
        Some(style) => catch_unwind(AssertUnwindSafe(|| {
            if let Some(fd) = closed_at_start() {
                return qmail_queue::closed_descriptor(fd, &process_env);
            }
            let mut envelope = match qmail_queue::envelope_fd() {
                Ok(file) => file,
                Err(err) => {
                    let _ = writeln!(std::io::stderr(), "cannot read the envelope on fd 1: {err}");
                    return QueueExit::ReadError.code();
                }
            };
            qmail_queue::run(
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
            handler_mode::run(
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
