//! Row mapping shared by the SQL backends: both select the same columns in the same order for a
//! triplet and a decision-log row, so the struct is built in one place from whatever row type
//! the driver hands back.

use super::{LogEntry, Triplet};

/// One result row, read by column position. Each backend implements it for its driver's row.
pub(super) trait Columns {
    /// The driver's error for a column that cannot be read as asked.
    type Error;
    /// An integer column.
    fn int(&self, index: usize) -> Result<i64, Self::Error>;
    /// A nullable integer column.
    fn opt_int(&self, index: usize) -> Result<Option<i64>, Self::Error>;
    /// A text column.
    fn text(&self, index: usize) -> Result<String, Self::Error>;
    /// A nullable text column.
    fn opt_text(&self, index: usize) -> Result<Option<String>, Self::Error>;
}

/// A count or a limit as an SQL integer, which is signed: saturated at `i64::MAX`.
pub(super) fn sql_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A triplet's state from the five columns `first_seen, earliest_accept, last_seen, expires,
/// pass_count` starting at `offset`.
pub(super) fn triplet<R: Columns + ?Sized>(row: &R, offset: usize) -> Result<Triplet, R::Error> {
    Ok(Triplet {
        first_seen: row.int(offset)?,
        earliest_accept: row.int(offset + 1)?,
        last_seen: row.int(offset + 2)?,
        expires: row.int(offset + 3)?,
        pass_count: row.int(offset + 4)?.max(0) as u64,
    })
}

/// A decision-log row from the columns `time, client_network, client_key, organisation,
/// client_address, client_name, sender, recipient, verdict, reason, pattern, delay`.
pub(super) fn log_entry<R: Columns + ?Sized>(row: &R) -> Result<LogEntry, R::Error> {
    Ok(LogEntry {
        time: row.int(0)?,
        client_network: row.text(1)?,
        client_key: row.text(2)?,
        organisation: row.text(3)?,
        client_address: row.text(4)?,
        client_name: row.text(5)?,
        sender: row.text(6)?,
        recipient: row.text(7)?,
        verdict: row.text(8)?,
        reason: row.text(9)?,
        pattern: row.opt_text(10)?,
        delay: row.opt_int(11)?,
    })
}

impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, index: usize) -> Result<i64, rusqlite::Error> {
        self.get(index)
    }
    fn opt_int(&self, index: usize) -> Result<Option<i64>, rusqlite::Error> {
        self.get(index)
    }
    fn text(&self, index: usize) -> Result<String, rusqlite::Error> {
        self.get(index)
    }
    fn opt_text(&self, index: usize) -> Result<Option<String>, rusqlite::Error> {
        self.get(index)
    }
}

/// PostgreSQL rows are read as the store always read them: a column of another type than its
/// own schema declares is a bug that panics in the driver, not an error to handle.
#[cfg(feature = "postgres")]
impl Columns for tokio_postgres::Row {
    type Error = std::convert::Infallible;
    fn int(&self, index: usize) -> Result<i64, Self::Error> {
        Ok(self.get(index))
    }
    fn opt_int(&self, index: usize) -> Result<Option<i64>, Self::Error> {
        Ok(self.get(index))
    }
    fn text(&self, index: usize) -> Result<String, Self::Error> {
        Ok(self.get(index))
    }
    fn opt_text(&self, index: usize) -> Result<Option<String>, Self::Error> {
        Ok(self.get(index))
    }
}
