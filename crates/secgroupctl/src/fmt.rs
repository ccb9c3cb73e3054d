//! Human output: aligned tables, ellipses, relative times, sizes. Tables
//! are plain (no borders), two spaces between columns, no trailing blanks:
//! easy to read on a terminal and to `grep`/`awk`.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use secgroup_api::Timestamp;

/// The width of a terminal that does not say how wide it is.
pub const DEFAULT_COLUMNS: usize = 100;

/// How wide human output may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// A terminal this many columns wide: long cells give up width (with
    /// `…`), never an address or a port.
    Columns(usize),
    /// Not a terminal (a pipe, a file) or `--wide`: nothing is cut.
    Unlimited,
}

impl Width {
    /// `--wide`, else standard output's terminal: `$COLUMNS` or the
    /// terminal's own width. Not a terminal: unlimited.
    pub fn detect(wide: bool) -> Width {
        if wide || !std::io::stdout().is_terminal() {
            return Width::Unlimited;
        }
        let columns = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0)
            .or_else(terminal_columns)
            .unwrap_or(DEFAULT_COLUMNS);
        Width::Columns(columns)
    }

    /// The room for something laid out for `share` of 100 columns: as
    /// much in proportion to the terminal, unlimited off one.
    pub fn share(self, share: usize) -> usize {
        match self {
            Width::Columns(columns) => (share * columns / DEFAULT_COLUMNS).max(MIN_SHRUNK),
            Width::Unlimited => usize::MAX,
        }
    }

    /// The columns left after `used`, unlimited off a terminal.
    pub fn after(self, used: usize) -> usize {
        match self {
            Width::Columns(columns) => columns.saturating_sub(used).max(MIN_SHRUNK),
            Width::Unlimited => usize::MAX,
        }
    }
}

/// The width of the terminal on standard output (`TIOCGWINSZ`).
fn terminal_columns() -> Option<usize> {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; an
    // fd that is not a terminal makes it fail, which we check.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// A table with a header; columns whose index is in `right` are
/// right-aligned (numbers). Columns in `shrink` give up width, widest
/// first, until the table fits in `width` (their cells then end in `…`;
/// `--json`, `--wide` and pipes have them whole). Addresses and ports are
/// never in `shrink`: a table too wide without them is as wide as it
/// takes. Every line ends with a newline.
pub fn table(
    header: &[&str],
    mut rows: Vec<Vec<String>>,
    right: &[usize],
    shrink: &[usize],
    width: Width,
) -> String {
    if let Width::Columns(columns) = width {
        fit(header, &mut rows, shrink, columns);
    }
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for (index, column) in table.column_iter_mut().enumerate() {
        // Two spaces between columns, none before the first.
        column.set_padding((if index == 0 { 0 } else { 1 }, 1));
        if right.contains(&index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut text = String::new();
    for line in table.lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// Narrower than this, a shrunk column says too little.
const MIN_SHRUNK: usize = 10;

/// Cuts the cells of the `shrink` columns so the table fits in `columns`.
fn fit(header: &[&str], rows: &mut [Vec<String>], shrink: &[usize], columns: usize) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows.iter() {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let gaps = 2 * widths.len().saturating_sub(1);
    while widths.iter().sum::<usize>() + gaps > columns {
        let widest = shrink
            .iter()
            .copied()
            .filter(|&i| {
                widths
                    .get(i)
                    .is_some_and(|&w| w > MIN_SHRUNK.max(header[i].len()))
            })
            .max_by_key(|&i| widths[i]);
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    for row in rows.iter_mut() {
        for &i in shrink {
            if let (Some(cell), Some(&w)) = (row.get_mut(i), widths.get(i)) {
                *cell = ellipsis(cell, w);
            }
        }
    }
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A list joined with `, `, `-` when empty. When it is longer than `max`
/// characters: the items that fit and how many are left out
/// (`198.51.100.0/24, … +8`), at least the first one. An item (an
/// address) is never cut.
pub fn list(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    let joined = items.join(", ");
    if joined.chars().count() <= max {
        return joined;
    }
    for shown in (1..items.len()).rev() {
        let head = items[..shown].join(", ");
        let text = format!("{head}, … +{}", items.len() - shown);
        if text.chars().count() <= max {
            return text;
        }
    }
    match items {
        [only] => only.clone(),
        [first, rest @ ..] => format!("{first}, … +{}", rest.len()),
        [] => "-".to_owned(),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `then_ms` relative to `now_ms`: `just now`, `42s ago`, `3m ago`,
/// `5h ago`, `12d ago` (or `in 3s` for a clock that is ahead).
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    if then_ms > now_ms {
        return format!("in {}", span_ms(then_ms - now_ms));
    }
    let ms = now_ms - then_ms;
    if ms < 1000 {
        "just now".to_owned()
    } else {
        format!("{} ago", span_ms(ms))
    }
}

/// A timestamp as `ago`, `-` when absent.
pub fn when(now_ms: u64, at: Option<&Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), |t| ago(now_ms, t.unix_ms))
}

/// A duration in its largest whole unit: `850ms`, `42s`, `3m`, `5h`, `12d`.
pub fn span_ms(ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    for (size, unit) in UNITS {
        // Two units of the next size down read better than 1 of this
        // one: 90s, not 1m.
        if ms >= size * 2 || (unit == "s" && ms >= size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Bytes in binary units: `812 B`, `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `1 rule`, `3 rules`.
pub fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `label:` padded so values line up, then the value.
pub fn field(label: &str, value: &str) -> String {
    format!("{:<15}{value}\n", format!("{label}:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = 1_000_000_000;
        let cases = [
            (now, "just now"),
            (now - 999, "just now"),
            (now - 1000, "1s ago"),
            (now - 119_000, "119s ago"),
            (now - 120_000, "2m ago"),
            (now - 7_199_000, "119m ago"),
            (now - 3 * 3_600_000, "3h ago"),
            (now - 47 * 3_600_000, "47h ago"),
            (now - 3 * 86_400_000, "3d ago"),
            (now + 5000, "in 5s"),
        ];
        for (then, expected) in cases {
            assert_eq!(ago(now, then), expected, "{}", now - then.min(now));
        }
        assert_eq!(span_ms(250), "250ms");
    }

    #[test]
    fn sizes_and_text() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (5 * 1024 * 1024, "5.0 MiB"),
        ];
        for (n, expected) in cases {
            assert_eq!(bytes(n), expected);
        }
        assert_eq!(ellipsis("203.0.113.0/24", 20), "203.0.113.0/24");
        assert_eq!(ellipsis("abcdefghij", 5), "abcd…");
        assert_eq!(list(&[], 10), "-");
        assert_eq!(list(&["a".into(), "b".into()], 10), "a, b");
        let nets: Vec<String> = ["198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(list(&nets, 30), "198.51.100.0/24, … +2");
        assert_eq!(list(&nets, 40), "198.51.100.0/24, 203.0.113.0/24, … +1");
        // Never an address cut.
        assert_eq!(list(&nets, 12), "198.51.100.0/24, … +2");
        assert_eq!(list(&nets[..1], 5), "198.51.100.0/24");
        assert_eq!(count(1, "rule"), "1 rule");
        assert_eq!(count(2, "rule"), "2 rules");
    }

    #[test]
    fn tables() {
        let text = table(
            &["ID", "NAME", "RULES"],
            vec![
                vec!["sg-web".into(), "web".into(), "3".into()],
                vec!["sg-database".into(), "".into(), "12".into()],
            ],
            &[2],
            &[],
            Width::Columns(100),
        );
        assert_eq!(
            text,
            "ID           NAME  RULES\n\
             sg-web       web       3\n\
             sg-database           12\n"
        );
    }

    #[test]
    fn tables_fit() {
        let long = |c: char, n: usize| -> String { std::iter::repeat_n(c, n).collect() };
        let rows = vec![vec![long('a', 30), long('b', 60), long('c', 40)]];
        let text = table(
            &["A", "B", "C"],
            rows.clone(),
            &[],
            &[1, 2],
            Width::Columns(100),
        );
        let line = text.lines().nth(1).unwrap_or_default();
        assert_eq!(line.chars().count(), 100, "{line}");
        // The widest shrinks first, until both are equally wide.
        assert!(line.contains(&format!("{}…  ", long('b', 32))), "{line}");
        assert!(line.ends_with(&format!("{}…", long('c', 32))), "{line}");
        // Nothing to shrink: as wide as it takes.
        let one = vec![vec![long('a', 120)]];
        assert_eq!(
            table(&["A"], one, &[], &[], Width::Columns(100))
                .lines()
                .nth(1)
                .map(str::len),
            Some(120)
        );
        // The terminal's width, whatever it is.
        let narrow = table(
            &["A", "B", "C"],
            rows.clone(),
            &[],
            &[1, 2],
            Width::Columns(80),
        );
        let line = narrow.lines().nth(1).unwrap_or_default();
        assert_eq!(line.chars().count(), 80, "{line}");
        // Off a terminal, nothing is cut.
        let whole = table(&["A", "B", "C"], rows, &[], &[1, 2], Width::Unlimited);
        assert!(!whole.contains('…'), "{whole}");
        assert_eq!(whole.lines().nth(1).map(str::len), Some(134));
    }

    #[test]
    fn widths() {
        assert_eq!(Width::Columns(100).share(40), 40);
        assert_eq!(Width::Columns(200).share(40), 80);
        assert_eq!(Width::Columns(20).share(40), MIN_SHRUNK);
        assert_eq!(Width::Unlimited.share(40), usize::MAX);
        assert_eq!(Width::Columns(100).after(15), 85);
        assert_eq!(Width::Unlimited.after(15), usize::MAX);
    }
}
