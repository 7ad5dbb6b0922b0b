//! One milter connection's state machine: what the MTA told us about the client and the current
//! message, and what we answer to each command. The decision itself is not made here: a RCPT
//! yields [`Step::Decide`] and the event loop decides every waiting recipient of a turn in one
//! transaction (as `greylisting-policyd` does), then hands the outcome to [`Session::decided`].

use std::net::IpAddr;

use super::Config;
use super::protocol::{self, ClientAddress, Command, SMFIF_ADDHDRS, SMFIF_SETSYMLIST, flag};
use crate::daemon::batch::DecideError;
use crate::decision::Verdict;
use crate::engine::{Message, MessageOutcome};
use crate::escape;
use crate::header;
use crate::logging::Logger;
use crate::logline::{self, LineFacts, Shown};

/// The SMTP reply for a deferred recipient.
pub(crate) const REPLY_DEFER: &str = "451 4.7.1 Service unavailable - try again later";
/// The SMTP reply for a rejected recipient.
pub(crate) const REPLY_REJECT: &str = "550 5.7.1 Command rejected";

/// Steps we want and do not answer when the MTA allows it: we never change our mind before
/// RCPT, so answering CONNECT, HELO, MAIL or DATA only costs a round trip. DATA itself is
/// wanted (no `SMFIP_NODATA`): it tells us the message body is on its way, when no idle
/// timeout may close the connection.
const WANTED_FLAGS: u32 = flag::NOHDRS
    | flag::NOBODY
    | flag::NOEOH
    | flag::NOUNKNOWN
    | flag::NR_HDR
    | flag::NR_CONN
    | flag::NR_HELO
    | flag::NR_MAIL
    | flag::NR_DATA
    | flag::NR_UNKN
    | flag::NR_EOH
    | flag::NR_BODY;

/// The macros we ask for, per step, when the MTA lets us choose.
const MACRO_LISTS: &[(u32, &str)] = &[
    (protocol::stage::CONNECT, "{daemon_name} {client_resolve}"),
    (protocol::stage::ENVFROM, "{auth_authen}"),
];

/// What the event loop does after a command.
#[derive(Debug)]
pub(crate) enum Step {
    /// Nothing more: read the next command.
    Next,
    /// Decide this recipient, then call [`Session::decided`]; read nothing meanwhile.
    Decide(Message),
    /// Close the connection once the queued replies are out.
    Quit,
    /// Close the connection now; the text says why (for the log).
    Close(String),
}

/// The current message, from MAIL to end of message or abort.
#[derive(Debug, Default)]
struct MessageState {
    sender: String,
    /// DATA has been seen: the body is being transferred.
    in_data: bool,
    /// The largest first-pass delay among the recipients decided so far.
    max_delay: Option<i64>,
}

/// The state of one connection.
#[derive(Debug, Default)]
pub(crate) struct Session {
    negotiated: bool,
    /// Protocol flags agreed with the MTA.
    flags: u32,
    /// The MTA lets us add headers.
    may_add_headers: bool,
    client_ip: Option<IpAddr>,
    client_name: Option<String>,
    /// The client's address is in `--trusted-networks`.
    trusted: bool,
    /// `{auth_authen}` of the current session is not empty: the client authenticated. Only
    /// that is kept, not the name, which a hostile MTA could make 64 KiB long.
    mta_authenticated: bool,
    /// `{daemon_name}`, for log lines: Sendmail's name of the daemon the client came in
    /// through (`DaemonPortOptions=Name`); Postfix's `milter_macro_daemon_name`, by default
    /// `$myhostname`.
    daemon_name: Option<String>,
    /// `{client_resolve}` (Sendmail): `OK` when the host name was verified. Postfix does not
    /// send it; its host name is verified or in brackets.
    client_resolve: Option<String>,
    message: Option<MessageState>,
}

impl Session {
    /// A connection before negotiation.
    pub(crate) fn new() -> Session {
        Session::default()
    }

    /// Inside a message (between MAIL and its end or abort): never evicted.
    pub(crate) fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// The body is being transferred: no idle timeout applies (the MTA's own timeouts do).
    pub(crate) fn in_data(&self) -> bool {
        self.message.as_ref().is_some_and(|m| m.in_data)
    }

    /// Handles one command, appending any reply to `out`.
    pub(crate) fn handle(&mut self, command: Command, out: &mut Vec<u8>, config: &Config) -> Step {
        if !self.negotiated && !matches!(command, Command::Negotiate { .. } | Command::Quit) {
            return Step::Close("command before option negotiation".to_string());
        }
        match command {
            Command::Negotiate {
                version,
                actions,
                protocol: offered,
            } => return self.negotiate(version, actions, offered, out),
            Command::Macros { stage, pairs } => self.macros(stage, pairs),
            Command::Connect { hostname, address } => {
                self.reset_client();
                self.connect(hostname, address, config);
                self.answer(flag::NR_CONN, out);
            }
            Command::Helo(_) => self.answer(flag::NR_HELO, out),
            Command::Mail(sender) => {
                self.message = Some(MessageState {
                    sender: envelope_address(&sender),
                    ..MessageState::default()
                });
                self.answer(flag::NR_MAIL, out);
            }
            Command::Rcpt(recipient) => return Step::Decide(self.message_for(&recipient)),
            Command::Data => {
                if let Some(message) = self.message.as_mut() {
                    message.in_data = true;
                }
                self.answer(flag::NR_DATA, out);
            }
            // Each step has its own no-reply flag: an MTA that granted one and not another
            // counts on exactly these replies, no more and no fewer.
            Command::Header => self.answer(flag::NR_HDR, out),
            Command::EndOfHeaders => self.answer(flag::NR_EOH, out),
            Command::Body => self.answer(flag::NR_BODY, out),
            Command::UnknownSmtp => self.answer(flag::NR_UNKN, out),
            Command::EndOfMessage => self.end_of_message(out, config),
            // Abort has no reply; the message (not the client) is forgotten.
            Command::Abort => self.message = None,
            Command::Quit => return Step::Quit,
            // The next SMTP session on this connection starts with its own CONNECT (and the
            // macros that precede it).
            Command::QuitNewConnection => {
                self.reset_client();
                self.daemon_name = None;
                self.client_resolve = None;
            }
        }
        Step::Next
    }

    /// Answers the MTA's offer: the highest version both speak, the actions and steps we use
    /// among those offered, and the macros we want.
    fn negotiate(&mut self, version: u32, actions: u32, offered: u32, out: &mut Vec<u8>) -> Step {
        if version < protocol::MIN_VERSION {
            return Step::Close(format!("MTA offers milter protocol version {version}"));
        }
        let version = version.min(protocol::VERSION);
        self.flags = WANTED_FLAGS & offered;
        self.may_add_headers = actions & SMFIF_ADDHDRS != 0;
        let symlist = actions & SMFIF_SETSYMLIST != 0 && version >= 6;
        let actions = actions & (SMFIF_ADDHDRS | if symlist { SMFIF_SETSYMLIST } else { 0 });
        let macros = if symlist { MACRO_LISTS } else { &[] };
        protocol::write_negotiate(out, version, actions, self.flags, macros);
        self.negotiated = true;
        Step::Next
    }

    fn macros(&mut self, stage: u8, pairs: Vec<(String, String)>) {
        // Each MAIL comes with this session's authentication state: a value missing there
        // means no authentication, whatever an earlier packet said.
        if stage == protocol::cmd::MAIL {
            self.mta_authenticated = false;
        }
        for (name, value) in pairs {
            match name.trim_start_matches('{').trim_end_matches('}') {
                "auth_authen" => self.mta_authenticated = !value.is_empty(),
                "daemon_name" => self.daemon_name = Some(escape::shown(&value)),
                "client_resolve" => self.client_resolve = Some(escape::shown(&value)),
                _ => {}
            }
        }
    }

    fn connect(&mut self, hostname: String, address: ClientAddress, config: &Config) {
        self.client_ip = match address {
            ClientAddress::Inet(ip, _) => Some(ip),
            // A local socket or no address: a local injection, as for the other binaries.
            ClientAddress::Unix(_) | ClientAddress::Unknown => None,
        };
        // `[1.2.3.4]` is the MTA saying it could not verify a name; Sendmail also passes a name
        // whose forward lookup failed or did not match, and says so in `{client_resolve}`.
        // Otherwise the name is read as the other front ends read theirs, so the same client
        // has the same name in every log and in the decision log.
        let verified = self
            .client_resolve
            .as_deref()
            .is_none_or(|r| r.eq_ignore_ascii_case("OK"));
        self.client_name = if verified && !hostname.trim_start().starts_with('[') {
            crate::client::verified_name(&hostname)
        } else {
            None
        };
        self.trusted = self
            .client_ip
            .is_some_and(|ip| config.trusted.iter().any(|n| n.contains(ip)));
    }

    /// Forgets the client and its message; the connect-stage macros, which arrive just before
    /// CONNECT, stay.
    fn reset_client(&mut self) {
        self.client_ip = None;
        self.client_name = None;
        self.trusted = false;
        self.mta_authenticated = false;
        self.message = None;
    }

    /// Appends `CONTINUE` unless the MTA agreed that `no_reply` steps get no answer.
    fn answer(&self, no_reply: u32, out: &mut Vec<u8>) {
        if self.flags & no_reply == 0 {
            protocol::write_simple(out, protocol::reply::CONTINUE);
        }
    }

    /// The engine's view of the message for one recipient.
    fn message_for(&self, recipient: &str) -> Message {
        Message {
            client_ip: self.client_ip,
            client_name: self.client_name.clone(),
            sender: self
                .message
                .as_ref()
                .map_or_else(String::new, |m| m.sender.clone()),
            recipients: vec![envelope_address(recipient)],
            // Trusted networks pass like authenticated clients: same rule, same log reason.
            authenticated: self.trusted || self.mta_authenticated,
            ..Message::default()
        }
    }

    /// Answers a RCPT with its decision (`outcome` is `Err` when the store failed: mail passes)
    /// and logs it as the policy server does.
    pub(crate) fn decided(
        &mut self,
        message: &Message,
        outcome: Result<MessageOutcome, DecideError>,
        out: &mut Vec<u8>,
        log: &mut Logger,
    ) {
        match outcome {
            Ok(outcome) => {
                log_outcome(message, &outcome, log);
                match outcome.verdict {
                    Verdict::Defer => protocol::write_reply_code(out, REPLY_DEFER),
                    Verdict::Reject => protocol::write_reply_code(out, REPLY_REJECT),
                    Verdict::Pass => {
                        let delay = outcome
                            .recipients
                            .iter()
                            .filter_map(|r| r.decision.delay)
                            .max();
                        if let (Some(delay), Some(state)) = (delay, self.message.as_mut()) {
                            state.max_delay = state.max_delay.max(Some(delay));
                        }
                        protocol::write_simple(out, protocol::reply::CONTINUE);
                    }
                }
            }
            Err(why) => {
                let sender = Shown::text(&message.sender);
                let recipient = Shown::text(message.recipients.first().map_or("", String::as_str));
                let mut line =
                    logline::failure_line(&why, &line_facts(message, &sender, &recipient));
                if let Some(daemon) = &self.daemon_name {
                    line.push_str(&format!(", daemon_name={daemon}"));
                }
                log.error(&line);
                protocol::write_simple(out, protocol::reply::CONTINUE);
            }
        }
    }

    /// End of message: the header for a first pass, then `CONTINUE` (the message goes on).
    fn end_of_message(&mut self, out: &mut Vec<u8>, config: &Config) {
        if let Some(delay) = self.message.take().and_then(|m| m.max_delay)
            && self.may_add_headers
        {
            let value = header::value(delay, &config.hostname, crate::clock::system_now());
            protocol::write_add_header(out, header::NAME, &value);
        }
        protocol::write_simple(out, protocol::reply::CONTINUE);
    }
}

/// The address inside `<...>` as the MTA passes it (`<>` is the null sender), trimmed, without
/// a source route (`<@relay.example,@b.example:user@example.org>`). RFC 5321 has servers ignore
/// routes, and Postfix hands a policy server the address without one but a milter the SMTP
/// argument as the client wrote it: without this, the same mail would be two triplets in a
/// database both share. A mailbox never starts with `@`, and a route's domains hold no `:`.
fn envelope_address(arg: &str) -> String {
    let arg = arg.trim();
    let address = arg
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(arg)
        .trim();
    let address = match address.split_once(':') {
        Some((_route, mailbox)) if address.starts_with('@') => mailbox,
        _ => address,
    };
    address.to_string()
}

/// The facts the log lines name about `message` and its first recipient (the milter decides one
/// recipient per RCPT).
fn line_facts<'a>(message: &'a Message, sender: &'a Shown, recipient: &'a Shown) -> LineFacts<'a> {
    LineFacts {
        client_name: message.client_name.as_deref(),
        client_ip: message.client_ip,
        sender,
        recipient,
    }
}

fn log_outcome(message: &Message, outcome: &MessageOutcome, log: &mut Logger) {
    let sender = Shown::text(&message.sender);
    for recipient in &outcome.recipients {
        let shown = Shown::text(&recipient.recipient);
        let facts = line_facts(message, &sender, &shown);
        if let Some(hit) = logline::list_hit_line(&recipient.decision, &facts) {
            log.info(&hit);
        }
        log.info(&logline::decision_line(&recipient.decision, &facts));
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
