//! The list-edit grammar (DESIGN.md §2) round-trips: groups written as `op:p1,p2;op:...` parse back
//! into the same groups, and applying them gives what a plain model of add/del gives.

use grey_listing::config::{EditGroup, EditOp, ListEdit, apply_edit, parse_list_edit};
use proptest::prelude::*;

fn pattern() -> impl Strategy<Value = String> {
    // Pattern characters without the grammar's separators, white space or empty alternatives.
    "[a-c*?.@-]{1,4}(\\|[a-c*]{1,3})?"
}

fn group() -> impl Strategy<Value = EditGroup> {
    (
        prop_oneof![Just(EditOp::Add), Just(EditOp::Del)],
        prop::collection::vec(pattern(), 1..4),
    )
        .prop_map(|(op, patterns)| EditGroup { op, patterns })
}

fn write(edit: &ListEdit) -> String {
    edit.groups
        .iter()
        .map(|g| {
            let op = match g.op {
                EditOp::Add => "add",
                EditOp::Del => "del",
            };
            format!("{op}:{}", g.patterns.join(","))
        })
        .collect::<Vec<_>>()
        .join(";")
}

proptest! {
    // DESIGN.md §2: `<add|del>:<pattern1[,pattern2]>;<add|del>:...`, groups applied in order;
    // adding a present pattern and deleting a missing one are no-ops; literal comparison.
    #[test]
    fn edits_round_trip_and_apply_in_order(
        groups in prop::collection::vec(group(), 1..5),
        start in prop::collection::vec(pattern(), 0..4),
    ) {
        let edit = ListEdit { groups };
        let text = write(&edit);
        let parsed = parse_list_edit(&text).unwrap();
        prop_assert_eq!(&parsed, &edit);

        let mut start_list: Vec<String> = Vec::new();
        for p in start {
            if !start_list.contains(&p) {
                start_list.push(p);
            }
        }
        let mut expected = start_list.clone();
        for g in &edit.groups {
            for p in &g.patterns {
                match g.op {
                    EditOp::Add if !expected.contains(p) => expected.push(p.clone()),
                    EditOp::Del => expected.retain(|q| q != p),
                    EditOp::Add => {}
                }
            }
        }
        let mut list = start_list;
        apply_edit(&mut list, &edit);
        prop_assert_eq!(list, expected);
    }
}
