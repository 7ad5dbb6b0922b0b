//! `grey_listing --report --html FILE`: one self-contained, well-formed page with an SVG per
//! chart and a table of the same numbers under each, every stored value escaped, and exactly
//! the numbers `--report --json` prints.

use std::path::Path;

use grey_listing::store::LogEntry;

use crate::support::Backend;
use crate::support::ext::{Db, T0, seed_week};

const SVG_NS: &str = "http://www.w3.org/2000/svg";
/// An organisation name no real host gives, written straight into the decision log.
const HOSTILE: &str = "<script>alert(\"x\")</script>&amp;\u{1}.example";

fn seed_hostile(db: &Db) {
    let mut store = db.open();
    store
        .write(&mut |tx| {
            for minute in 0..2 {
                tx.log_decision(&LogEntry {
                    time: T0 + 7_200 + minute * 60,
                    client_network: "203.0.113.0/24".to_string(),
                    organisation: HOSTILE.to_string(),
                    client_address: "203.0.113.9".to_string(),
                    sender: "a@b.example".to_string(),
                    recipient: "u@local.example".to_string(),
                    verdict: "defer".to_string(),
                    reason: "new".to_string(),
                    ..LogEntry::default()
                })?;
            }
            Ok(())
        })
        .unwrap();
}

/// The cells of every row of the table with `id`, header row left out.
fn table(doc: &roxmltree::Document<'_>, id: &str) -> Vec<Vec<String>> {
    let table = doc
        .descendants()
        .find(|n| n.has_tag_name("table") && n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no table {id}"));
    table
        .children()
        .filter(|n| n.has_tag_name("tr"))
        .filter(|tr| tr.children().any(|c| c.has_tag_name("td")))
        .map(|tr| {
            tr.children()
                .filter(|c| c.is_element())
                .map(|c| {
                    c.descendants()
                        .filter(|t| t.is_text())
                        .filter_map(|t| t.text())
                        .collect::<String>()
                })
                .collect()
        })
        .collect()
}

fn number(cell: &str) -> u64 {
    cell.parse()
        .unwrap_or_else(|_| panic!("not a number: {cell}"))
}

fn page_matches_json(backend: Backend) {
    let db = Db::on(backend);
    seed_week(&db);
    seed_hostile(&db);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    let now = T0 + 86_400;
    let said = db.ok(now, &["--report", "--html", file.to_str().unwrap()]);
    assert!(
        said.starts_with("SUCCESS: HTML report written to "),
        "{said}"
    );
    let html = std::fs::read_to_string(&file).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&db.ok(now, &["--report", "--json"])).unwrap();

    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, options)
        .unwrap_or_else(|e| panic!("not well-formed: {e}\n{html}"));
    // Self-contained: no script, no external resource.
    for node in doc.descendants().filter(|n| n.is_element()) {
        let name = node.tag_name().name();
        assert!(
            !["script", "link", "img", "iframe", "object", "embed"].contains(&name),
            "<{name}> in the page"
        );
        for attribute in node.attributes() {
            assert!(
                attribute.name() == "xmlns" || !attribute.value().contains("://"),
                "external reference {}={}",
                attribute.name(),
                attribute.value()
            );
            assert!(!attribute.name().starts_with("on"), "event handler");
        }
    }
    let charts = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "svg" && n.tag_name().namespace() == Some(SVG_NS))
        .count();
    assert_eq!(charts, 3, "one SVG per chart");

    // The hostile name is text, escaped as the text report escapes it.
    let orgs = table(&doc, "organisations");
    assert!(
        orgs.iter()
            .any(|row| row[0] == "<script>alert(\"x\")</script>&amp;\\x01.example"),
        "{orgs:?}"
    );
    assert!(!html.contains("<script>"));

    // The same numbers as --json.
    let hourly = json["hourly"].as_array().unwrap();
    let rows = table(&doc, "hourly");
    assert_eq!(rows.len(), hourly.len());
    assert_eq!(hourly.len(), 7 * 24 + 1);
    let mut drawn = 0;
    for (row, hour) in rows.iter().zip(hourly) {
        let numbers: Vec<u64> = row[1..].iter().map(|c| number(c)).collect();
        let expected: Vec<u64> = ["pass", "defer", "reject"]
            .iter()
            .map(|k| hour[k].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, expected);
        drawn += numbers.iter().sum::<u64>();
    }
    assert!(drawn > 0);
    let delays: Vec<u64> = table(&doc, "delays")
        .iter()
        .map(|r| number(&r[1]))
        .collect();
    let expected: Vec<u64> = json["delay_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    assert_eq!(delays, expected);
    // seed_week: three first passes after 7 minutes, in the 5-15 minute bucket.
    assert_eq!(expected, [0, 0, 3, 0, 0, 0, 0, 0, 0]);
    let deferrals: Vec<u64> = orgs.iter().map(|r| number(&r[1])).collect();
    let expected: Vec<u64> = json["organisations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["deferrals"].as_u64().unwrap())
        .collect();
    assert_eq!(deferrals, expected);
    let suggestions = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("suggestions"))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_string();
    for s in json["suggestions"].as_array().unwrap() {
        assert!(suggestions.contains(s.as_str().unwrap()), "{suggestions}");
    }
}

on_both_stores!(page_matches_json);

#[test]
fn dash_writes_to_standard_output() {
    let db = Db::new();
    seed_week(&db);
    let html = db.ok(T0, &["--report", "--html", "-"]);
    assert!(html.starts_with("<!DOCTYPE html>\n<html "), "{html}");
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn an_existing_file_is_replaced_and_a_link_never_followed() {
    let db = Db::new();
    seed_week(&db);
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    let link = dir.path().join("report.html");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    db.ok(T0, &["--report", "--html", link.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_file(), "the link was not replaced");
    db.ok(T0, &["--report", "--html", link.to_str().unwrap()]);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn html_excludes_json_and_needs_report() {
    let db = Db::new();
    for args in [
        &["--report", "--html", "-", "--json"][..],
        &["--stats", "--html", "-"],
    ] {
        let out = db.cli(T0).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty());
    }
    let missing = Path::new("/nonexistent-dir/report.html");
    let out = db
        .cli(T0)
        .args(["--report", "--html", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent-dir/report.html"), "{stderr}");
}
