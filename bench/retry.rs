//! MTA retry schedules shared by the simulations: the seconds after the first attempt at which
//! a sender tries again, modelled on each MTA's published defaults.

/// A sender gives up after five days (Postfix's maximal_queue_lifetime).
pub(crate) const GIVE_UP: i64 = 5 * 86_400;

/// Seconds after the first attempt at which an MTA retries.
#[derive(Clone, Copy)]
pub(crate) enum Schedule {
    /// Postfix: minimal_backoff_time 300 s doubling up to maximal_backoff_time 4000 s
    /// (queue_run_delay 300 s).
    Postfix,
    /// Exim's default retry rule `F,2h,15m; G,16h,1h,1.5; F,4d,6h`.
    Exim,
    /// Exchange Server / Exchange Online: 6 transient retries every 5 min, then every 15 min
    /// (TransientFailureRetryInterval, MessageRetryInterval).
    Exchange,
    /// qmail-send for remote deliveries: attempt n at (20 n)^2 s.
    Qmail,
    /// Spam bot: one attempt.
    Never,
    /// Spam bot: one retry after the given number of seconds.
    Once(i64),
}

impl Schedule {
    pub(crate) fn attempts(self) -> Vec<i64> {
        let mut times = vec![0];
        match self {
            Schedule::Postfix => {
                let (mut t, mut backoff) = (0, 300);
                while t < GIVE_UP {
                    t += backoff;
                    times.push(t);
                    backoff = (backoff * 2).min(4_000);
                }
            }
            Schedule::Exim => {
                let mut t = 0;
                while t < 7_200 {
                    t += 900;
                    times.push(t);
                }
                let mut step = 3_600.0_f64;
                while t < 16 * 3_600 {
                    t += step as i64;
                    times.push(t);
                    step *= 1.5;
                }
                while t < GIVE_UP {
                    t += 6 * 3_600;
                    times.push(t);
                }
            }
            Schedule::Exchange => {
                let mut t = 0;
                for _ in 0..6 {
                    t += 300;
                    times.push(t);
                }
                while t < GIVE_UP {
                    t += 900;
                    times.push(t);
                }
            }
            Schedule::Qmail => {
                let mut n = 1;
                loop {
                    let t = (20 * n) * (20 * n);
                    if t > GIVE_UP {
                        break;
                    }
                    times.push(t);
                    n += 1;
                }
            }
            Schedule::Never => {}
            Schedule::Once(after) => times.push(after),
        }
        times
    }
}
