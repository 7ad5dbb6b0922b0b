//! `grey_listing --stats --prometheus`: the store's decision counters in Prometheus' text
//! format, for node_exporter's textfile collector.
//!
//! The family is `greylisting_store_decisions_total`, not the daemons' own
//! `greylisting_decisions_total`: a dashboard that sums one family never counts a decision twice.
//! The counters live in the store and only grow, so the exported values survive restarts of
//! every daemon; `rate()` works on them as on any counter.

use crate::store::{DecisionCount, Store, StoreError, StoreExt};

/// The family name written.
pub(super) const FAMILY: &str = "greylisting_store_decisions_total";

/// Reads the counters and writes them out.
pub(super) fn text(store: &mut dyn Store) -> Result<String, StoreError> {
    let counters = store.read_with(|tx| tx.decision_counters())?;
    Ok(render(&counters))
}

/// The counters in Prometheus' text exposition format (version 0.0.4, which the textfile
/// collector reads).
pub(super) fn render(counters: &[DecisionCount]) -> String {
    let mut out = format!(
        "# HELP {FAMILY} Greylisting decisions recorded in the database, by component, action and reason.\n\
         # TYPE {FAMILY} counter\n"
    );
    for c in counters {
        out.push_str(&format!(
            "{FAMILY}{{component=\"{}\",action=\"{}\",reason=\"{}\"}} {}\n",
            label_value(&c.component),
            label_value(&c.action),
            label_value(&c.reason),
            c.count
        ));
    }
    out
}

/// A label value as the text format needs it: `\`, `"` and line feeds escaped. The values come
/// from the database, which anyone with write access could have edited: bytes that are not
/// printable are written as `\xNN` too, so a line can never be split or forged.
fn label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\\\x{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(reason: &str) -> DecisionCount {
        DecisionCount {
            component: "policyd".to_string(),
            action: "defer".to_string(),
            reason: reason.to_string(),
            count: 7,
        }
    }

    #[test]
    fn samples_carry_the_three_labels() {
        let text = render(&[count("new")]);
        assert!(text.contains(
            "greylisting_store_decisions_total{component=\"policyd\",action=\"defer\",reason=\"new\"} 7\n"
        ));
        assert!(text.starts_with("# HELP greylisting_store_decisions_total "));
    }

    #[test]
    fn hostile_label_values_stay_on_one_line() {
        let text = render(&[count("a\"b\\c\nd\re")]);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains(r#"reason="a\"b\\c\nd\\x0de"} 7"#), "{text}");
    }
}
