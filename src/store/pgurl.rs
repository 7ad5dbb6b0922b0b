//! Reading a PostgreSQL connection string the way the driver (tokio-postgres 0.7) reads it, so
//! the password can be hidden from every message whatever characters it holds, and our own
//! parameters (`timeout_ms`, `password_file`) can be taken out before the driver sees the string.
//!
//! The driver's URL reading is loose, like libpq's: the user part ends at the FIRST `@` of the
//! whole string (so a password may hold unencoded `/`, `?`, `#` or `:`), the user name ends at
//! the first `:`, the host list ends at the next `/` or `?`, the database name at the next `?`,
//! and query pairs are split at `&` and `=`. The key=value form (`host=h password='p w'`) has
//! whitespace-separated `keyword = value` pairs, values optionally single-quoted, `\` escaping
//! the next character.
//!
//! Redaction errs towards hiding: an unencoded `@` in a password makes the driver end the
//! password early, so everything up to the LAST `@` is hidden; and after a `password` parameter,
//! following pieces that are not a known parameter are hidden too (a password holding an
//! unencoded `&` or an unquoted space).

use std::ops::Range;

/// The driver's connection parameters (tokio-postgres `Config::param`).
const DRIVER_KEYS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslmode",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// Our own parameter: the statement timeout in milliseconds.
pub(super) const TIMEOUT_PARAM: &str = "timeout_ms";
/// Our own parameter: a file whose first line is the password.
pub(super) const PASSWORD_FILE_PARAM: &str = "password_file";

const URL_PREFIXES: [&str; 2] = ["postgres://", "postgresql://"];

fn is_known(key: &str) -> bool {
    DRIVER_KEYS.contains(&key) || key == TIMEOUT_PARAM || key == PASSWORD_FILE_PARAM
}

/// One `key=value` parameter of a connection string.
// Without the PostgreSQL store only redaction reads a string: the parameters go unused.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
#[derive(Debug)]
struct Param {
    /// The key, decoded as the driver decodes it.
    key: String,
    /// The value, decoded as the driver decodes it.
    value: String,
    /// The raw pair, for removing it from the string.
    whole: Range<usize>,
}

/// What a scan of a connection string found.
#[derive(Debug, Default)]
struct Scan {
    /// Byte ranges to hide.
    secrets: Vec<Range<usize>>,
    /// The parameters the driver will read (the URL's query, or every key=value pair).
    params: Vec<Param>,
    /// A problem the driver would reject the string for.
    problem: Option<ConnStringError>,
    /// For a URL: where its query string starts (after the `?`), as the driver sees it.
    query_start: Option<usize>,
}

/// Why a connection string was refused before the driver saw it. No variant holds a value
/// of the string: only parameter names and byte positions.
// Without the PostgreSQL store only redaction reads a string: the problems go unreported.
#[cfg_attr(not(feature = "postgres"), allow(dead_code, unreachable_pub))]
#[derive(Debug, thiserror::Error)]
pub enum ConnStringError {
    /// An unencoded `@` after the user part: the driver would take part of it as the host.
    #[error("the host part of the URL holds '@': write '@' in a user name or password as %40")]
    AtInHost,
    /// Something that is not a known parameter follows `password` (most likely the rest of
    /// the password itself).
    #[error(
        "something that is not a known parameter follows 'password': write '&' in a password \
         as %26 in a URL, and quote a password holding spaces in a key=value string"
    )]
    AfterPassword,
    /// A URL query piece without `=`.
    #[error("a query parameter without '='")]
    QueryWithoutEquals,
    /// A parameter neither the driver nor we know.
    #[error("unknown parameter '{key}'")]
    UnknownParameter {
        /// The parameter's name, decoded.
        key: String,
    },
    /// A key=value string lacks the `=` after a key.
    #[error("'=' expected at byte {at}")]
    EqualsExpected {
        /// Byte position in the string.
        at: usize,
    },
    /// A key=value string lacks the value after an `=`.
    #[error("a value expected at byte {at}")]
    ValueExpected {
        /// Byte position in the string.
        at: usize,
    },
    /// `password_file` appears twice.
    #[error("{PASSWORD_FILE_PARAM} is given twice: keep only one")]
    PasswordFileTwice,
}

/// Whether `value` is a PostgreSQL connection URL.
pub(super) fn is_url(value: &str) -> bool {
    URL_PREFIXES.iter().any(|p| value.starts_with(p))
}

/// Whether `value` is a key=value connection string: its first word is a known parameter
/// followed by `=` (`host=db.example.net dbname=greylisting ...`).
pub(super) fn is_key_value(value: &str) -> bool {
    let trimmed = value.trim_start();
    let end = trimmed
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(trimmed.len());
    is_known(&trimmed[..end]) && trimmed[end..].trim_start().starts_with('=')
}

/// The connection string with every password hidden (`***`); a string that is neither a URL
/// nor a key=value string is returned as it is.
pub(super) fn redact(value: &str) -> String {
    let scan = if is_url(value) {
        scan_url(value)
    } else if is_key_value(value) {
        scan_key_value(value)
    } else {
        return value.to_string();
    };
    let mut secrets = scan.secrets;
    secrets.retain(|r| !r.is_empty());
    secrets.sort_by_key(|r| r.start);
    let mut shown = String::with_capacity(value.len());
    let mut at = 0;
    for range in secrets {
        if range.start > at || (range.start == at && at == 0) {
            shown.push_str(&value[at..range.start]);
            shown.push_str("***");
        }
        // Overlapping or adjacent ranges are shown as one `***`.
        at = at.max(range.end);
    }
    shown.push_str(&value[at..]);
    shown
}

/// Our own parameters, taken out of a connection string.
#[cfg(feature = "postgres")]
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct OwnParams {
    /// `timeout_ms`, as written.
    pub timeout_ms: Option<String>,
    /// `password_file`, decoded.
    pub password_file: Option<String>,
}

/// Checks a connection string as the driver will read it and takes our own parameters out of
/// it. The error names no value of the string, only parameter names and byte positions.
#[cfg(feature = "postgres")]
pub(super) fn split_own(value: &str) -> Result<(String, OwnParams), ConnStringError> {
    let url = is_url(value);
    let scan = if url {
        scan_url(value)
    } else {
        scan_key_value(value)
    };
    if let Some(problem) = scan.problem {
        return Err(problem);
    }
    let mut own = OwnParams::default();
    let mut kept = Vec::new();
    for param in &scan.params {
        match param.key.as_str() {
            TIMEOUT_PARAM => own.timeout_ms = Some(param.value.clone()),
            PASSWORD_FILE_PARAM if own.password_file.is_some() => {
                return Err(ConnStringError::PasswordFileTwice);
            }
            PASSWORD_FILE_PARAM => own.password_file = Some(param.value.clone()),
            _ => kept.push(param.whole.clone()),
        }
    }
    let driver = match (url, scan.query_start) {
        (true, Some(start)) => {
            let pairs: Vec<&str> = kept.iter().map(|r| &value[r.clone()]).collect();
            if pairs.is_empty() {
                value[..start - 1].to_string()
            } else {
                format!("{}{}", &value[..start], pairs.join("&"))
            }
        }
        (true, None) => value.to_string(),
        (false, _) => kept
            .iter()
            .map(|r| &value[r.clone()])
            .collect::<Vec<_>>()
            .join(" "),
    };
    Ok((driver, own))
}

/// Percent-decodes like the driver's `decode` (invalid escapes are kept as they are).
fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(h)), Some(Some(l))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn scan_url(value: &str) -> Scan {
    let body = URL_PREFIXES
        .iter()
        .find(|p| value.starts_with(*p))
        .map_or(0, |p| p.len());
    let mut scan = Scan::default();
    // The driver: the user part is everything before the first '@'.
    let mut driver_rest = body;
    if let (Some(first), Some(last)) = (value[body..].find('@'), value[body..].rfind('@')) {
        let (first, last) = (body + first, body + last);
        let creds = &value[body..first];
        let user_end = body + creds.find(':').unwrap_or(creds.len());
        // A "user" holding URL punctuation means the first '@' lies in the path or query,
        // which may hold a password: hide it.
        let user = &value[body..user_end];
        if user.contains(['?', '&', '=']) {
            // The '@' is inside the query, maybe inside a password value: hide it all.
            scan.secrets.push(body..value.len());
        } else if user.contains('/') {
            scan.secrets.push(body..user_end);
        }
        let hidden_from = if user_end < first {
            user_end + 1
        } else {
            user_end
        };
        // Up to the last '@': an unencoded '@' in a password ends it early for the driver.
        scan.secrets.push(hidden_from..last);
        driver_rest = first + 1;
        let host_end = value[driver_rest..]
            .find(['/', '?'])
            .map_or(value.len(), |i| driver_rest + i);
        if value[driver_rest..host_end].contains('@') {
            scan.problem = Some(ConnStringError::AtInHost);
        }
    }
    scan.query_start = value[driver_rest..].find('?').map(|i| driver_rest + i + 1);
    let Some(start) = scan.query_start else {
        return scan;
    };
    scan_query(value, start, &mut scan);
    scan
}

/// The driver's query reading: a key runs to the next `=` (even across a `&`), its value to
/// the next `&`.
fn scan_query(value: &str, start: usize, scan: &mut Scan) {
    let mut at = start;
    let mut after_password = false;
    while at < value.len() {
        if value[at..].starts_with('&') {
            // An empty pair (`&&`, a leading `&`): skipped, and not passed on to the driver,
            // which would read the next key as `&key`.
            at += 1;
            continue;
        }
        let Some(eq) = value[at..].find('=').map(|i| at + i) else {
            // The driver rejects a key without '=' ("unterminated parameter").
            if after_password {
                scan.secrets.push(at - 1..value.len());
            }
            scan.problem.get_or_insert_with(|| {
                unknown(after_password, ConnStringError::QueryWithoutEquals)
            });
            return;
        };
        let end = value[eq..].find('&').map_or(value.len(), |i| eq + i);
        let key = decode(&value[at..eq]);
        if key.eq_ignore_ascii_case("password") {
            scan.secrets.push(eq + 1..end);
            after_password = true;
        } else if after_password && !is_known(&key) {
            // Most likely the rest of a password holding an unencoded '&' (from that '&' on).
            scan.secrets.push(at - 1..end);
            scan.problem.get_or_insert(ConnStringError::AfterPassword);
        } else {
            after_password = false;
            if !is_known(&key) {
                scan.problem
                    .get_or_insert_with(|| ConnStringError::UnknownParameter { key: key.clone() });
            }
        }
        scan.params.push(Param {
            key,
            value: decode(&value[eq + 1..end]),
            whole: at..end,
        });
        at = end + 1;
    }
}

/// `what`, unless it follows a password: then most likely the rest of that password.
fn unknown(after_password: bool, what: ConnStringError) -> ConnStringError {
    if after_password {
        ConnStringError::AfterPassword
    } else {
        what
    }
}

fn scan_key_value(value: &str) -> Scan {
    let mut scan = Scan::default();
    let bytes = value.as_bytes();
    let skip_ws = |mut i: usize| {
        while let Some(c) = value[i..].chars().next().filter(|c| c.is_whitespace()) {
            i += c.len_utf8();
        }
        i
    };
    let mut at = skip_ws(0);
    let mut after_password = false;
    while at < value.len() {
        let key_end = value[at..]
            .find(|c: char| c.is_whitespace() || c == '=')
            .map_or(value.len(), |i| at + i);
        let key = &value[at..key_end];
        let eq = skip_ws(key_end);
        let hide_rest = |scan: &mut Scan, problem: ConnStringError| {
            if after_password {
                scan.secrets.push(at..value.len());
            }
            scan.problem.get_or_insert(unknown(after_password, problem));
        };
        if bytes.get(eq) != Some(&b'=') {
            hide_rest(&mut scan, ConnStringError::EqualsExpected { at: eq });
            return scan;
        }
        let value_start = skip_ws(eq + 1);
        let Some((raw_end, decoded)) = kv_value(value, value_start) else {
            if key == "password" {
                scan.secrets.push(value_start..value.len());
            }
            hide_rest(
                &mut scan,
                ConnStringError::ValueExpected { at: value_start },
            );
            return scan;
        };
        if key == "password" {
            scan.secrets.push(value_start..raw_end);
            after_password = true;
        } else if !is_known(key) {
            hide_rest(
                &mut scan,
                ConnStringError::UnknownParameter {
                    key: key.to_string(),
                },
            );
            return scan;
        } else {
            after_password = false;
        }
        scan.params.push(Param {
            key: key.to_string(),
            value: decoded,
            whole: at..raw_end,
        });
        at = skip_ws(raw_end);
    }
    scan
}

/// A key=value string's value at `start`: quoted (`'...'`) or up to whitespace, `\` escaping
/// the next character. Returns the end of the raw value and the value; None where the driver
/// fails (empty or unterminated).
fn kv_value(value: &str, start: usize) -> Option<(usize, String)> {
    let quoted = value[start..].starts_with('\'');
    let mut chars = value[start..]
        .char_indices()
        .map(|(i, c)| (start + i, c))
        .skip(usize::from(quoted));
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' if quoted => return Some((i + 1, out)),
            c if !quoted && c.is_whitespace() => return (!out.is_empty()).then_some((i, out)),
            '\\' => out.extend(chars.next().map(|(_, c)| c)),
            c => out.push(c),
        }
    }
    (!quoted && !out.is_empty()).then_some((value.len(), out))
}

// The tests compare with what the driver itself reads.
#[cfg(all(test, feature = "postgres"))]
#[path = "pgurl_tests.rs"]
mod tests;
