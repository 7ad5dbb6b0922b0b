//! Steps 5–6 of DESIGN.md §4: the auto-whitelist and the triplet, the triplet sender, and the
//! rule that combines several recipients' verdicts.

use crate::config::Settings;
use crate::store::Triplet;

use super::*;

/// What the store knows about the client and the triplet.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientState {
    /// Distinct unexpired triplets the client network has passed.
    pub awl_passes: u64,
    /// The triplet's stored record, expired or not.
    pub triplet: Option<Triplet>,
}

/// Steps 5–6 of DESIGN.md §4: the auto-whitelist, then the triplet itself.
pub fn decide_by_triplet(settings: &Settings, client: &ClientState, now: i64) -> Decision {
    decide_by_triplet_traced(settings, client, now, &mut Trace::off())
}

/// [`decide_by_triplet`], recording each check in `trace`.
pub fn decide_by_triplet_traced(
    settings: &Settings,
    client: &ClientState,
    now: i64,
    trace: &mut Trace,
) -> Decision {
    let live = client.triplet.filter(|t| t.expires > now);
    let expire = i64::from(settings.expire_interval) * 60;
    let passed = |triplet: Triplet, delay: Option<i64>, reason: Reason| Decision {
        verdict: Verdict::Pass,
        reason,
        pattern: None,
        delay,
        write: Some(Triplet {
            last_seen: now,
            expires: now.saturating_add(expire),
            pass_count: triplet.pass_count.saturating_add(1),
            ..triplet
        }),
    };
    let whitelisted = settings.awl_count > 0 && client.awl_passes >= u64::from(settings.awl_count);
    trace.push(|| Step::Awl {
        needed: settings.awl_count,
        passes: client.awl_passes,
        whitelisted,
    });
    if whitelisted {
        let base = live.unwrap_or(Triplet {
            first_seen: now,
            earliest_accept: now,
            last_seen: now,
            expires: now,
            pass_count: 0,
        });
        return passed(base, None, Reason::ClientAwl);
    }
    let Some(triplet) = live else {
        trace.push(|| {
            Step::Triplet(match client.triplet {
                Some(_) => TripletSeen::Expired,
                None => TripletSeen::Unknown,
            })
        });
        let grey = i64::from(settings.grey_interval) * 60;
        return Decision {
            write: Some(Triplet {
                first_seen: now,
                earliest_accept: now.saturating_add(grey),
                last_seen: now,
                expires: now.saturating_add(expire),
                pass_count: 0,
            }),
            ..Decision::by_rule(Verdict::Defer, Reason::New)
        };
    };
    if now < triplet.earliest_accept {
        trace.push(|| {
            Step::Triplet(TripletSeen::Early {
                left: triplet.earliest_accept.saturating_sub(now),
            })
        });
        let penalty = if settings.penalty_enabled {
            i64::from(settings.penalty_interval) * 60
        } else {
            0
        };
        return Decision {
            write: Some(Triplet {
                earliest_accept: triplet.earliest_accept.saturating_add(penalty),
                last_seen: now,
                ..triplet
            }),
            ..Decision::by_rule(Verdict::Defer, Reason::EarlyRetry)
        };
    }
    trace.push(|| Step::Triplet(TripletSeen::InTime));
    let delay = (triplet.pass_count == 0).then(|| now.saturating_sub(triplet.first_seen));
    passed(triplet, delay, Reason::TripletFound)
}

/// DESIGN.md §4's rule for a message with several recipients: deferred if any recipient defers,
/// rejected only if all reject, otherwise passed. An empty list passes.
pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut any = false;
    let mut all_reject = true;
    let mut any_defer = false;
    for verdict in verdicts {
        any = true;
        any_defer |= verdict == Verdict::Defer;
        all_reject &= verdict == Verdict::Reject;
    }
    if any_defer {
        Verdict::Defer
    } else if any && all_reject {
        Verdict::Reject
    } else {
        Verdict::Pass
    }
}

/// The triplet sender: lower-cased, and with `normalize` folded so that the VERP, BATV and
/// sub-address variants of one list's sender count as one (DESIGN.md §4).
pub fn triplet_sender(sender: &str, normalize: bool) -> String {
    let sender = sender.to_lowercase();
    if !normalize {
        return sender;
    }
    let Some((local, domain)) = sender.rsplit_once('@') else {
        return sender;
    };
    let local = strip_batv(local);
    let local = local.split_once('+').map_or(local, |(base, _)| base);
    let mut folded = String::with_capacity(local.len());
    let mut in_digits = false;
    for c in local.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                folded.push('#');
            }
            in_digits = true;
        } else {
            folded.push(c);
            in_digits = false;
        }
    }
    format!("{folded}@{domain}")
}

/// Strips a BATV tag: `prvs=<tag>=<local>` and Microsoft's `msprvs1=<tag>=<local>`.
fn strip_batv(local: &str) -> &str {
    for prefix in ["prvs=", "msprvs1=", "btv1="] {
        if let Some(rest) = local.strip_prefix(prefix)
            && let Some((_, original)) = rest.split_once('=')
            && !original.is_empty()
        {
            return original;
        }
    }
    local
}

#[cfg(test)]
mod normalisation_tests {
    use super::*;

    // DESIGN.md §4 step 6: lower-case; +extension, BATV tags and digit runs folded when normalising.
    #[test]
    fn triplet_senders_fold_list_variants() {
        assert_eq!(
            triplet_sender("John@Example.COM", false),
            "john@example.com"
        );
        assert_eq!(
            triplet_sender("john+news@example.com", true),
            "john@example.com"
        );
        assert_eq!(
            triplet_sender("prvs=0123abcd=john@example.com", true),
            "john@example.com"
        );
        assert_eq!(
            triplet_sender("bounce-1234-5678@list.example", true),
            triplet_sender("bounce-99-1@list.example", true)
        );
        assert_eq!(
            triplet_sender("user2@host9.example", true),
            "user#@host9.example"
        );
        assert_eq!(triplet_sender("", true), "");
    }

    // DESIGN.md §4 "Client key": /24 and /64 by default, exact with 32/128, mapped IPv6 as IPv4.
    #[test]
    fn client_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let defaults = Settings::default();
        assert_eq!(
            client_network(ip("198.51.100.7"), &defaults),
            "198.51.100.0/24"
        );
        assert_eq!(
            client_network(ip("::ffff:198.51.100.7"), &defaults),
            "198.51.100.0/24"
        );
        assert_eq!(
            client_network(ip("2001:db8:1:2:3::5"), &defaults),
            "2001:db8:1:2::/64"
        );
        let exact = Settings {
            ipv4_prefix: 32,
            ipv6_prefix: 128,
            ..Settings::default()
        };
        assert_eq!(
            client_network(ip("198.51.100.7"), &exact),
            "198.51.100.7/32"
        );
        assert_eq!(client_network(ip("2001:db8::5"), &exact), "2001:db8::5/128");
        let zero = Settings {
            ipv4_prefix: 0,
            ..Settings::default()
        };
        assert_eq!(client_network(ip("198.51.100.7"), &zero), "0.0.0.0/0");
    }
}
