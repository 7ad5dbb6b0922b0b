//! The migration plan both SQL backends follow: each keeps its own SQL and version numbers
//! (`MIGRATIONS[n]` moves a version-`n` schema to `n + 1`) and runs the plan's steps in order
//! inside one transaction; this module decides which steps run, and what a new database holds.

use super::StoreError;
use crate::config::{ListKind, ServerLists, Settings};

/// One step of bringing a schema up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step<'a> {
    /// Run this migration's SQL.
    Sql(&'a str),
    /// Insert [`default_settings`] and [`default_list_entries`] (after the first migration
    /// created the tables, so only a new database gets them).
    SeedDefaults,
    /// Record the stored server white host patterns that [`needs_notice`] (after the migration
    /// that introduced the whole-label rule).
    RecordWhiteNotices,
}

/// Refuses a database whose schema version `found` is newer than the `supported` one of this
/// build: it was written by a newer grey_listing, and nothing may be written to it.
pub(super) fn refuse_newer(location: &str, found: i64, supported: i64) -> Result<(), StoreError> {
    if found > supported {
        return Err(StoreError::TooNew {
            location: location.to_string(),
            found,
            supported,
        });
    }
    Ok(())
}

/// The steps that move a schema at `version` to `migrations.len()`, in order; `white_rule` is
/// the index of the migration after which white patterns are checked.
pub(super) fn steps<'a>(
    migrations: &[&'a str],
    version: usize,
    white_rule: usize,
) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    for (index, sql) in migrations.iter().enumerate().skip(version) {
        steps.push(Step::Sql(sql));
        if index == 0 {
            steps.push(Step::SeedDefaults);
        }
        if index == white_rule {
            steps.push(Step::RecordWhiteNotices);
        }
    }
    steps
}

/// Every setting of a new database, as (name, value) rows.
pub(super) fn default_settings() -> Vec<(&'static str, String)> {
    Settings::default().to_pairs()
}

/// The server list entries of a new database, as (list, pattern) rows in list order.
pub(super) fn default_list_entries() -> Vec<(&'static str, String)> {
    let lists = ServerLists::defaults();
    [ListKind::DomainsWhite, ListKind::DomainsBlack]
        .into_iter()
        .flat_map(|kind| {
            lists
                .get(kind)
                .iter()
                .map(move |pattern| (kind.as_str(), pattern.clone()))
        })
        .collect()
}

/// Whether a stored white host pattern matches differently under the whole-label rule in a way
/// its author should look at (see [`crate::pattern::white_host_warnings`]).
pub(super) fn needs_notice(pattern: &str) -> bool {
    !crate::pattern::white_host_warnings(pattern).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_seeded_after_the_first_step_and_checked_after_the_white_rule() {
        let sql = ["a", "b", "c"];
        assert_eq!(
            steps(&sql, 0, 1),
            vec![
                Step::Sql("a"),
                Step::SeedDefaults,
                Step::Sql("b"),
                Step::RecordWhiteNotices,
                Step::Sql("c"),
            ]
        );
        // An existing database is never seeded again; past the white rule, nothing is recorded.
        assert_eq!(
            steps(&sql, 1, 1),
            vec![Step::Sql("b"), Step::RecordWhiteNotices, Step::Sql("c")]
        );
        assert_eq!(steps(&sql, 2, 1), vec![Step::Sql("c")]);
        assert_eq!(steps(&sql, 3, 1), vec![]);
    }

    #[test]
    fn defaults_hold_every_setting_and_the_default_server_host_lists() {
        assert_eq!(default_settings(), Settings::default().to_pairs());
        let lists = ServerLists::defaults();
        let expected =
            lists.get(ListKind::DomainsWhite).len() + lists.get(ListKind::DomainsBlack).len();
        assert_eq!(default_list_entries().len(), expected);
    }

    #[test]
    fn only_a_newer_schema_is_refused_and_the_message_names_both_versions() {
        refuse_newer("db", 7, 7).unwrap();
        refuse_newer("db", 0, 7).unwrap();
        let err = refuse_newer("/var/lib/x.db", 8, 7).unwrap_err();
        assert!(matches!(
            err,
            StoreError::TooNew {
                found: 8,
                supported: 7,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "database /var/lib/x.db has schema version 8, newer than this program's 7"
        );
    }
}
