//! The SQLite configuration tables: settings, lists, per-domain flags, pattern notices and the
//! configuration stamp.

use rusqlite::{OptionalExtension, params};

use super::SqliteTx;
use crate::config::{ListKind, Settings};
use crate::store::{ConfigTx, StoreError};

impl ConfigTx for SqliteTx<'_> {
    fn config_stamp(&mut self) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached("SELECT generation FROM config_generation WHERE id = 1")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    fn settings(&mut self) -> Result<Settings, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM settings")
            .map_err(|e| self.err(e))?;
        let pairs = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(Settings::from_pairs(
            pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        ))
    }

    fn set_settings(&mut self, settings: &Settings) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)")
            .map_err(|e| self.err(e))?;
        for (name, value) in settings.to_pairs() {
            stmt.execute(params![name, value])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn list(&mut self, kind: ListKind, owner: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT pattern FROM list_entries WHERE list = ?1 AND owner = ?2 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![kind.as_str(), owner], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn pattern_notices(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT pattern FROM pattern_notices ORDER BY id")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn clear_pattern_notices(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM pattern_notices", [])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn add_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        self.edit_list(
            "INSERT OR IGNORE INTO list_entries (list, owner, pattern) VALUES (?1, ?2, ?3)",
            kind,
            owner,
            pattern,
        )
    }

    fn delete_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        self.edit_list(
            "DELETE FROM list_entries WHERE list = ?1 AND owner = ?2 AND pattern = ?3",
            kind,
            owner,
            pattern,
        )
    }

    fn domain_status(&mut self, domain: &str) -> Result<Option<bool>, StoreError> {
        self.conn
            .prepare_cached("SELECT enabled FROM domains WHERE domain = ?1")
            .and_then(|mut stmt| stmt.query_row(params![domain], |row| row.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    fn set_domain_status(&mut self, domain: &str, enabled: bool) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO domains (domain, enabled) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute(params![domain, enabled]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn domains(&mut self) -> Result<Vec<(String, bool)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT domain, enabled FROM domains ORDER BY domain")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn delete_domain(&mut self, domain: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM domains WHERE domain = ?1")
            .and_then(|mut stmt| stmt.execute(params![domain]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn mailboxes(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT owner FROM list_entries WHERE owner <> '' ORDER BY owner",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }
}

impl SqliteTx<'_> {
    /// Runs a list edit: `sql` adds or deletes the entry `?1` (list), `?2` (owner), `?3`
    /// (pattern).
    fn edit_list(
        &self,
        sql: &str,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params![kind.as_str(), owner, pattern]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
