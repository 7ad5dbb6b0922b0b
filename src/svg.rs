//! Small inline-SVG bar charts for the HTML report.
//!
//! Our own few lines instead of a plotting crate: the charts are plain `<rect>` and `<text>`
//! elements, drawn by whatever renders the page, so nothing here needs a font file or a
//! rasteriser (a mail server often has no fonts installed). The markup is well-formed XML, so it
//! can be embedded in an XHTML-compatible page and checked with an XML parser. `plotters`' SVG
//! backend was the alternative: it measures text with system fonts (or needs its font features
//! turned off and labels placed by hand), and brings far more code than two bar-chart shapes need.

use std::fmt::Write;

/// One series of a stacked chart: its name (for the legend) and fill colour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Series {
    /// Legend text.
    pub name: &'static str,
    /// A CSS colour (`#2e7d32`).
    pub color: &'static str,
}

/// A chart of vertical bars, each stacked from its series' values (bottom first).
#[derive(Debug, Clone)]
pub(crate) struct StackedBars<'a> {
    /// Accessible title of the chart.
    pub title: &'a str,
    /// The series, in stacking order.
    pub series: &'a [Series],
    /// One entry per bar: its label and one value per series.
    pub bars: &'a [(String, Vec<u64>)],
    /// Show the label of every `label_every`-th bar only (at least 1).
    pub label_every: usize,
}

const WIDTH: u64 = 1_000;
const HEIGHT: u64 = 320;
const LEFT: u64 = 60;
const RIGHT: u64 = 20;
const TOP: u64 = 36;
const BOTTOM: u64 = 60;

/// `text` escaped for XML/HTML text and attribute values. Control characters are not allowed in
/// XML at all: callers pass values through [`crate::escape::escape`] first, which writes them
/// as `\xNN`; any left are dropped here.
pub(crate) fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The smallest "nice" number (1, 2 or 5 times a power of ten) at least `max`, and at least 1.
pub(crate) fn nice_ceiling(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = step.saturating_mul(factor);
            if candidate >= max || candidate == u64::MAX {
                return candidate.max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// Into how many equal whole steps the axis up to `top` (a [`nice_ceiling`]) is divided.
fn divisions(top: u64) -> u64 {
    [5, 4, 2]
        .into_iter()
        .find(|d| top.is_multiple_of(*d))
        .unwrap_or(1)
}

impl StackedBars<'_> {
    /// The chart as one `<svg>` element.
    pub(crate) fn render(&self) -> String {
        let totals: Vec<u64> = self.bars.iter().map(|(_, v)| v.iter().sum()).collect();
        let top = nice_ceiling(totals.iter().copied().max().unwrap_or(0));
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
             width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\" \
             font-family=\"sans-serif\" font-size=\"12\">",
            escape_xml(self.title)
        );
        let _ = write!(out, "<title>{}</title>", escape_xml(self.title));
        // Grid lines and the value axis in whole steps of the nice ceiling.
        let steps = divisions(top);
        for i in 0..=steps {
            let value = top / steps * i;
            let y = TOP + plot_h - plot_h * i / steps;
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#dddddd\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#333333\">{value}</text>",
                WIDTH - RIGHT,
                LEFT - 6,
                y + 4
            );
        }
        let n = self.bars.len().max(1) as f64;
        let slot = plot_w as f64 / n;
        let bar_w = (slot * 0.8).max(1.0);
        let every = self.label_every.max(1);
        for (index, (label, values)) in self.bars.iter().enumerate() {
            let x = LEFT as f64 + slot * index as f64 + (slot - bar_w) / 2.0;
            let mut base = 0u64;
            for (series, &value) in self.series.iter().zip(values) {
                if value == 0 {
                    continue;
                }
                let y0 = plot_h as f64 * base as f64 / top as f64;
                let h = plot_h as f64 * value as f64 / top as f64;
                let y = (TOP + plot_h) as f64 - y0 - h;
                let _ = write!(
                    out,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" \
                     fill=\"{}\"><title>{}: {} {value}</title></rect>",
                    series.color,
                    escape_xml(label),
                    series.name
                );
                base += value;
            }
            if index % every == 0 {
                let cx = LEFT as f64 + slot * index as f64 + slot / 2.0;
                let ly = TOP + plot_h + 16;
                let _ = write!(
                    out,
                    "<text x=\"{cx:.1}\" y=\"{ly}\" text-anchor=\"middle\" fill=\"#333333\">{}</text>",
                    escape_xml(label)
                );
            }
        }
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#333333\"/>",
            WIDTH - RIGHT,
            y = TOP + plot_h
        );
        // Legend above the plot.
        let mut lx = LEFT;
        for series in self.series {
            let _ = write!(
                out,
                "<rect x=\"{lx}\" y=\"10\" width=\"14\" height=\"14\" fill=\"{}\"/>\
                 <text x=\"{}\" y=\"22\" fill=\"#333333\">{}</text>",
                series.color,
                lx + 20,
                escape_xml(series.name)
            );
            lx += 30 + 8 * series.name.len() as u64;
        }
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(499), 500);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
        assert_eq!([1, 2, 5, 10, 20, 50].map(divisions), [1, 2, 5, 5, 5, 5]);
    }

    #[test]
    fn escapes_markup_and_drops_controls() {
        assert_eq!(
            escape_xml("<a href=\"x\">&'\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn one_rect_per_nonzero_value_and_heights_add_up() {
        const S: [Series; 2] = [
            Series {
                name: "pass",
                color: "#2e7d32",
            },
            Series {
                name: "defer",
                color: "#f9a825",
            },
        ];
        let bars = vec![
            ("a".to_string(), vec![3, 1]),
            ("<b>".to_string(), vec![0, 2]),
        ];
        let svg = StackedBars {
            title: "t",
            series: &S,
            bars: &bars,
            label_every: 1,
        }
        .render();
        // 3 data rects + 2 legend rects.
        assert_eq!(svg.matches("<rect").count(), 5, "{svg}");
        assert!(svg.contains("&lt;b&gt;"));
        assert!(!svg.contains("<b>"));
        // Ceiling 5: the stack of 4 is 4/5 of the 224-pixel plot.
        assert!(svg.contains("height=\"134.4\""), "{svg}");
        assert!(svg.contains("height=\"44.8\""), "{svg}");
    }
}
