use serde_json::{json, Map, Value};

use super::text::{csv_field, write_csv_record, write_json, CsvRecords, CsvRow};
use super::*;
use crate::expression::ExpressionError;
use crate::ion::{from_line, IonType, IonValue};
use crate::plugin::by_name;

fn literal(v: &Value) -> Result<String, ExpressionError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Ok(other.to_string()),
    }
}

/// The call a task type's `prepare` makes of these properties (values taken literally).
pub(super) fn prepare(name: &str, properties: Value) -> Result<SerdesCall, String> {
    let spec = by_name(name).expect("registered");
    let properties: Map<String, Value> = properties.as_object().cloned().unwrap_or_default();
    match (spec.prepare)(&properties, &literal)? {
        IoCall::Serdes(call) => Ok(call),
        other => panic!("{other:?}"),
    }
}

fn writing(properties: Value) -> CsvWriting {
    match prepare("io.kestra.plugin.serdes.csv.IonToCsv", properties) {
        Ok(SerdesCall::IonToCsv { csv, .. }) => csv,
        other => panic!("{other:?}"),
    }
}

fn reading(properties: Value) -> CsvReading {
    match prepare("io.kestra.plugin.serdes.csv.CsvReader", properties) {
        Ok(SerdesCall::CsvToIon { csv, .. }) => csv,
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults_and_legacy_names_are_kestras() {
    let csv = reading(json!({"from": "kestra:///a.csv"}));
    assert!(csv.header && !csv.skip_empty_rows);
    assert_eq!(
        (csv.field_separator, csv.text_delimiter, csv.skip_rows),
        (b',', b'"', 0)
    );
    assert_eq!(csv.on_bad_lines, OnBadLines::Error);
    let out = writing(json!({"from": "kestra:///a.ion"}));
    assert_eq!(
        (out.line_delimiter.as_str(), out.quote),
        ("\n", QuoteMode::Required)
    );
    assert_eq!(out.formats.date_time.text(), "yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]");
    assert_eq!(
        writing(json!({"from": "x", "alwaysDelimitText": true})).quote,
        QuoteMode::Always
    );
    assert_eq!(
        writing(json!({"from": "x", "alwaysDelimitText": true, "quoteMode": "NON_NUMERIC"})).quote,
        QuoteMode::NonNumeric
    );
    assert_eq!(
        prepare("io.kestra.plugin.serdes.json.JsonWriter", json!({"from": "x"})),
        Ok(SerdesCall::IonToJson {
            from: "x".into(),
            new_line: true,
            zone: chrono_tz::UTC,
            charset: Charset::Utf8,
        })
    );
    assert_eq!(
        prepare(
            "io.kestra.plugin.serdes.json.JsonReader",
            json!({"from": "x", "newLine": false})
        ),
        Ok(SerdesCall::JsonToIon {
            from: "x".into(),
            new_line: false,
            charset: Charset::Utf8,
        })
    );
}

#[test]
fn bad_properties_are_refused_with_their_name() {
    let csv = "io.kestra.plugin.serdes.csv.CsvToIon";
    assert!(prepare(csv, json!({"from": "x", "fieldSeparator": ";;"}))
        .unwrap_err()
        .contains("fieldSeparator"));
    assert_eq!(
        prepare(csv, json!({"from": "x", "charset": "EBCDIC-999"})).unwrap_err(),
        "Unsupported charset 'EBCDIC-999'"
    );
    assert!(prepare(csv, json!({"from": "x", "onBadLines": "NO"}))
        .unwrap_err()
        .contains("onBadLines"));
    assert_eq!(
        prepare(csv, json!({})).unwrap_err(),
        "Missing required property 'from'"
    );
    let to_csv = "io.kestra.plugin.serdes.csv.IonToCsv";
    assert!(prepare(to_csv, json!({"from": "x", "dateFormat": "yyyy zzz"}))
        .unwrap_err()
        .contains("'z'"));
    assert!(prepare(to_csv, json!({"from": "x", "timeZoneId": "Mars/Base"}))
        .unwrap_err()
        .contains("Mars/Base"));
    assert!(prepare(to_csv, json!({"from": "x", "lineDelimiter": ";"}))
        .unwrap_err()
        .contains("lineDelimiter"));
}

#[test]
fn ion_values_become_csv_fields_as_kestra_prints_them() {
    let formats = writing(json!({"from": "x", "timeZoneId": "Europe/Paris"})).formats;
    let field = |text: &str| csv_field(&from_line(text).unwrap(), &formats).unwrap();
    assert_eq!(field("null"), None);
    assert_eq!(field("null.string"), None);
    assert_eq!(field("\"a\""), Some("a".into()));
    assert_eq!(field("12"), Some("12".into()));
    assert_eq!(field("1.5e0"), Some("1.5".into()));
    assert_eq!(field("1e10"), Some("1.0E10".into()));
    assert_eq!(field("1.50"), Some("1.50".into()));
    assert_eq!(field("true"), Some("true".into()));
    assert_eq!(
        field("2023-01-01T10:00:00.000Z"),
        Some("2023-01-01T10:00:00.000Z".into())
    );
    assert_eq!(field("2023-06-01"), Some("2023-06-01".into()));
    // Zoned values are shown in timeZoneId.
    assert_eq!(
        field("2023-06-01T10:00:00+02:00"),
        Some("2023-06-01T10:00:00.000+02:00".into())
    );
    assert_eq!(
        field("2023-01-01T10:00:00Z"),
        Some("2023-01-01T10:00:00.000Z".into())
    );
    assert_eq!(field("LocalTime::\"10:15:30\""), Some("10:15:30".into()));
    assert_eq!(
        field("LocalDateTime::\"2023-01-01T10:15:30\""),
        Some("2023-01-01T10:15:30.000".into())
    );
    assert_eq!(field("[1,\"a\",null]"), Some("[1, a, null]".into()));
    assert_eq!(field("{a:1,b:[2]}"), Some("{a=1, b=[2]}".into()));
}

#[test]
fn csv_records_are_quoted_per_quote_mode() {
    let fields = vec![
        Some("a,b".to_string()),
        Some("say \"hi\"".into()),
        None,
        Some("".into()),
        Some("-1.5".into()),
        Some("x".into()),
    ];
    let line = |csv: &CsvWriting| {
        let mut out = Vec::new();
        write_csv_record(&mut out, &fields, csv);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        line(&writing(json!({"from": "x"}))),
        "\"a,b\",\"say \"\"hi\"\"\",,,-1.5,x\n"
    );
    assert_eq!(
        line(&writing(
            json!({"from": "x", "quoteMode": "ALWAYS", "lineDelimiter": "\r\n"})
        )),
        "\"a,b\",\"say \"\"hi\"\"\",\"\",\"\",\"-1.5\",\"x\"\r\n"
    );
    assert_eq!(
        line(&writing(
            json!({"from": "x", "quoteMode": "NON_NUMERIC", "fieldSeparator": ";", "textDelimiter": "'"})
        )),
        "'a,b';'say \"hi\"';;;-1.5;'x'\n"
    );
}

#[test]
fn csv_rows_become_records_with_kestras_rules() {
    let mut rows = CsvRecords::new(reading(json!({"from": "x", "skipRows": 1})));
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(rows.row(1, strings(&["id", "name"])), Ok(CsvRow::Skipped));
    assert_eq!(rows.row(2, strings(&["0", "skipped"])), Ok(CsvRow::Skipped));
    assert_eq!(
        rows.row(3, strings(&["1", "\\N"])),
        Ok(CsvRow::Record(IonValue::Struct(vec![
            ("id".into(), IonValue::String("1".into())),
            ("name".into(), IonValue::Null(IonType::Null)),
        ])))
    );
    assert_eq!(
        rows.row(4, strings(&["2"])),
        Err("Bad line encountered (field count mismatch): Expected 2, got 1 fields.".into())
    );
    let mut warn = CsvRecords::new(reading(json!({"from": "x", "onBadLines": "WARN"})));
    warn.row(1, strings(&["a"])).unwrap();
    assert_eq!(
        warn.row(7, strings(&["1", "2"])),
        Ok(CsvRow::Bad(
            "Line 7: Bad line encountered (field count mismatch): Expected 1, got 2 fields.".into()
        ))
    );
    let mut lists = CsvRecords::new(reading(json!({"from": "x", "header": false})));
    assert_eq!(
        lists.row(1, strings(&["a", "b"])).map(|r| match r {
            CsvRow::Record(v) => v.to_line(),
            other => format!("{other:?}"),
        }),
        Ok("[\"a\",\"b\"]".into())
    );
}

#[test]
fn ion_values_become_json_as_kestra_writes_them() {
    let json = |text: &str, zone: chrono_tz::Tz| {
        let mut out = String::new();
        write_json(&mut out, &from_line(text).unwrap(), zone);
        out
    };
    assert_eq!(
        json("{a:1,b:1.5e0,c:1.50,d:\"é\\n\",e:null.int,f:[true,sym],t:2023-01-01T10:00:00.000Z,day:2023-01-01}", chrono_tz::UTC),
        r#"{"a":1,"b":1.5,"c":1.50,"d":"é\n","e":null,"f":[true,"sym"],"t":"2023-01-01T10:00:00Z","day":"2023-01-01"}"#
    );
    assert_eq!(
        json("2023-01-01T10:00:00+02:00", chrono_tz::UTC),
        r#""2023-01-01T08:00:00Z""#
    );
    assert_eq!(
        json("2023-01-01T10:00:00+02:00", chrono_tz::Asia::Tokyo),
        r#""2023-01-01T17:00:00+09:00""#
    );
    assert_eq!(json("1e10", chrono_tz::UTC), "1.0E10");
    assert_eq!(json("nan", chrono_tz::UTC), r#""NaN""#);
    assert!(serde_json::from_str::<Value>(&json("1d2", chrono_tz::UTC)).is_ok());
}
