//! Plain-text tables: left-aligned columns two spaces apart.

/// Print `header` and `rows` as aligned columns.
pub(crate) fn print<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    for line in render(header, rows) {
        println!("{line}");
    }
}

/// The lines of the table. Cells are padded by hand, never with a format
/// width, which panics above `u16::MAX` (a 65,536-character Node Type).
fn render<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Vec<String> {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(c);
            let pad = w.saturating_sub(c.chars().count());
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(header)];
    lines.extend(
        rows.iter()
            .map(|row| line(row.each_ref().map(String::as_str))),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned() {
        let rows = [
            ["a".to_owned(), "bb".to_owned()],
            ["ccc".to_owned(), "d".to_owned()],
        ];
        assert_eq!(render(["X", "Y"], &rows), ["X    Y", "a    bb", "ccc  d"]);
    }

    #[test]
    fn cells_wider_than_u16_do_not_panic() {
        let wide = "é".repeat(70_000);
        let rows = [
            [wide.clone(), "x".to_owned()],
            ["y".to_owned(), "z".to_owned()],
        ];
        let lines = render(["NODE TYPE", "N"], &rows);
        assert_eq!(lines[1], format!("{wide}  x"));
        assert_eq!(lines[2].chars().count(), 70_000 + 3);
    }
}
