//! The first-contact population (`bench/first_contact_population.tsv`, described in its header
//! comment) and a [`DnsSource`] that answers from it, so the simulation asks "DNS" exactly what
//! the mail path would ask a resolver, without a network.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use grey_listing::dns::{DnsFacts, DnsSource, Forward, Question, ZoneAnswer, ZoneResult};

use crate::retry::Schedule;

/// The DNSWL zone whose answers the file's `dnswl` column holds.
pub(crate) const DNSWL_ZONE: &str = "list.dnswl.org";
/// The DNSBL zone whose answers the file's `dnsbl` column holds.
pub(crate) const DNSBL_ZONE: &str = "zen.spamhaus.org";

const FILE: &str = include_str!("first_contact_population.tsv");
const COLUMNS: [&str; 14] = [
    "category",
    "kind",
    "label",
    "scheme",
    "name",
    "address",
    "forward",
    "embeds",
    "dnswl",
    "dnsbl",
    "share",
    "retry",
    "retry_from",
    "source",
];

/// One client of the population.
pub(crate) struct Client {
    pub legitimate: bool,
    pub kind: String,
    pub label: String,
    /// The PTR name, if the address has one.
    pub name: Option<String>,
    pub ip: Ipv4Addr,
    /// Whether the name's A records hold the address.
    pub forward: bool,
    /// Whether the file says the name embeds the address (checked against the code).
    pub embeds: bool,
    pub dnswl: Option<Ipv4Addr>,
    pub dnsbl: Option<Ipv4Addr>,
    /// First contacts per 1,000 of the category.
    pub share: u64,
    pub retry: Schedule,
    /// The server the provider retries from, when not the same one.
    pub retry_from: Option<(Ipv4Addr, String)>,
}

impl Client {
    /// Address and name of the attempt made `attempt` attempts after the first.
    pub(crate) fn origin(&self, attempt: usize) -> (Ipv4Addr, Option<String>) {
        match &self.retry_from {
            Some((ip, name)) if attempt > 0 => (*ip, Some(name.clone())),
            _ => (self.ip, self.name.clone()),
        }
    }

    /// The PTR name of one of the client's addresses.
    fn name_at(&self, ip: Ipv4Addr) -> Option<&str> {
        match &self.retry_from {
            Some((retry_ip, retry_name)) if *retry_ip == ip => Some(retry_name),
            _ if ip == self.ip => self.name.as_deref(),
            _ => None,
        }
    }
}

/// Parses the population file; the error names the line and the column.
pub(crate) fn load() -> Result<Vec<Client>, String> {
    let mut lines = FILE
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && !line.trim().is_empty());
    let (_, header) = lines.next().ok_or("population file: no header line")?;
    if header.split('\t').collect::<Vec<_>>() != COLUMNS {
        return Err(format!(
            "population file: header is not {}",
            COLUMNS.join(" ")
        ));
    }
    lines
        .map(|(index, line)| {
            parse(line).map_err(|why| format!("population line {}: {why}", index + 1))
        })
        .collect()
}

fn parse(line: &str) -> Result<Client, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [
        category,
        kind,
        label,
        _scheme,
        name,
        address,
        forward,
        embeds,
        dnswl,
        dnsbl,
        share,
        retry,
        retry_from,
        _source,
    ] = fields[..]
    else {
        return Err(format!(
            "{} columns, expected {}",
            fields.len(),
            COLUMNS.len()
        ));
    };
    let legitimate = match category {
        "legit" => true,
        "bot" => false,
        other => return Err(format!("category '{other}'")),
    };
    let ipv4 = |text: &str, column: &str| {
        text.parse::<Ipv4Addr>()
            .map_err(|_| format!("{column} '{text}' is not an IPv4 address"))
    };
    let answer = |text: &str, column: &str| match text {
        "-" => Ok(None),
        text => ipv4(text, column).map(Some),
    };
    let yes_no = |text: &str, column: &str| match text {
        "yes" => Ok(true),
        "no" | "-" => Ok(false),
        other => Err(format!("{column} '{other}'")),
    };
    let retry_from = match retry_from {
        "-" => None,
        text => {
            let (ip, name) = text
                .split_once(' ')
                .ok_or_else(|| format!("retry_from '{text}' is not '<address> <name>'"))?;
            Some((ipv4(ip, "retry_from")?, name.to_string()))
        }
    };
    Ok(Client {
        legitimate,
        kind: kind.to_string(),
        label: label.to_string(),
        name: (name != "-").then(|| name.to_string()),
        ip: ipv4(address, "address")?,
        forward: yes_no(forward, "forward")?,
        embeds: yes_no(embeds, "embeds")?,
        dnswl: answer(dnswl, "dnswl")?,
        dnsbl: answer(dnsbl, "dnsbl")?,
        share: share.parse().map_err(|_| format!("share '{share}'"))?,
        retry: schedule(retry)?,
        retry_from,
    })
}

fn schedule(text: &str) -> Result<Schedule, String> {
    Ok(match text {
        "postfix" => Schedule::Postfix,
        "exim" => Schedule::Exim,
        "exchange" => Schedule::Exchange,
        "qmail" => Schedule::Qmail,
        "never" => Schedule::Never,
        other => match other.strip_prefix("once:").map(str::parse::<i64>) {
            Some(Ok(seconds)) if seconds > 0 => Schedule::Once(seconds),
            _ => return Err(format!("retry '{other}'")),
        },
    })
}

/// What a resolver makes of a list's A record: a listing is `127.x.y.z` with z in 1–254 and
/// not `127.255.255.z` (dnswl.org's "trust none" `127.0.x.0` and Spamhaus's error codes are not).
fn zone_result(answer: Option<Ipv4Addr>) -> ZoneResult {
    match answer {
        Some(a) => {
            let [first, second, third, last] = a.octets();
            let listed = first == 127 && (1..=254).contains(&last) && (second, third) != (255, 255);
            if listed {
                ZoneResult::Listed(a)
            } else {
                ZoneResult::NotListed
            }
        }
        None => ZoneResult::NotListed,
    }
}

/// Answers zone questions and forward confirmations from the population, counting them.
pub(crate) struct PopulationDns<'a> {
    by_ip: HashMap<Ipv4Addr, &'a Client>,
    pub questions: Cell<u64>,
}

impl<'a> PopulationDns<'a> {
    pub(crate) fn new(clients: &'a [Client]) -> PopulationDns<'a> {
        let mut by_ip = HashMap::new();
        for client in clients {
            by_ip.insert(client.ip, client);
            if let Some((ip, _)) = &client.retry_from {
                by_ip.insert(*ip, client);
            }
        }
        PopulationDns {
            by_ip,
            questions: Cell::new(0),
        }
    }
}

impl DnsSource for PopulationDns<'_> {
    fn ask(&self, question: &Question<'_>) -> DnsFacts {
        self.questions.set(self.questions.get() + 1);
        let v4 = match question.ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        // An address outside the population has no listing and no name: NXDOMAIN everywhere.
        let client = v4.and_then(|ip| self.by_ip.get(&ip).copied());
        let zones = question
            .zones
            .iter()
            .map(|zone| {
                let answer = client.and_then(|c| {
                    if zone.eq_ignore_ascii_case(DNSWL_ZONE) {
                        c.dnswl
                    } else if zone.eq_ignore_ascii_case(DNSBL_ZONE) {
                        c.dnsbl
                    } else {
                        None
                    }
                });
                ZoneAnswer {
                    zone: zone.clone(),
                    result: zone_result(answer),
                }
            })
            .collect();
        let forward = question.confirm.map(|asked| {
            let asked = asked.trim_end_matches('.');
            let confirmed = client.zip(v4).is_some_and(|(c, ip)| {
                c.forward && c.name_at(ip).is_some_and(|n| n.eq_ignore_ascii_case(asked))
            });
            if confirmed {
                Forward::Confirmed
            } else {
                Forward::NotConfirmed
            }
        });
        DnsFacts { zones, forward }
    }
}
