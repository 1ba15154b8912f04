//! XLSX files written by hand, for tests of what Excel never writes but an upload may
//! hold: cells at the far corner of a sheet, a merged region written backwards
//! (`D1:A1`), a sheet dimension that lies. `rust_xlsxwriter` refuses to write most of
//! these, so the parts are written as text into an uncompressed zip.

use std::collections::BTreeMap;

/// A workbook of one worksheet named `sheet`: `cells` as inline strings, each `(reference,
/// text)` such as `("B2", "序号")`; `merges` as `mergeCell` references written as given;
/// `dimension`, if any, as the sheet's `<dimension ref>`.
pub fn workbook(
    sheet: &str,
    cells: &[(&str, &str)],
    merges: &[&str],
    dimension: Option<&str>,
) -> Vec<u8> {
    workbook_with_formulas(sheet, cells, &[], merges, dimension)
}

/// [`workbook`] with formula cells besides, each `(reference, formula, cached value)`:
/// the value saved as a string result (`t="str"`) when given, else an empty `<v/>` as
/// openpyxl and other generators write a formula they cannot compute.
pub fn workbook_with_formulas(
    sheet: &str,
    cells: &[(&str, &str)],
    formulas: &[(&str, &str, Option<&str>)],
    merges: &[&str],
    dimension: Option<&str>,
) -> Vec<u8> {
    let mut rows: BTreeMap<u64, String> = BTreeMap::new();
    let row_of = |reference: &str| -> u64 {
        reference
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .parse()
            .unwrap_or(1)
    };
    for (reference, text) in cells {
        rows.entry(row_of(reference))
            .or_default()
            .push_str(&format!(
                r#"<c r="{reference}" t="inlineStr"><is><t>{}</t></is></c>"#,
                escape(text)
            ));
    }
    for (reference, formula, cached) in formulas {
        let cell = match cached {
            Some(v) => format!(
                r#"<c r="{reference}" t="str"><f>{}</f><v>{}</v></c>"#,
                escape(formula),
                escape(v)
            ),
            None => format!(r#"<c r="{reference}"><f>{}</f><v/></c>"#, escape(formula)),
        };
        rows.entry(row_of(reference)).or_default().push_str(&cell);
    }
    let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#);
    xml.push_str(
        r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#,
    );
    if let Some(d) = dimension {
        xml.push_str(&format!(r#"<dimension ref="{d}"/>"#));
    }
    xml.push_str("<sheetData>");
    for (row, cells) in rows {
        xml.push_str(&format!(r#"<row r="{row}">{cells}</row>"#));
    }
    xml.push_str("</sheetData>");
    if !merges.is_empty() {
        xml.push_str(&format!(r#"<mergeCells count="{}">"#, merges.len()));
        for m in merges {
            xml.push_str(&format!(r#"<mergeCell ref="{m}"/>"#));
        }
        xml.push_str("</mergeCells>");
    }
    xml.push_str("</worksheet>");
    let workbook = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{}" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        escape(sheet)
    );
    zip_stored(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("_rels/.rels", ROOT_RELS.as_bytes()),
        ("xl/workbook.xml", workbook.as_bytes()),
        ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes()),
        ("xl/worksheets/sheet1.xml", xml.as_bytes()),
    ])
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;

const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;

const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A zip archive of `files`, stored without compression.
pub fn zip_stored(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = out.len() as u32;
        let (crc, size, name_len) = (crc32(data), data.len() as u32, name.len() as u16);
        // Local file header: version 2.0, no flags, stored, 1980-01-01 00:00.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for v in [20u16, 0, 0, 0, 0x21] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        // Its central directory entry.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for v in [20u16, 20, 0, 0, 0, 0x21] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        for v in [name_len, 0, 0, 0, 0] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let (at, len, count) = (out.len() as u32, central.len() as u32, files.len() as u16);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, count, count] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// CRC-32 (IEEE), as zip checks it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::Reader;

    #[test]
    fn calamine_reads_a_handmade_workbook() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let bytes = workbook("台账", &[("A1", "序号"), ("B2", "a<b")], &["A3:B3"], None);
        let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(book.sheet_names(), vec!["台账".to_string()]);
        let range = book.worksheet_range("台账").unwrap();
        assert_eq!(range.get_value((0, 0)).unwrap().to_string(), "序号");
        assert_eq!(range.get_value((1, 1)).unwrap().to_string(), "a<b");
    }
}
