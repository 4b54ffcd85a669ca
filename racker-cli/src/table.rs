//! Plain-text tables: left-aligned columns two spaces apart. Cells may
//! carry colour codes ([`crate::output::paint`]); they take no width and
//! are dropped where colour is off.

/// Print `header` and `rows` (each as long as `header`) as aligned columns.
pub(crate) fn print_rows(header: &[&str], rows: &[Vec<String>]) {
    for line in render(header, rows) {
        crate::output::line(line);
    }
}

/// Characters a terminal shows for `cell`: ANSI escape sequences
/// (`ESC [ ... letter`) take no room.
fn visible_width(cell: &str) -> usize {
    let mut width = 0;
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            width += 1;
        }
    }
    width
}

/// The lines of the table. Cells are padded by hand, never with a format
/// width, which panics above `u16::MAX` (a 65,536-character Node Type).
pub(crate) fn render(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| visible_width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(visible_width(cell));
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (c, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(c);
            let pad = w.saturating_sub(visible_width(c));
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(&mut header.iter().copied())];
    lines.extend(
        rows.iter()
            .map(|row| line(&mut row.iter().map(String::as_str))),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(r: &[&[&str]]) -> Vec<Vec<String>> {
        r.iter()
            .map(|row| row.iter().map(|c| (*c).to_owned()).collect())
            .collect()
    }

    #[test]
    fn aligned() {
        let rows = rows(&[&["a", "bb"], &["ccc", "d"]]);
        assert_eq!(render(&["X", "Y"], &rows), ["X    Y", "a    bb", "ccc  d"]);
    }

    #[test]
    fn colour_codes_take_no_width() {
        let red = crate::output::paint(crate::output::Tone::Bad, "no");
        let rows = vec![
            vec![red.clone(), "x".to_owned()],
            rows(&[&["yes", "y"]]).remove(0),
        ];
        let lines = render(&["OK", "V"], &rows);
        assert_eq!(lines[0], "OK   V");
        assert_eq!(lines[1], format!("{red}   x"));
        assert_eq!(lines[2], "yes  y");
    }

    #[test]
    fn cells_wider_than_u16_do_not_panic() {
        let wide = "é".repeat(70_000);
        let rows = vec![
            vec![wide.clone(), "x".to_owned()],
            vec!["y".to_owned(), "z".to_owned()],
        ];
        let lines = render(&["NODE TYPE", "N"], &rows);
        assert_eq!(lines[1], format!("{wide}  x"));
        assert_eq!(lines[2].chars().count(), 70_000 + 3);
    }

    proptest::proptest! {
        /// Any cells (wide, empty, multi-byte, painted): one line per row
        /// plus the header, and every column starts at the same visible
        /// offset on every line that reaches it.
        #[test]
        fn columns_line_up(
            cells in proptest::collection::vec(
                proptest::collection::vec("[a-zé ]{0,12}", 3), 0..12),
        ) {
            let header = ["A", "BB", "C"];
            let rows: Vec<Vec<String>> = cells;
            let lines = render(&header, &rows);
            proptest::prop_assert_eq!(lines.len(), rows.len() + 1);
            let mut start = 0;
            for col in 0..2 {
                let width = std::iter::once(header[col].chars().count())
                    .chain(rows.iter().map(|r| r[col].chars().count()))
                    .max()
                    .unwrap_or(0);
                start += width + 2;
                for (line, row) in lines.iter().skip(1).zip(&rows) {
                    let next: String = row[col + 1..].concat();
                    if next.trim().is_empty() {
                        continue;
                    }
                    let chars: Vec<char> = line.chars().collect();
                    let cell: String = chars[start.min(chars.len())..]
                        .iter()
                        .take(row[col + 1].chars().count())
                        .collect();
                    // The last cell of a line loses its trailing blanks.
                    proptest::prop_assert_eq!(cell.trim_end(), row[col + 1].trim_end());
                }
            }
        }
    }
}
