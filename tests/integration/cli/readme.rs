//! The README's quick tour works as printed: every command in it runs (with the binaries on
//! `PATH` and `GREY_LISTING_DB` set, as the tour says), succeeds, prints nothing on stderr, and
//! prints exactly the output the tour shows (a `...` line stands for lines left out).

use std::path::Path;
use std::process::Command;

/// One command of the tour and the output shown after it (`None`: none is shown).
struct Step {
    command: String,
    output: Option<Vec<String>>,
}

/// The indented lines of the README's "A quick tour" section, as steps.
fn tour() -> Vec<Step> {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("\n## A quick tour\n")
        .expect("the README has a quick tour");
    let section = &readme[start + 1..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    let mut steps: Vec<Step> = Vec::new();
    let mut in_output = false;
    for line in section.lines() {
        let Some(code) = line.strip_prefix("    ") else {
            // Prose (or a blank line between paragraphs) ends a shown output.
            if !line.is_empty() {
                in_output = false;
            }
            continue;
        };
        if let Some(command) = code.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_string(),
                output: Some(Vec::new()),
            });
            in_output = true;
        } else if in_output {
            steps
                .last_mut()
                .and_then(|step| step.output.as_mut())
                .expect("an output line follows a command")
                .push(code.to_string());
        } else if code.starts_with("grey_listing ") {
            steps.push(Step {
                command: code.to_string(),
                output: None,
            });
        }
    }
    steps
}

/// Whether `actual` is `shown`, where a `...` line in `shown` stands for any run of lines.
fn matches(shown: &[String], actual: &[&str]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            actual.first() == Some(&first.as_str()) && matches(rest, &actual[1..])
        }
    }
}

#[test]
fn the_quick_tour_runs_as_printed() {
    let steps = tour();
    assert!(
        steps.len() >= 8,
        "the tour parsed into {} steps",
        steps.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let binary = assert_cmd::cargo::cargo_bin("grey_listing");
    let bin_dir = binary.parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for step in &steps {
        let output = Command::new("sh")
            .arg("-c")
            .arg(&step.command)
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("GREY_LISTING_DB", dir.path().join("greylist.db"))
            .env_remove("GREY_LISTING_CONF")
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            output.status.success() && stderr.is_empty(),
            "README: `{}` failed ({:?}): {stderr}",
            step.command,
            output.status.code()
        );
        if let Some(shown) = &step.output {
            // Markdown shows an empty output line as an empty line, not an indented one.
            let actual: Vec<&str> = stdout.lines().filter(|line| !line.is_empty()).collect();
            let shown: Vec<String> = shown
                .iter()
                .filter(|line| !line.is_empty())
                .cloned()
                .collect();
            assert!(
                matches(&shown, &actual),
                "README: `{}` prints\n{stdout}\nbut the tour shows\n{}",
                step.command,
                shown.join("\n")
            );
        }
    }
    assert!(Path::new(&dir.path().join("greylist.db")).exists());
}
