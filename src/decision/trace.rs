//! The optional trace of one decision: each rule the walk checked, in order, with the value it
//! looked at and what it found, up to the rule that decided. The mail path runs with the trace
//! off (nothing is built); `grey_listing --explain` turns it on and prints it, so the
//! explanation is the walk that decided and can never tell a different story.

use super::{Reason, Suspicion, ZoneSeen};
use crate::dns::Forward;

/// What a list check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSeen {
    /// No value to match: the client has no verified host name.
    Absent,
    /// The value is too long to be matched (a host name over the DNS limit, a sender over the
    /// value limit): it matches no pattern.
    TooLong(String),
    /// Not checked: personal lists are prohibited server-wide.
    Skipped,
    /// The value matched no pattern of the list.
    NoMatch(String),
    /// The value matched this pattern (the list decided).
    Match {
        /// The host name or sender matched.
        value: String,
        /// The first pattern that matched, as stored.
        pattern: String,
    },
}

/// What the triplet check found (the triplet as it was before this request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripletSeen {
    /// Never recorded: created, deferred.
    Unknown,
    /// Recorded but expired: recreated, deferred.
    Expired,
    /// Retried before its earliest-accept time; `left` seconds to go.
    Early {
        /// Seconds until the triplet may pass.
        left: i64,
    },
    /// Retried in time: passed.
    InTime,
}

/// One check of the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Server-wide checking switch.
    Server {
        /// Whether checking is on.
        enabled: bool,
    },
    /// The recipient domain's own switch (`None`: never set, so on).
    Domain {
        /// The stored flag.
        enabled: Option<bool>,
    },
    /// SMTP AUTH or relay client.
    Authentication {
        /// Whether the client authenticated.
        authenticated: bool,
    },
    /// No client address: a local injection (present only when it decided).
    LocalInjection,
    /// A host-name or address list; `rule` names the list by the reason it gives on a match
    /// ([`Reason::WhiteHost`], [`Reason::BlackHost`], [`Reason::MailboxWhite`],
    /// [`Reason::MailboxBlack`], [`Reason::ServerWhite`], [`Reason::ServerBlack`]).
    List {
        /// The rule a match decides by.
        rule: Reason,
        /// What the check saw.
        seen: ListSeen,
    },
    /// Step 4a: the DNS whitelist zones (only when some are configured) and their answers.
    Dnswl {
        /// Each zone in list order with its answer (`None`: not asked, so not listed).
        answers: Vec<ZoneSeen>,
        /// The first zone listing the client address (the step decided).
        listed: Option<String>,
    },
    /// Step 4b (only with `greylist-clients suspicious`): what made the client suspicious, or
    /// that it is trusted.
    Clients {
        /// The forward confirmation of a name nobody verified (`None`: none was needed or none
        /// was answered).
        forward: Option<Forward>,
        /// The DNSBL zones consulted with their answers (empty when the name already made the
        /// client suspicious).
        dnsbl: Vec<ZoneSeen>,
        /// The verdict on the client.
        suspicion: Suspicion,
    },
    /// The client network's auto-whitelist.
    Awl {
        /// Passed triplets needed (`0`: the auto-whitelist is off).
        needed: u32,
        /// Passed triplets counted for the client network.
        passes: u64,
        /// Whether the network is auto-whitelisted (the check decided).
        whitelisted: bool,
    },
    /// The triplet itself.
    Triplet(TripletSeen),
}

/// The steps of one decision, or nothing when tracing is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    steps: Option<Vec<Step>>,
}

impl Trace {
    /// Tracing off: [`Trace::push`] builds nothing.
    pub fn off() -> Trace {
        Trace { steps: None }
    }

    /// Tracing on.
    pub fn on() -> Trace {
        Trace {
            steps: Some(Vec::new()),
        }
    }

    /// Records a step; `step` is only called when tracing is on.
    pub fn push(&mut self, step: impl FnOnce() -> Step) {
        if let Some(steps) = &mut self.steps {
            steps.push(step());
        }
    }

    /// The steps recorded (none when tracing is off).
    pub fn steps(&self) -> &[Step] {
        self.steps.as_deref().unwrap_or_default()
    }
}
