use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::json;

use super::*;

fn dec(digits: &str, negative: bool, exponent: i64) -> IonValue {
    IonValue::Decimal(Decimal {
        digits: digits.into(),
        negative,
        exponent,
    })
}

#[test]
fn writes_each_type_as_kestra_does() {
    let cases: Vec<(IonValue, &str)> = vec![
        (IonValue::Null(IonType::Null), "null"),
        (IonValue::Null(IonType::String), "null.string"),
        (IonValue::Bool(true), "true"),
        (IonValue::Int(-42), "-42"),
        (IonValue::Float(1.5), "1.5e0"),
        (IonValue::Float(100.0), "100.0e0"),
        (IonValue::Float(1e10), "1.0e10"),
        (IonValue::Float(1.25e-5), "1.25e-5"),
        (IonValue::Float(0.0), "0e0"),
        (IonValue::Float(f64::NAN), "nan"),
        (IonValue::Float(f64::NEG_INFINITY), "-inf"),
        (dec("15", false, -1), "1.5"),
        (dec("150", true, -2), "-1.50"),
        (dec("1", false, 0), "1."),
        (dec("1", false, -3), "0.001"),
        (dec("1", false, 2), "1d2"),
        (
            IonValue::String("a \"q\" \\ é\n\t\u{1}".into()),
            r#""a \"q\" \\ é\n\t\x01""#,
        ),
        (IonValue::Symbol("sym".into()), "sym"),
        (IonValue::Symbol("two words".into()), "'two words'"),
        (IonValue::Symbol("null".into()), "'null'"),
        (IonValue::Symbol("$12".into()), "'$12'"),
        (IonValue::Blob(b"hello".to_vec()), "{{aGVsbG8=}}"),
        (IonValue::Clob(b"hi\"".to_vec()), r#"{{"hi\""}}"#),
        (
            IonValue::Sexp(vec![IonValue::Symbol("+".into()), IonValue::Int(1)]),
            "('+' 1)",
        ),
        (
            IonValue::Annotated(
                vec!["LocalTime".into()],
                Box::new(IonValue::String("10:00".into())),
            ),
            r#"LocalTime::"10:00""#,
        ),
        (
            IonValue::instant(Utc.with_ymd_and_hms(2023, 1, 1, 10, 5, 0).unwrap()),
            "2023-01-01T10:05:00.000Z",
        ),
        (
            IonValue::date(NaiveDate::from_ymd_opt(2023, 2, 3).unwrap()),
            "2023-02-03",
        ),
    ];
    for (value, text) in cases {
        assert_eq!(value.to_line(), text, "{value:?}");
    }
}

#[test]
fn writes_json_values_compactly_with_bare_field_names() {
    let value =
        json!({"id": 1, "first name": "Ruth", "score": 2.5, "tags": ["a", null], "ok": true, "n": {}});
    assert_eq!(
        to_line(&value),
        r#"{id:1,'first name':"Ruth",score:2.5e0,tags:["a",null],ok:true,n:{}}"#
    );
}

#[test]
fn reads_every_construct() {
    let cases: Vec<(&str, IonValue)> = vec![
        ("null", IonValue::Null(IonType::Null)),
        ("null.int", IonValue::Null(IonType::Int)),
        ("false", IonValue::Bool(false)),
        ("0x1F", IonValue::Int(31)),
        ("-0b101", IonValue::Int(-5)),
        ("1_000", IonValue::Int(1000)),
        ("1e0", IonValue::Float(1.0)),
        ("-2.5E-3", IonValue::Float(-0.0025)),
        ("+inf", IonValue::Float(f64::INFINITY)),
        ("1.5", dec("15", false, -1)),
        ("1.5d0", dec("15", false, -1)),
        ("15d-1", dec("15", false, -1)),
        ("0.000", dec("0", false, -3)),
        ("-1.", dec("1", true, 0)),
        ("\"a\\nb\\u00e9\\x41\"", IonValue::String("a\nbéA".into())),
        (
            "'''one ''' /* joined */ '''two'''",
            IonValue::String("one two".into()),
        ),
        ("'''it's'''", IonValue::String("it's".into())),
        ("abc", IonValue::Symbol("abc".into())),
        ("'a b'", IonValue::Symbol("a b".into())),
        ("{{ aGVs bG8= }}", IonValue::Blob(b"hello".to_vec())),
        ("{{\"hi\"}}", IonValue::Clob(b"hi".to_vec())),
        (
            "(+ 1 a)",
            IonValue::Sexp(vec![
                IonValue::Symbol("+".into()),
                IonValue::Int(1),
                IonValue::Symbol("a".into()),
            ]),
        ),
        (
            "{a:1, 'b c' : [1, 2.5e0], \"d\":null} // trailing",
            IonValue::Struct(vec![
                ("a".into(), IonValue::Int(1)),
                (
                    "b c".into(),
                    IonValue::List(vec![IonValue::Int(1), IonValue::Float(2.5)]),
                ),
                ("d".into(), IonValue::Null(IonType::Null)),
            ]),
        ),
        (
            "x::'y z'::5",
            IonValue::Annotated(vec!["x".into(), "y z".into()], Box::new(IonValue::Int(5))),
        ),
    ];
    for (text, value) in cases {
        assert_eq!(from_line(text), Ok(value), "{text}");
    }
}

#[test]
fn reads_timestamps_as_kestra_does() {
    let java = |text: &str| match from_line(text) {
        Ok(IonValue::Timestamp(t)) => t.java(),
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(
        java("2023-01-01T10:00:00.000Z"),
        JavaTime::Instant(Utc.with_ymd_and_hms(2023, 1, 1, 10, 0, 0).unwrap())
    );
    assert_eq!(
        java("2023-01-01T00:00:00Z"),
        JavaTime::LocalDate(NaiveDate::from_ymd_opt(2023, 1, 1).unwrap())
    );
    assert_eq!(
        java("2023-01-01"),
        JavaTime::LocalDate(NaiveDate::from_ymd_opt(2023, 1, 1).unwrap())
    );
    assert_eq!(java("2023-01T").to_iso(), "2023-01-01");
    assert_eq!(
        java("2023-01-01T10:00+02:00").to_iso(),
        "2023-01-01T10:00:00+02:00"
    );
    assert_eq!(
        java("2023-01-01T10:00:00.5-00:00").to_iso(),
        "2023-01-01T10:00:00.500Z"
    );
    assert!(from_line("2023-13-01").is_err());
}

#[test]
fn converts_to_json_as_kestra_reads_the_values() {
    let value = from_line(
        "{d:1.50,f:1e0,t:2023-01-01T10:00:00.000Z,s:sym,b:{{aGk=}},n:null.int,o:OffsetDateTime::\"2023-01-01T10:00:00+02:00\"}",
    )
    .unwrap();
    assert_eq!(
        value.to_json(),
        json!({"d": 1.50, "f": 1.0, "t": "2023-01-01T10:00:00Z", "s": "sym", "b": "aGk=", "n": null, "o": "2023-01-01T10:00:00+02:00"})
    );
    assert_eq!(
        java_decimal(&Decimal {
            digits: "150".into(),
            negative: false,
            exponent: -2
        }),
        "1.50"
    );
    assert_eq!(
        java_decimal(&Decimal {
            digits: "1".into(),
            negative: false,
            exponent: 2
        }),
        "1E+2"
    );
    assert_eq!(
        java_decimal(&Decimal {
            digits: "12".into(),
            negative: true,
            exponent: -9
        }),
        "-1.2E-8"
    );
    assert_eq!(java_double(0.001), "0.001");
    assert_eq!(java_double(1.0e7), "1.0E7");
    assert_eq!(java_double(-3.0), "-3.0");
}

#[test]
fn bad_text_is_an_error_with_its_position() {
    match from_line("{a:1,b:}") {
        Err(IonError::Invalid {
            line: 1, column: 8, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(from_line("{a:1"), Err(IonError::Incomplete));
    assert!(matches!(
        from_line("1 2"),
        Err(IonError::Invalid { column: 3, .. })
    ));
    assert!(matches!(
        from_line("12ab"),
        Err(IonError::Invalid { column: 1, .. })
    ));
}

#[test]
fn a_line_reader_follows_values_across_lines() {
    let mut reader = LineReader::new(1024);
    assert_eq!(
        reader.push_line("1 2").unwrap(),
        vec![(1, IonValue::Int(1)), (1, IonValue::Int(2))]
    );
    assert_eq!(reader.push_line("{a:'''first").unwrap(), vec![]);
    assert_eq!(
        reader.push_line("second'''}").unwrap(),
        vec![(
            2,
            IonValue::Struct(vec![("a".into(), IonValue::String("first\nsecond".into()))])
        )]
    );
    assert_eq!(reader.push_line("").unwrap(), vec![]);
    match reader.push_line("[1,,2]") {
        Err(IonError::Invalid {
            line: 5, column: 4, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let mut open = LineReader::new(1024);
    open.push_line("[1,").unwrap();
    assert!(open.finish().is_err());
    let mut small = LineReader::new(8);
    assert_eq!(
        small.push_line("[0123456789,"),
        Err(IonError::TooLong { limit: 8 })
    );
}

#[test]
fn kestra_samples_round_trip() {
    for sample in [
        include_str!("../../tests/fixtures/ion/insurance_sample.ion"),
        include_str!("../../tests/fixtures/ion/boolean_and_null.ion"),
    ] {
        let mut reader = LineReader::new(1 << 20);
        let mut written = String::new();
        for line in sample.lines() {
            for (_, value) in reader.push_line(line).unwrap() {
                written.push_str(&value.to_line());
                written.push('\n');
            }
        }
        reader.finish().unwrap();
        assert_eq!(written, sample);
    }
    let first = from_line(
        include_str!("../../tests/fixtures/ion/insurance_sample.ion")
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first.to_json()["county"], json!("CLAY COUNTY"));
    assert_eq!(first.to_json()["tiv_2012"], json!("792148.9"));
}
