//! The greylisting decision (DESIGN.md §4) as pure functions: settings, lists, triplet state, request
//! and time in; verdict, reason and the triplet record to write out. No I/O, no clock.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::config::Settings;
use crate::dns::DnsFacts;
use crate::pattern::Pattern;
use crate::store::Triplet;

mod clients;
mod embeds;
mod key;
mod lists;
mod trace;
mod triplet;

pub use clients::{Suspicion, ZoneSeen, name_suspicion, verified_name};
pub use embeds::embeds_address;
pub use key::{ClientKey, KeyBasis, client_key, client_network};
pub use lists::{
    CompiledLists, PolicyOutcome, RecipientPolicy, decide_by_lists, decide_by_policy,
    decide_by_policy_traced,
};

pub use trace::{ListSeen, Step, Trace, TripletSeen};
pub use triplet::{
    ClientState, combine, decide_by_triplet, decide_by_triplet_traced, triplet_sender,
};

/// What happens to the mail for one recipient (or a whole message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Accept.
    Pass,
    /// Temporary failure: the sender should retry.
    Defer,
    /// Permanent failure.
    Reject,
}

impl Verdict {
    /// Lower-case name used in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Defer => "defer",
            Verdict::Reject => "reject",
        }
    }
}

/// Which rule of DESIGN.md §4 decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Checking is off server-wide.
    Disabled,
    /// Checking is off for the recipient's domain.
    DomainDisabled,
    /// The client authenticated (SMTP AUTH or a relay client).
    Authenticated,
    /// No client address: a local injection.
    LocalInjection,
    /// The client host name matched a white domains pattern.
    WhiteHost,
    /// The client host name matched a black domains pattern.
    BlackHost,
    /// The sender matched the recipient's own white list.
    MailboxWhite,
    /// The sender matched the recipient's own black list.
    MailboxBlack,
    /// The sender matched the server white list.
    ServerWhite,
    /// The sender matched the server black list.
    ServerBlack,
    /// The client address is listed on a DNS whitelist zone (the zone is the decision's
    /// `pattern`; logged as `dnswl <zone>`).
    Dnswl,
    /// Selective greylisting: the client is not suspicious.
    TrustedClient,
    /// The client network is auto-whitelisted.
    ClientAwl,
    /// Unknown or expired triplet: recorded, deferred.
    New,
    /// Known triplet retried before its earliest-accept time.
    EarlyRetry,
    /// Known triplet retried in time: accepted.
    TripletFound,
}

impl Reason {
    /// The text used in log lines (`reason=<...>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Disabled => "disabled",
            Reason::DomainDisabled => "disabled for domain",
            Reason::Authenticated => "authenticated",
            Reason::LocalInjection => "no client address",
            Reason::WhiteHost => "white domains pattern",
            Reason::BlackHost => "black domains pattern",
            Reason::MailboxWhite => "user white list",
            Reason::MailboxBlack => "user black list",
            Reason::ServerWhite => "server white list",
            Reason::ServerBlack => "server black list",
            Reason::Dnswl => "dnswl",
            Reason::TrustedClient => "trusted client",
            Reason::ClientAwl => "client AWL",
            Reason::New => "new",
            Reason::EarlyRetry => "early-retry",
            Reason::TripletFound => "triplet found",
        }
    }

    /// Plesk's list type (`black`/`white`) for list hits, as logged by its filter.
    pub fn list_type(self) -> Option<&'static str> {
        match self {
            Reason::WhiteHost | Reason::MailboxWhite | Reason::ServerWhite => Some("white"),
            Reason::BlackHost | Reason::MailboxBlack | Reason::ServerBlack => Some("black"),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Pass, defer or reject.
    pub verdict: Verdict,
    /// The rule that decided.
    pub reason: Reason,
    /// The list pattern that matched, for list rules; the listing zone for [`Reason::Dnswl`].
    pub pattern: Option<String>,
    /// Seconds the triplet waited, on its first pass only (for `X-Greylist`).
    pub delay: Option<i64>,
    /// The triplet record to store, when the rule touches one.
    pub write: Option<Triplet>,
}

impl Decision {
    fn by_rule(verdict: Verdict, reason: Reason) -> Decision {
        Decision {
            verdict,
            reason,
            pattern: None,
            delay: None,
            write: None,
        }
    }

    fn by_pattern(verdict: Verdict, reason: Reason, pattern: &Pattern) -> Decision {
        Decision {
            pattern: Some(pattern.as_str().to_string()),
            ..Decision::by_rule(verdict, reason)
        }
    }
}

/// The facts about one recipient of a message.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Client IP address; `None` for local injection.
    pub client_ip: Option<IpAddr>,
    /// Client host name, if any: verified (forward-confirmed) unless `client_name_unconfirmed`.
    pub client_name: Option<&'a str>,
    /// Whether nobody verified `client_name` yet (the filter's name from a qmail-form
    /// `Received:` header): with `greylist-clients suspicious` it then counts only when
    /// `dns.forward` is [`crate::dns::Forward::Confirmed`].
    pub client_name_unconfirmed: bool,
    /// What DNS said about the client (zones not in the facts count as not listed).
    pub dns: &'a DnsFacts,
    /// Envelope sender as given (empty for bounces).
    pub sender: &'a str,
    /// Envelope recipient as given.
    pub recipient: &'a str,
    /// Whether the client authenticated or is a relay client.
    pub authenticated: bool,
}

impl<'a> Request<'a> {
    /// The client host name the rules may use ([`verified_name`]).
    pub fn verified_name(&self, settings: &Settings) -> Option<&'a str> {
        verified_name(
            settings,
            self.client_name,
            self.client_name_unconfirmed,
            self.dns,
        )
    }
}
