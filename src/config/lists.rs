//! The lists: which list a pattern belongs to, the server-wide lists and a mailbox's own.

use serde::{Deserialize, Serialize};

use crate::pattern::Pattern;
use crate::pattern::lint::Target;

use super::{DEFAULT_DOMAINS_BLACKLIST, DEFAULT_DOMAINS_WHITELIST};

/// Which list a pattern belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// Envelope-sender patterns that reject (server-wide, or a mailbox's own).
    Black,
    /// Envelope-sender patterns that pass (server-wide, or a mailbox's own).
    White,
    /// Client host-name patterns that pass.
    DomainsWhite,
    /// Client host-name patterns that reject.
    DomainsBlack,
    /// DNSWL zones: a client address listed on one passes. Zone names, not patterns.
    DnswlZones,
    /// DNSBL zones: a client address listed on one is suspicious. Zone names, not patterns.
    DnsblZones,
}

impl ListKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Black => "black",
            ListKind::White => "white",
            ListKind::DomainsWhite => "domains_white",
            ListKind::DomainsBlack => "domains_black",
            ListKind::DnswlZones => "dnswl_zones",
            ListKind::DnsblZones => "dnsbl_zones",
        }
    }

    /// Whether the list holds DNS zone names (checked by [`parse_zone`], never compiled or
    /// linted as patterns) rather than patterns.
    ///
    /// [`parse_zone`]: super::parse_zone
    pub fn is_zone(self) -> bool {
        matches!(self, ListKind::DnswlZones | ListKind::DnsblZones)
    }

    /// Black host-name patterns are matched unanchored, white ones on whole labels, address
    /// patterns anchored. The decision, `--explain`, `--report` and `--check` all compile here.
    /// Zone lists are not patterns and nothing compiles them; a zone name holds no pattern
    /// character, so compiled anchored it could only ever match itself.
    pub fn compile(self, source: &str) -> Pattern {
        match self {
            ListKind::DomainsWhite => Pattern::white_host(source),
            ListKind::DomainsBlack => Pattern::host(source),
            ListKind::Black | ListKind::White | ListKind::DnswlZones | ListKind::DnsblZones => {
                Pattern::address(source)
            }
        }
    }

    /// Whether the list holds client host-name patterns (else envelope-address patterns).
    pub fn is_host(self) -> bool {
        matches!(self, ListKind::DomainsWhite | ListKind::DomainsBlack)
    }

    /// Which pattern warnings an entry added to this list gets (none for zone names).
    pub fn lint_target(self) -> Option<Target> {
        match self {
            ListKind::Black => Some(Target::BlackAddress),
            ListKind::White => Some(Target::WhiteAddress),
            ListKind::DomainsWhite => Some(Target::WhiteHost),
            ListKind::DomainsBlack => Some(Target::BlackHost),
            ListKind::DnswlZones | ListKind::DnsblZones => None,
        }
    }

    /// The list as warnings name it; `owner` is `""` for server lists, else the mailbox.
    pub fn display_name(self, owner: &str) -> String {
        match (self, owner) {
            (ListKind::Black, "") => "server black list".to_string(),
            (ListKind::White, "") => "server white list".to_string(),
            (ListKind::Black, mail) => format!("black list of {mail}"),
            (ListKind::White, mail) => format!("white list of {mail}"),
            (ListKind::DomainsWhite, _) => "white domains patterns list".to_string(),
            (ListKind::DomainsBlack, _) => "black domains patterns list".to_string(),
            (ListKind::DnswlZones, _) => "DNSWL zones list".to_string(),
            (ListKind::DnsblZones, _) => "DNSBL zones list".to_string(),
        }
    }
}

/// The server-wide lists, as stored (insertion order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerLists {
    /// Server-wide black list (envelope senders).
    pub black: Vec<String>,
    /// Server-wide white list (envelope senders).
    pub white: Vec<String>,
    /// White domains patterns (client host names).
    pub domains_white: Vec<String>,
    /// Black domains patterns (client host names).
    pub domains_black: Vec<String>,
    /// DNSWL zones: a client address listed there passes (DESIGN.md §4). Absent from exports
    /// written before the zone lists existed: empty then.
    #[serde(default)]
    pub dnswl_zones: Vec<String>,
    /// DNSBL zones: a client address listed there is suspicious (DESIGN.md §4).
    #[serde(default)]
    pub dnsbl_zones: Vec<String>,
}

impl ServerLists {
    /// The lists of a new database.
    pub fn defaults() -> ServerLists {
        ServerLists {
            black: Vec::new(),
            white: Vec::new(),
            domains_white: DEFAULT_DOMAINS_WHITELIST
                .iter()
                .map(|s| s.to_string())
                .collect(),
            domains_black: DEFAULT_DOMAINS_BLACKLIST
                .iter()
                .map(|s| s.to_string())
                .collect(),
            dnswl_zones: Vec::new(),
            dnsbl_zones: Vec::new(),
        }
    }

    /// The list of a given kind.
    pub fn get(&self, kind: ListKind) -> &[String] {
        match kind {
            ListKind::Black => &self.black,
            ListKind::White => &self.white,
            ListKind::DomainsWhite => &self.domains_white,
            ListKind::DomainsBlack => &self.domains_black,
            ListKind::DnswlZones => &self.dnswl_zones,
            ListKind::DnsblZones => &self.dnsbl_zones,
        }
    }
}

/// A mailbox's own lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxLists {
    /// The mailbox's black list (envelope senders).
    pub black: Vec<String>,
    /// The mailbox's white list (envelope senders).
    pub white: Vec<String>,
}
