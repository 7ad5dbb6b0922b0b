//! Values a group member can plant in the store, and text echoed from files and arguments,
//! reach root's terminal escaped: no terminal control sequence, no forged `SUCCESS:` line.
//! Ordinary patterns print exactly as stored.

use rusqlite::Connection;

use crate::support::Test;

const EVIL: &str = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\nSUCCESS: forged@x";
const SHOWN: &str = "evil\\x1b]0;pwned\\x07\\x1b[2J\\x0aSUCCESS: forged@x";

fn assert_clean(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters in {text:?}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("SUCCESS: forged")),
        "a forged line in {text:?}"
    );
}

#[test]
fn stored_patterns_print_escaped_and_ordinary_ones_unchanged() {
    let t = Test::new();
    t.run(&["-um", "john@example.com", "-blacklist", "add:*@x.example"]);
    let db = Connection::open(t.db()).unwrap();
    for (list, owner) in [("black", ""), ("black", "john@example.com")] {
        db.execute(
            "INSERT INTO list_entries (list, owner, pattern) VALUES (?1, ?2, ?3)",
            (list, owner, EVIL),
        )
        .unwrap();
    }
    drop(db);
    for args in [&["-i"][..], &["-im", "john@example.com"]] {
        let out = t.run(args);
        assert_clean(&out.stdout);
        assert!(
            out.stdout.contains(&format!("\n{SHOWN}\n")),
            "{}",
            out.stdout
        );
    }
    let info = t.run(&["-i"]).stdout;
    for plain in ["dsl|broadband|hsd", "*google.com"] {
        assert!(info.contains(&format!("\n{plain}\n")), "{info}");
    }
}

#[test]
fn echoed_input_in_error_lines_is_escaped() {
    let t = Test::new();
    t.run(&["-i"]);
    let plesk = t.dir().join("plesk.txt");
    std::fs::write(&plesk, "Grey listing checking  \u{1b}[2Jenabled\n").unwrap();
    let out = t.run_raw(&["--import-plesk", plesk.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_clean(&out.stderr);
    assert!(out.stderr.contains("\\x1b[2J"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);

    let out = t.run_raw(&["-um", "a\n@c.com", "-blacklist", "add:x@y"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_clean(&out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
