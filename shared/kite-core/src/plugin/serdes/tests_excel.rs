//! `IonToExcel`'s properties and cells, and the `charset` coders.

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::charset::Charset;
use super::excel::{excel_cell, excel_serial, ExcelCell, ExcelWriting};
use super::tests::prepare;
use super::SerdesCall;
use crate::ion::from_line;

fn excel(properties: Value) -> Result<ExcelWriting, String> {
    match prepare("io.kestra.plugin.serdes.excel.IonToExcel", properties)? {
        SerdesCall::IonToExcel { excel } => Ok(excel),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ion_to_excel_defaults_are_kestras() {
    let out = excel(json!({"from": "kestra:///a.ion"})).unwrap();
    assert_eq!(
        out.sheets,
        vec![("Sheet".to_string(), "kestra:///a.ion".to_string())]
    );
    assert!(out.header && out.styles);
    assert_eq!(out.date_format, "yyyy-MM-dd");
    assert_eq!((out.zone, out.charset), (chrono_tz::UTC, Charset::Utf8));
}

#[test]
fn ion_to_excel_properties_are_read() {
    let out = excel(json!({
        "from": "kestra:///a.ion", "sheetsTitle": "Data", "header": false, "styles": "false",
        "dateFormat": "dd/MM/yyyy", "timeZoneId": "Asia/Tokyo", "charset": "ISO-8859-1"
    }))
    .unwrap();
    assert_eq!(out.sheets[0].0, "Data");
    assert!(!out.header && !out.styles);
    assert_eq!(out.date_format, "dd/MM/yyyy");
    assert_eq!(out.zone, chrono_tz::Asia::Tokyo);
    assert_eq!(out.charset, Charset::Latin1);
    // A map: a sheet per file, in order; sheetsTitle is not used.
    let out =
        excel(json!({"from": {"b": "kestra:///b.ion", "a": "kestra:///a.ion"}, "sheetsTitle": "x"})).unwrap();
    assert_eq!(
        out.sheets,
        vec![
            ("b".to_string(), "kestra:///b.ion".to_string()),
            ("a".to_string(), "kestra:///a.ion".to_string())
        ]
    );
    assert!(excel(json!({"from": {}})).unwrap_err().contains("no sheet"));
    assert_eq!(excel(json!({})).unwrap_err(), "Missing required property 'from'");
    assert!(excel(json!({"from": "x", "charset": "nope"}))
        .unwrap_err()
        .contains("'nope'"));
    assert!(excel(json!({"from": "x", "header": "yes"}))
        .unwrap_err()
        .contains("header"));
}

#[test]
fn excel_serials_count_excels_phantom_leap_day() {
    let serial = |y, m, d| excel_serial(NaiveDate::from_ymd_opt(y, m, d).unwrap().into());
    assert_eq!(serial(1900, 1, 1), Some(1.0));
    assert_eq!(serial(1900, 2, 28), Some(59.0));
    assert_eq!(serial(1900, 3, 1), Some(61.0));
    assert_eq!(serial(2023, 1, 1), Some(44927.0));
    assert_eq!(serial(1899, 12, 31), None);
    let noon = NaiveDate::from_ymd_opt(2023, 1, 1)
        .unwrap()
        .and_hms_opt(18, 0, 0)
        .unwrap();
    assert_eq!(excel_serial(noon), Some(44927.75));
}

#[test]
fn ion_values_become_kestras_cells() {
    let cell = |text: &str| excel_cell(&from_line(text).unwrap(), chrono_tz::Asia::Tokyo);
    assert_eq!(cell("null"), ExcelCell::Empty);
    assert_eq!(cell("null.int"), ExcelCell::Empty);
    assert_eq!(cell("42"), ExcelCell::Number(42.0));
    assert_eq!(cell("1.25"), ExcelCell::Number(1.25));
    assert_eq!(cell("1.5e0"), ExcelCell::Number(1.5));
    assert_eq!(
        cell("123456789012345678901234567890"),
        ExcelCell::Text("123456789012345678901234567890".into())
    );
    assert_eq!(cell("true"), ExcelCell::Bool(true));
    assert_eq!(cell("\"é\""), ExcelCell::Text("é".into()));
    assert_eq!(
        cell("\"Formula:SUM(A1:A2)\""),
        ExcelCell::Formula("SUM(A1:A2)".into())
    );
    assert_eq!(cell("2023-01-01"), ExcelCell::Date(44927.0));
    assert_eq!(
        cell("LocalDateTime::\"2023-01-01T18:00:00\""),
        ExcelCell::Date(44927.75)
    );
    // An instant is its date in timeZoneId: 20:00 UTC is the next day in Tokyo.
    assert_eq!(cell("2023-01-01T20:00:00.000Z"), ExcelCell::Date(44928.0));
    assert_eq!(
        cell("2023-01-01T10:00:00+02:00"),
        ExcelCell::Text("2023-01-01T10:00:00+02:00".into())
    );
    assert_eq!(cell("[1,\"a\",null]"), ExcelCell::Text("[1, a, null]".into()));
    assert_eq!(cell("{a:1,b:[2]}"), ExcelCell::Text("{a=1, b=[2]}".into()));
}

#[test]
fn java_charset_names_resolve() {
    let name = |n: &str| Charset::from_java_name(n);
    assert_eq!(name("utf-8"), Some(Charset::Utf8));
    assert_eq!(name("ISO-8859-1"), Some(Charset::Latin1));
    assert_eq!(name("ISO8859_1"), Some(Charset::Latin1));
    assert_eq!(name("latin1"), Some(Charset::Latin1));
    assert_eq!(name("US-ASCII"), Some(Charset::Ascii));
    assert_eq!(name("UTF-16"), Some(Charset::Utf16));
    assert_eq!(name("UTF-16LE"), Some(Charset::Utf16Le));
    assert_eq!(
        name("windows-1252"),
        Some(Charset::Other(encoding_rs::WINDOWS_1252))
    );
    assert_eq!(name("Cp1252"), Some(Charset::Other(encoding_rs::WINDOWS_1252)));
    assert_eq!(name("Shift_JIS"), Some(Charset::Other(encoding_rs::SHIFT_JIS)));
    assert_eq!(name("EUC_JP"), Some(Charset::Other(encoding_rs::EUC_JP)));
    assert_eq!(
        name("ISO-8859-15"),
        Some(Charset::Other(encoding_rs::ISO_8859_15))
    );
    assert_eq!(name("ISO-2022-KR"), None);
    assert_eq!(name("x-user-defined"), None);
    assert_eq!(name("EBCDIC-999"), None);
}

fn decode(charset: Charset, chunks: &[&[u8]]) -> String {
    let mut decoder = charset.decoder();
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        decoder.push(chunk, i + 1 == chunks.len(), &mut out);
    }
    String::from_utf8(out).unwrap()
}

fn encode(charset: Charset, pieces: &[&str]) -> Vec<u8> {
    let mut encoder = charset.encoder();
    let mut out = Vec::new();
    for piece in pieces {
        encoder.push(piece, false, &mut out);
    }
    encoder.push("", true, &mut out);
    out
}

#[test]
fn charsets_decode_across_chunks() {
    assert_eq!(decode(Charset::Latin1, &[b"caf\xe9 \x80"]), "café \u{80}");
    assert_eq!(decode(Charset::Ascii, &[b"a\xe9"]), "a\u{FFFD}");
    let windows = Charset::from_java_name("windows-1252").unwrap();
    assert_eq!(decode(windows, &[b"\x80 caf\xe9"]), "€ café");
    // Shift_JIS 日本 (93 FA 96 7B), cut inside a character.
    let sjis = Charset::from_java_name("Shift_JIS").unwrap();
    assert_eq!(decode(sjis, &[b"\x93", b"\xfa\x96", b"\x7b!"]), "日本!");
    // UTF-16: the BOM decides; big-endian without one.
    assert_eq!(decode(Charset::Utf16, &[b"\xff\xfea", b"\x00"]), "a");
    assert_eq!(decode(Charset::Utf16, &[b"\x00", b"a"]), "a");
    assert_eq!(decode(Charset::Utf16Le, &[b"\xe9", b"\x00"]), "é");
    // A sequence cut at the very end is malformed.
    assert_eq!(decode(sjis, &[b"a\x93"]), "a\u{FFFD}");
}

#[test]
fn charsets_encode_with_question_marks_for_what_they_lack() {
    assert_eq!(encode(Charset::Latin1, &["café ", "€"]), b"caf\xe9 ?");
    assert_eq!(encode(Charset::Ascii, &["é😀"]), b"??");
    let windows = Charset::from_java_name("windows-1252").unwrap();
    assert_eq!(encode(windows, &["€ café ", "日"]), b"\x80 caf\xe9 ?");
    let sjis = Charset::from_java_name("Shift_JIS").unwrap();
    assert_eq!(encode(sjis, &["日", "本"]), b"\x93\xfa\x96\x7b");
    assert_eq!(encode(Charset::Utf16, &["a", "é"]), b"\xfe\xff\x00a\x00\xe9");
    assert_eq!(encode(Charset::Utf16Le, &["a"]), b"a\x00");
    assert_eq!(encode(Charset::Utf8, &["é"]), "é".as_bytes());
}
