//! The SQLite decision log and decision counters.

use rusqlite::params;

use super::SqliteTx;
use crate::store::{DecisionCount, DecisionLogTx, LogEntry, StoreError, rows};

/// The decision-log rows with `time >= ?1`, oldest first, in the columns of [`rows::log_entry`].
const DECISION_LOG_SINCE: &str =
    "SELECT time, client_network, client_key, organisation, client_address,
            client_name, sender, recipient, verdict, reason, pattern, delay
     FROM decision_log WHERE time >= ?1 ORDER BY time, id";

impl DecisionLogTx for SqliteTx<'_> {
    fn log_decision(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO decision_log
                 (time, client_network, client_key, organisation, client_address, client_name,
                  sender, recipient, verdict, reason, pattern, delay)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    entry.time,
                    entry.client_network,
                    entry.client_key,
                    entry.organisation,
                    entry.client_address,
                    entry.client_name,
                    entry.sender,
                    entry.recipient,
                    entry.verdict,
                    entry.reason,
                    entry.pattern,
                    entry.delay,
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn count_decisions(&mut self, counts: &[DecisionCount]) -> Result<(), StoreError> {
        for c in counts {
            self.conn
                .prepare_cached(
                    "INSERT INTO decision_counters (component, action, reason, count)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (component, action, reason) DO UPDATE SET count = count + ?4",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        c.component,
                        c.action,
                        c.reason,
                        rows::sql_int(c.count)
                    ])
                })
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn decision_counters(&mut self) -> Result<Vec<DecisionCount>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT component, action, reason, count FROM decision_counters
                 ORDER BY component, action, reason",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(DecisionCount {
                    component: row.get(0)?,
                    action: row.get(1)?,
                    reason: row.get(2)?,
                    count: row.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        drop(stmt);
        rows.map_err(|e| self.err(e))
    }

    fn decision_log(&mut self, since: i64) -> Result<Vec<LogEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(DECISION_LOG_SINCE)
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![since], |row| rows::log_entry(row))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn each_decision_log(
        &mut self,
        since: i64,
        each: &mut dyn FnMut(&LogEntry),
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(DECISION_LOG_SINCE)
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params![since]).map_err(|e| self.err(e))?;
        // One row, its strings refilled in place: no allocation per row once they have grown.
        let mut entry = LogEntry::default();
        let read = |row: &rusqlite::Row<'_>, entry: &mut LogEntry| -> rusqlite::Result<()> {
            entry.time = row.get(0)?;
            for (index, field) in [
                (1, &mut entry.client_network),
                (2, &mut entry.client_key),
                (3, &mut entry.organisation),
                (4, &mut entry.client_address),
                (5, &mut entry.client_name),
                (6, &mut entry.sender),
                (7, &mut entry.recipient),
                (8, &mut entry.verdict),
                (9, &mut entry.reason),
            ] {
                field.clear();
                field.push_str(row.get_ref(index)?.as_str()?);
            }
            entry.pattern = row.get(10)?;
            entry.delay = row.get(11)?;
            Ok(())
        };
        loop {
            match rows.next() {
                Ok(Some(row)) => read(row, &mut entry).map_err(|e| self.err(e))?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.err(e)),
            }
            each(&entry);
        }
    }

    fn purge_decision_log(&mut self, before: i64, limit: Option<u64>) -> Result<u64, StoreError> {
        let limit = limit.map_or(-1, rows::sql_int);
        self.conn
            .prepare_cached(
                "DELETE FROM decision_log WHERE id IN
                 (SELECT id FROM decision_log WHERE time < ?1 ORDER BY time LIMIT ?2)",
            )
            .and_then(|mut stmt| stmt.execute(params![before, limit]))
            .map(|count| count as u64)
            .map_err(|e| self.err(e))
    }
}
