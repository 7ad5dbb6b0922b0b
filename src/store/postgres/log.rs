//! The PostgreSQL decision log and decision counters.

use super::PgTx;
use crate::store::{DecisionCount, DecisionLogTx, LogEntry, StoreError, rows};

impl DecisionLogTx for PgTx<'_> {
    fn log_decision(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO gl_decision_log
             (time, client_network, client_key, organisation, client_address, client_name,
              sender, recipient, verdict, reason, pattern, delay)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &entry.time,
                &entry.client_network,
                &entry.client_key,
                &entry.organisation,
                &entry.client_address,
                &entry.client_name,
                &entry.sender,
                &entry.recipient,
                &entry.verdict,
                &entry.reason,
                &entry.pattern,
                &entry.delay,
            ],
        )?;
        Ok(())
    }

    fn count_decisions(&mut self, counts: &[DecisionCount]) -> Result<(), StoreError> {
        for c in counts {
            let count = rows::sql_int(c.count);
            self.execute(
                "INSERT INTO gl_decision_counters (component, action, reason, shard, count)
                 VALUES ($1, $2, $3, floor(random() * 16)::smallint, $4)
                 ON CONFLICT (component, action, reason, shard)
                 DO UPDATE SET count = gl_decision_counters.count + EXCLUDED.count",
                &[&c.component, &c.action, &c.reason, &count],
            )?;
        }
        Ok(())
    }

    fn decision_counters(&mut self) -> Result<Vec<DecisionCount>, StoreError> {
        Ok(self
            .query(
                "SELECT component, action, reason, sum(count)::bigint FROM gl_decision_counters
                 GROUP BY component, action, reason ORDER BY component, action, reason",
                &[],
            )?
            .iter()
            .map(|row| DecisionCount {
                component: row.get(0),
                action: row.get(1),
                reason: row.get(2),
                count: row.get::<_, i64>(3).max(0) as u64,
            })
            .collect())
    }

    fn decision_log(&mut self, since: i64) -> Result<Vec<LogEntry>, StoreError> {
        Ok(self
            .query(
                "SELECT time, client_network, client_key, organisation, client_address,
                        client_name, sender, recipient, verdict, reason, pattern, delay
                 FROM gl_decision_log WHERE time >= $1 ORDER BY time, id",
                &[&since],
            )?
            .iter()
            .map(|row| rows::log_entry(row).unwrap_or_else(|never| match never {}))
            .collect())
    }

    fn purge_decision_log(&mut self, before: i64, limit: Option<u64>) -> Result<u64, StoreError> {
        match limit {
            // A bounded delete, so the mail path prunes a little at a time; SKIP LOCKED lets
            // two hosts prune at once without waiting on each other's rows.
            Some(limit) => {
                let limit = rows::sql_int(limit);
                self.execute(
                    "DELETE FROM gl_decision_log WHERE id IN
                     (SELECT id FROM gl_decision_log WHERE time < $1
                      ORDER BY time LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&before, &limit],
                )
            }
            None => self.execute("DELETE FROM gl_decision_log WHERE time < $1", &[&before]),
        }
    }
}
