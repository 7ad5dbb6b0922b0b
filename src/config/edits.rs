//! List edits: the `<add|del>:<p1,p2>` grammar, what an edit changes in a stored list and its
//! warnings.

use thiserror::Error;

use crate::bounds::OverLimit;
use crate::pattern::same_pattern;

use super::{ListKind, ValueError};

/// What is wrong with a list edit (after `malformed list edit '<edit>': `).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditFault {
    /// Nothing between two `;` (or nothing at all).
    #[error("empty group")]
    EmptyGroup,
    /// A group without `:` (the group as given).
    #[error("group '{0}' has no ':' (expected add:... or del:...)")]
    NoColon(String),
    /// An operation other than `add` or `del` (as given).
    #[error("unknown operation '{0}' (expected add or del)")]
    UnknownOp(String),
    /// One of its patterns.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

/// A pattern that could only be a mistake.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// No pattern at all.
    #[error("empty pattern")]
    Empty,
    /// Over the length limit.
    #[error(transparent)]
    TooLong(#[from] OverLimit),
    /// An empty `|` alternative, which would match every host (the pattern).
    #[error("pattern '{0}' has an empty '|' alternative")]
    EmptyAlternative(String),
    /// White space or a control character (the pattern).
    #[error("pattern '{0}' contains white space or a control character")]
    WhiteSpace(String),
}

/// Add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOp {
    /// Add the patterns (existing ones are left as stored and get a warning).
    Add,
    /// Delete the patterns (missing ones change nothing and get a warning).
    Del,
}

/// One `<add|del>:<p1,p2>` group of a list edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditGroup {
    /// Add or delete.
    pub op: EditOp,
    /// The patterns, in the order given.
    pub patterns: Vec<String>,
}

/// A whole list edit: groups applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListEdit {
    /// The groups, in order.
    pub groups: Vec<EditGroup>,
}

/// Parses the list-edit grammar `<add|del>:<pattern1[,pattern2]>;<add|del>:...`.
pub fn parse_list_edit(edit: &str) -> Result<ListEdit, ValueError> {
    let malformed = |why: EditFault| ValueError::MalformedEdit {
        edit: crate::bounds::abridged(edit),
        why,
    };
    let mut groups = Vec::new();
    for group in edit.split(';') {
        let group = group.trim();
        if group.is_empty() {
            return Err(malformed(EditFault::EmptyGroup));
        }
        let (op, patterns) = group
            .split_once(':')
            .ok_or_else(|| malformed(EditFault::NoColon(group.to_string())))?;
        let op = match op.trim() {
            "add" => EditOp::Add,
            "del" => EditOp::Del,
            other => return Err(malformed(EditFault::UnknownOp(other.to_string()))),
        };
        let mut parsed = Vec::new();
        for pattern in patterns.split(',') {
            let pattern = pattern.trim();
            check_pattern(pattern).map_err(|e| malformed(e.into()))?;
            parsed.push(pattern.to_string());
        }
        groups.push(EditGroup {
            op,
            patterns: parsed,
        });
    }
    Ok(ListEdit { groups })
}

/// Rejects patterns that could only be mistakes: empty ones, empty `|` alternatives (which would
/// match every host), white space and control characters.
pub fn check_pattern(pattern: &str) -> Result<(), PatternError> {
    if pattern.is_empty() {
        return Err(PatternError::Empty);
    }
    crate::bounds::check_pattern_length(pattern)?;
    if pattern.split('|').any(str::is_empty) {
        return Err(PatternError::EmptyAlternative(pattern.to_string()));
    }
    if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(PatternError::WhiteSpace(pattern.to_string()));
    }
    Ok(())
}

/// One change a list edit makes to a stored list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListChange {
    /// Append this pattern.
    Add(String),
    /// Delete the stored pattern spelt exactly so.
    Del(String),
}

/// What an edit does to the list `kind` of `owner` (`""`: the server's) holding `list`
/// (patterns compare ignoring case, as the matcher does): the changes to make, in order, and the
/// `Warning:` lines — for each pattern added that will not match as meant
/// (`crate::pattern::lint`), each add of a pattern already there (its stored spelling is
/// kept) and each delete that removes nothing.
pub fn plan_edit(
    list: &[String],
    edit: &ListEdit,
    kind: ListKind,
    owner: &str,
) -> (Vec<ListChange>, Vec<String>) {
    let list_name = kind.display_name(owner);
    let mut current = list.to_vec();
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for group in &edit.groups {
        for pattern in &group.patterns {
            let present = current.iter().any(|p| same_pattern(p, pattern));
            match (group.op, present) {
                (EditOp::Add, false) => {
                    if let Some(target) = kind.lint_target() {
                        warnings.extend(crate::pattern::lint::warnings(pattern, target));
                    }
                    current.push(pattern.clone());
                    changes.push(ListChange::Add(pattern.clone()));
                }
                (EditOp::Add, true) => {
                    warnings.push(format!("Warning: {pattern} is already in the {list_name}"));
                }
                (EditOp::Del, true) => current.retain(|p| {
                    let same = same_pattern(p, pattern);
                    if same {
                        changes.push(ListChange::Del(p.clone()));
                    }
                    !same
                }),
                (EditOp::Del, false) => {
                    warnings.push(format!("Warning: {pattern} is not in the {list_name}"));
                }
            }
        }
    }
    (changes, warnings)
}

/// Applies an edit to a list held in memory (insertion order kept; adds of present patterns and
/// deletes of missing ones change nothing; patterns compare ignoring case).
pub fn apply_edit(list: &mut Vec<String>, edit: &ListEdit) {
    // Which list only shapes the warnings, which are not wanted here.
    let (changes, _) = plan_edit(list, edit, ListKind::Black, "");
    for change in changes {
        match change {
            ListChange::Add(pattern) => list.push(pattern),
            ListChange::Del(pattern) => list.retain(|p| *p != pattern),
        }
    }
}

/// Puts the names in an edit's patterns into A-label form (see `crate::names`).
pub fn edit_to_ascii(kind: ListKind, edit: ListEdit) -> Result<ListEdit, ValueError> {
    let groups = edit
        .groups
        .into_iter()
        .map(|group| {
            let patterns = group
                .patterns
                .into_iter()
                .map(|pattern| {
                    crate::names::pattern_to_ascii(&pattern, kind.is_host())
                        .map_err(|why| ValueError::PatternName { pattern, why })
                })
                .collect::<Result<_, _>>()?;
            Ok(EditGroup {
                op: group.op,
                patterns,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ListEdit { groups })
}
