//! A checker of the OpenMetrics text format, as far as greylisting's families use it (shared by
//! the library's unit tests and the scrapes of the real server).

/// Checks every line of `text` against the OpenMetrics text grammar as far as these families
/// use it: `# HELP`/`# TYPE`/`# UNIT` descriptors before their samples, samples named after the
/// family (with `_total`, `_bucket`, `_sum`, `_count` or `_info` as the type requires), label
/// values quoted and escaped, numeric values, and `# EOF` as the last line.
pub(crate) fn check_openmetrics(text: &str) -> Result<(), String> {
    let lines: Vec<&str> = text.split('\n').collect();
    if lines.last() != Some(&"") || lines.len() < 2 || lines[lines.len() - 2] != "# EOF" {
        return Err("the text must end with \"# EOF\\n\"".to_string());
    }
    let mut family: Option<(String, String)> = None;
    let mut seen = std::collections::BTreeSet::new();
    for line in &lines[..lines.len() - 2] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            valid_name(name).map_err(|e| format!("{line}: {e}"))?;
            match kind {
                "HELP" | "UNIT" => {}
                "TYPE" => {
                    let ty = parts.next().unwrap_or("");
                    if !["counter", "gauge", "histogram", "info"].contains(&ty) {
                        return Err(format!("{line}: unknown type"));
                    }
                    if !seen.insert(name.to_string()) {
                        return Err(format!("{line}: family declared twice"));
                    }
                    family = Some((name.to_string(), ty.to_string()));
                }
                _ => return Err(format!("{line}: not a descriptor")),
            }
            continue;
        }
        let (name, ty) = family
            .as_ref()
            .ok_or(format!("{line}: sample before TYPE"))?;
        let (series, value) = line.rsplit_once(' ').ok_or(format!("{line}: no value"))?;
        if value.parse::<f64>().is_err() && !["+Inf", "-Inf", "NaN"].contains(&value) {
            return Err(format!("{line}: bad value"));
        }
        let (sample, labels) = match series.split_once('{') {
            Some((sample, labels)) => (sample, Some(labels)),
            None => (series, None),
        };
        let suffixes: &[&str] = match ty.as_str() {
            "counter" => &["_total"],
            "gauge" => &[""],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &["_info"],
        };
        if !suffixes.iter().any(|s| sample == format!("{name}{s}")) {
            return Err(format!("{line}: sample not of family {name} ({ty})"));
        }
        if let Some(labels) = labels {
            let labels = labels
                .strip_suffix('}')
                .ok_or(format!("{line}: unclosed labels"))?;
            check_labels(labels).map_err(|e| format!("{line}: {e}"))?;
        }
    }
    Ok(())
}

fn valid_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("bad metric name {name:?}"))
    }
}

fn check_labels(mut labels: &str) -> Result<(), String> {
    while !labels.is_empty() {
        let (name, rest) = labels.split_once("=\"").ok_or("label without =\"")?;
        valid_name(name)?;
        let mut escaped = false;
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match (escaped, c) {
                (true, '\\' | '"' | 'n') => escaped = false,
                (true, _) => return Err("bad escape in label value".to_string()),
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(i);
                    break;
                }
                (false, '\n') => return Err("line feed in label value".to_string()),
                _ => {}
            }
        }
        let end = end.ok_or("unterminated label value")?;
        labels = &rest[end + 1..];
        if let Some(next) = labels.strip_prefix(',') {
            labels = next;
        } else if !labels.is_empty() {
            return Err("labels not separated by a comma".to_string());
        }
    }
    Ok(())
}
