//! The PostgreSQL configuration tables: settings, lists, per-domain flags, pattern notices and
//! the configuration stamp.

use super::PgTx;
use crate::config::{ListKind, Settings};
use crate::store::{ConfigTx, StoreError};

impl ConfigTx for PgTx<'_> {
    fn config_stamp(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .query(
                "SELECT generation FROM gl_config_generation WHERE id = 1",
                &[],
            )?
            .first()
            .map(|row| row.get(0)))
    }

    fn settings(&mut self) -> Result<Settings, StoreError> {
        self.read_settings("SELECT name, value FROM gl_settings")
    }

    fn settings_for_update(&mut self) -> Result<Settings, StoreError> {
        // Locked in name order, so two updates cannot deadlock on each other's rows. Under READ
        // COMMITTED a row that another update changed is read as committed after the wait.
        self.read_settings("SELECT name, value FROM gl_settings ORDER BY name FOR UPDATE")
    }

    fn set_settings(&mut self, settings: &Settings) -> Result<(), StoreError> {
        // Only the values that differ from what this transaction read are written. Writers run
        // under READ COMMITTED without a table lock, so two admins changing different settings
        // at once both keep their change — the result of running them one after the other —
        // instead of the later one writing back the earlier one's stale value.
        let read = self.settings_read.take().unwrap_or_default();
        for (name, value) in settings.to_pairs() {
            let unchanged = read.iter().any(|(n, v)| *n == name && *v == value);
            if !unchanged {
                self.execute(
                    "INSERT INTO gl_settings (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                    &[&name, &value],
                )?;
            }
        }
        self.settings_read = None;
        Ok(())
    }

    fn list(&mut self, kind: ListKind, owner: &str) -> Result<Vec<String>, StoreError> {
        let cached = self
            .lists_read
            .as_ref()
            .is_some_and(|(cached_owner, _)| cached_owner == owner);
        if !cached {
            let entries = self
                .query(
                    "SELECT list, pattern FROM gl_list_entries WHERE owner = $1 ORDER BY id",
                    &[&owner],
                )?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            self.lists_read = Some((owner.to_string(), entries));
        }
        Ok(self
            .lists_read
            .as_ref()
            .map(|(_, entries)| {
                entries
                    .iter()
                    .filter(|(list, _)| list == kind.as_str())
                    .map(|(_, pattern)| pattern.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn pattern_notices(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query("SELECT pattern FROM gl_pattern_notices ORDER BY id", &[])?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }

    fn clear_pattern_notices(&mut self) -> Result<(), StoreError> {
        self.execute("DELETE FROM gl_pattern_notices", &[])?;
        Ok(())
    }

    fn add_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        self.edit_list(
            "INSERT INTO gl_list_entries (list, owner, pattern) VALUES ($1, $2, $3)
             ON CONFLICT (list, owner, pattern) DO NOTHING",
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
            "DELETE FROM gl_list_entries WHERE list = $1 AND owner = $2 AND pattern = $3",
            kind,
            owner,
            pattern,
        )
    }

    fn domain_status(&mut self, domain: &str) -> Result<Option<bool>, StoreError> {
        Ok(self
            .query(
                "SELECT enabled FROM gl_domains WHERE domain = $1",
                &[&domain],
            )?
            .first()
            .map(|row| row.get(0)))
    }

    fn set_domain_status(&mut self, domain: &str, enabled: bool) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO gl_domains (domain, enabled) VALUES ($1, $2)
             ON CONFLICT (domain) DO UPDATE SET enabled = EXCLUDED.enabled",
            &[&domain, &enabled],
        )?;
        Ok(())
    }

    fn domains(&mut self) -> Result<Vec<(String, bool)>, StoreError> {
        Ok(self
            .query(
                "SELECT domain, enabled FROM gl_domains ORDER BY domain COLLATE \"C\"",
                &[],
            )?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    }

    fn delete_domain(&mut self, domain: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM gl_domains WHERE domain = $1", &[&domain])?;
        Ok(())
    }

    fn mailboxes(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query(
                "SELECT DISTINCT owner COLLATE \"C\" FROM gl_list_entries
                 WHERE owner <> '' ORDER BY 1",
                &[],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }
}

impl PgTx<'_> {
    /// The settings `sql` selects as (name, value) rows, kept as read so `set_settings` writes
    /// only what changed.
    fn read_settings(&mut self, sql: &'static str) -> Result<Settings, StoreError> {
        let pairs: Vec<(String, String)> = self
            .query(sql, &[])?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let settings = Settings::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        self.settings_read = Some(pairs);
        Ok(settings)
    }

    /// Runs a list edit: `sql` adds or deletes the entry `$1` (list), `$2` (owner), `$3`
    /// (pattern). The lists read in this transaction are forgotten, so the next read sees it.
    fn edit_list(
        &mut self,
        sql: &'static str,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        self.lists_read = None;
        self.execute(sql, &[&kind.as_str(), &owner, &pattern])?;
        Ok(())
    }
}
