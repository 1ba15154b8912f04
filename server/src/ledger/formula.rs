//! Keeping a spreadsheet from running a cell as a formula (OWASP, CSV Injection).
//!
//! Ledger text comes from town offices' files and the helpers' own entries: a 致贫原因 of
//! `=HYPERLINK("http://…","点此")` exported unchanged would run as a formula in the
//! office's Excel. Every cell an export writes goes through [`inert`], which puts a `'`
//! before a cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return (the rule
//! the report CSVs follow in `report_files`, extended as below). A ledger import reads
//! every cell through [`strip_inert`], which takes that `'` off again, so export → import
//! changes nothing.
//!
//! Why cells already beginning with `'` and then one of those characters get a second
//! `'`: the import must tell the quote an export added from one the data holds. A cell
//! is quoted exactly when it matches `'*[=+\-@\t\r]…` and unquoted exactly when it
//! matches `'+[=+\-@\t\r]…`, so the one taken off is always the one put on.

use std::borrow::Cow;

/// The characters a spreadsheet may take as the start of a formula (shared with the
/// report CSVs, `report_files`).
pub(crate) const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `s`, after any leading `'`s, starts like a formula.
fn quoted_formula(s: &str) -> bool {
    s.trim_start_matches('\'').starts_with(FORMULA_START)
}

/// A cell a spreadsheet will not run: see the module documentation.
pub fn inert(cell: &str) -> Cow<'_, str> {
    if quoted_formula(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// A cell as it was before [`inert`]: the one `'` an export put before a formula taken off.
pub fn strip_inert(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if quoted_formula(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_quoted_and_plain_text_is_not() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x\",\"点此\")",
                "'=HYPERLINK(\"http://x\",\"点此\")",
            ),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("'=1", "''=1"),
            ("因病致贫", "因病致贫"),
            ("'引号", "'引号"),
            ("", ""),
            ("1-2", "1-2"),
        ] {
            assert_eq!(inert(cell), written, "{cell:?}");
        }
    }

    #[test]
    fn stripping_undoes_quoting_exactly() {
        for cell in [
            "=1+1", "'=1+1", "''-3", "+86", "@x", "'", "''", "'abc", "abc", "\r=x", "",
        ] {
            assert_eq!(strip_inert(&inert(cell)), cell, "{cell:?}");
        }
        // A quote typed by hand before a formula is taken off too: the cell is data.
        assert_eq!(strip_inert("'=1+1"), "=1+1");
        assert_eq!(strip_inert("'abc"), "'abc");
    }
}
