use super::*;

#[test]
fn list_edit_grammar_groups_and_patterns() {
    let edit =
        parse_list_edit("del:*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*;add:*.dynamic.example.net,b")
            .unwrap();
    assert_eq!(edit.groups.len(), 2);
    assert_eq!(edit.groups[0].op, EditOp::Del);
    assert_eq!(edit.groups[1].patterns, vec!["*.dynamic.example.net", "b"]);
}

#[test]
fn list_edit_rejects_mistakes() {
    for bad in [
        "", "add", "add:", "add:a,,b", "put:a", "add:a;", "add:dsl|", "add:a b",
    ] {
        assert!(parse_list_edit(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn apply_edit_keeps_order_and_ignores_noops() {
    let mut list = vec!["a".to_string(), "b".to_string()];
    apply_edit(
        &mut list,
        &parse_list_edit("add:c,a;del:b,zz;add:b").unwrap(),
    );
    assert_eq!(list, ["a", "c", "b"]);
}

#[test]
fn edits_compare_ignoring_case_and_warn_about_noops() {
    let list = vec!["*.AmazonSES.com".to_string(), "*x.com".to_string()];
    let edit = parse_list_edit("del:*.amazonses.com;add:*X.COM,*.x.com;del:nothere").unwrap();
    let (changes, warnings) = plan_edit(&list, &edit, ListKind::DomainsWhite, "");
    assert_eq!(
        changes,
        [
            ListChange::Del("*.AmazonSES.com".to_string()),
            ListChange::Add("*.x.com".to_string())
        ]
    );
    assert_eq!(
        warnings,
        [
            "Warning: *X.COM is already in the white domains patterns list",
            "Warning: nothere is not in the white domains patterns list"
        ]
    );
}

#[test]
fn minutes_ranges() {
    assert_eq!(parse_in_range("0", 0, 43_200), Ok(0));
    assert!(matches!(
        parse_in_range("-1", 0, 10),
        Err(ValueError::OutOfRange { .. })
    ));
    assert!(matches!(
        parse_in_range("5x", 0, 10),
        Err(ValueError::NotANumber(_))
    ));
    assert!(matches!(
        parse_in_range("99999999999999999999999", 0, 10),
        Err(ValueError::OutOfRange { .. })
    ));
}

#[test]
fn domains_and_mails() {
    assert_eq!(parse_domain("Example.COM.").unwrap(), "example.com");
    assert!(parse_domain("exa mple.com").is_err());
    assert!(parse_domain("-x.com").is_err());
    assert!(parse_domain("a..b").is_err());
    assert_eq!(parse_mail("John@Example.com").unwrap(), "john@example.com");
    assert!(parse_mail("example.com").is_err());
    assert!(parse_mail("@example.com").is_err());
    assert!(parse_mail("a@b@c.com").is_err());
    assert_eq!(parse_domain("Bücher.de").unwrap(), "xn--bcher-kva.de");
    assert_eq!(
        parse_domain("xn--bcher-kva.de").unwrap(),
        "xn--bcher-kva.de"
    );
    assert!(parse_domain("xn--zz.de").is_err());
    assert_eq!(
        parse_mail("jörg@bücher.de").unwrap(),
        "jörg@xn--bcher-kva.de"
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90m"), Ok(5400));
    assert_eq!(parse_duration("7d"), Ok(604_800));
    assert!(parse_duration("7").is_err());
    assert!(parse_duration("d").is_err());
}

#[test]
fn settings_round_trip_through_pairs() {
    let settings = Settings {
        grey_interval: 8,
        penalty_enabled: true,
        ..Settings::default()
    };
    let pairs = settings.to_pairs();
    let back = Settings::from_pairs(pairs.iter().map(|(n, v)| (*n, v.as_str())));
    assert_eq!(back, settings);
}

// Each refusal of a list edit or pattern reads word for word as the admin has always seen it.
#[test]
fn list_edit_refusals_read_exactly() {
    let why = |edit: &str| parse_list_edit(edit).unwrap_err().to_string();
    assert_eq!(why(""), "malformed list edit '': empty group");
    assert_eq!(
        why("add"),
        "malformed list edit 'add': group 'add' has no ':' (expected add:... or del:...)"
    );
    assert_eq!(
        why("put:a"),
        "malformed list edit 'put:a': unknown operation 'put' (expected add or del)"
    );
    assert_eq!(
        why("add:a,,b"),
        "malformed list edit 'add:a,,b': empty pattern"
    );
    assert_eq!(
        why("add:dsl|"),
        "malformed list edit 'add:dsl|': pattern 'dsl|' has an empty '|' alternative"
    );
    assert_eq!(
        why("add:a\u{7}b"),
        "malformed list edit 'add:a\u{7}b': pattern 'a\u{7}b' contains white space or a \
         control character"
    );
    let long = "a".repeat(crate::bounds::MAX_PATTERN_CHARS + 1);
    assert_eq!(
        check_pattern(&long).unwrap_err().to_string(),
        format!(
            "a pattern of {} characters is longer than the limit of {} characters",
            crate::bounds::MAX_PATTERN_CHARS + 1,
            crate::bounds::MAX_PATTERN_CHARS
        )
    );
    let edit = parse_list_edit("add:*.bücher.de,*bücher.de").unwrap();
    assert_eq!(
        edit_to_ascii(ListKind::DomainsWhite, edit)
            .unwrap_err()
            .to_string(),
        "pattern '*bücher.de': label '*bücher' mixes wildcards and non-ASCII letters (write \
         *.bücher.de or the xn-- form)"
    );
}

// A refused edit names its fault as a value, down to the pattern and the limit it broke.
#[test]
fn list_edit_refusals_carry_their_fault() {
    use std::error::Error as _;
    let err = parse_list_edit("add:a;add:dsl|").unwrap_err();
    assert_eq!(
        err,
        ValueError::MalformedEdit {
            edit: "add:a;add:dsl|".to_string(),
            why: EditFault::Pattern(PatternError::EmptyAlternative("dsl|".to_string())),
        }
    );
    assert!(err.source().is_some_and(|s| s.is::<EditFault>()));
    let long = "a".repeat(crate::bounds::MAX_PATTERN_CHARS + 1);
    assert_eq!(
        check_pattern(&long),
        Err(PatternError::TooLong(OverLimit::PatternChars(
            crate::bounds::MAX_PATTERN_CHARS + 1
        )))
    );
    let edit = parse_list_edit("add:*bücher.de").unwrap();
    assert!(matches!(
        edit_to_ascii(ListKind::DomainsBlack, edit),
        Err(ValueError::PatternName { why: BadName::MixedLabel(label), .. }) if label == "*bücher"
    ));
}
