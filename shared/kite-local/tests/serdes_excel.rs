//! `IonToExcel` and the `charset` of the serdes conversions, through the worker's calls on
//! a local file storage: workbooks opened and their cells checked, CSV and JSON in other
//! charsets read and written byte for byte (a character cut by the stream's chunks too),
//! and `flows/dev/csv-to-excel.yaml` run on the local engine.

use std::io::Read;

use kite_core::execution::StateType;
use kite_core::plugin::serdes::{SerdesAnswer, SerdesError};
use kite_core::plugin::IoCall;
use kite_engine::ports::FileStorage;
use kite_engine::EngineConfig;
use kite_local::{open_engine, LocalFileStorage, Runtime};
use kite_worker::serdes::run;
use serde_json::{json, Value};

mod common;
mod task_files;
use common::run_flow;
use task_files::{prepare, Folder};

impl Folder {
    /// The task's call from its properties, as a flow would give them.
    async fn convert(&self, task: &str, properties: Value) -> Result<SerdesAnswer, SerdesError> {
        match prepare(&format!("io.kestra.plugin.serdes.{task}"), properties).expect("prepare") {
            IoCall::Serdes(call) => run(&self.scope(), &call).await,
            other => panic!("{other:?}"),
        }
    }

    async fn converted(&self, task: &str, properties: Value) -> Vec<u8> {
        let answer = self.convert(task, properties).await.expect("converted");
        self.bytes(&answer.uri)
    }
}

/// An `.xlsx` file's parts.
struct Workbook(zip::ZipArchive<std::io::Cursor<Vec<u8>>>);

impl Workbook {
    fn open(bytes: Vec<u8>) -> Workbook {
        Workbook(zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an xlsx is a zip"))
    }

    fn part(&mut self, name: &str) -> String {
        let mut text = String::new();
        self.0
            .by_name(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .read_to_string(&mut text)
            .expect("xml");
        text
    }
}

/// The XML of cell `at` (`B2`) in a sheet's XML, `None` when the sheet has no such cell.
fn cell<'a>(sheet: &'a str, at: &str) -> Option<&'a str> {
    let start = sheet.find(&format!("<c r=\"{at}\""))?;
    let rest = &sheet[start..];
    let end = rest
        .find("</c>")
        .map(|e| e + 4)
        .or_else(|| rest.find("/>").map(|e| e + 2))?;
    Some(&rest[..end])
}

/// The text between `<tag>` and `</tag>` in `xml`.
fn inner<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + end])
}

fn number(sheet: &str, at: &str) -> f64 {
    let c = cell(sheet, at).unwrap_or_else(|| panic!("no cell {at}"));
    inner(c, "v")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{c}"))
}

fn text<'a>(sheet: &'a str, at: &str) -> &'a str {
    let c = cell(sheet, at).unwrap_or_else(|| panic!("no cell {at}"));
    assert!(c.contains("t=\"inlineStr\""), "{c}");
    inner(c, "t").unwrap_or_else(|| panic!("{c}"))
}

const TYPED_ION: &str = concat!(
    "{name:\"Zoë\",count:42,price:19.99,day:2023-01-01,at:2023-01-01T20:00:00.000Z,",
    "stamp:LocalDateTime::\"2023-01-01T18:00:00\",gone:null,ok:true,",
    "tags:[\"a\",1],big:123456789012345678901234567890,sum:\"Formula:B2*C2\"}\n",
    "{name:\"<b>&\",count:-7,price:1.5e0,day:1900-01-01,at:null,stamp:null,gone:null.string,",
    "ok:false,tags:{k:1},big:1,sum:\"x\"}\n",
    "just_a_symbol\n",
);

#[tokio::test]
async fn ion_values_become_kestras_cells() {
    let folder = Folder::new();
    let ion = folder.put("typed.ion", TYPED_ION).await;
    let answer = folder
        .convert(
            "excel.IonToExcel",
            json!({"from": ion, "timeZoneId": "Asia/Tokyo"}),
        )
        .await
        .expect("converted");
    assert!(answer.uri.ends_with("/tasks/t/tr/result.xlsx"), "{}", answer.uri);
    // Every Ion value is counted, the symbol too (it makes no row).
    assert_eq!(answer.records, 3);
    let mut book = Workbook::open(folder.bytes(&answer.uri));
    assert!(book.part("xl/workbook.xml").contains("<sheet name=\"Sheet\""));
    let styles = book.part("xl/styles.xml");
    assert!(styles.contains("formatCode=\"yyyy-MM-dd\""), "{styles}");
    let sheet = book.part("xl/worksheets/sheet1.xml");

    // The header: the first record's field names.
    let header: Vec<&str> = ["A1", "B1", "C1", "D1", "E1", "F1", "G1", "H1", "I1", "J1", "K1"]
        .iter()
        .map(|at| text(&sheet, at))
        .collect();
    assert_eq!(
        header,
        ["name", "count", "price", "day", "at", "stamp", "gone", "ok", "tags", "big", "sum"]
    );
    assert_eq!(text(&sheet, "A2"), "Zoë");
    assert_eq!(text(&sheet, "A3"), "&lt;b&gt;&amp;");
    assert_eq!(number(&sheet, "B2"), 42.0);
    assert_eq!(number(&sheet, "B3"), -7.0);
    assert_eq!(number(&sheet, "C2"), 19.99);
    assert_eq!(number(&sheet, "C3"), 1.5);
    // Dates are serial numbers with the date style; an instant is its day in timeZoneId.
    assert_eq!(number(&sheet, "D2"), 44927.0);
    assert_eq!(number(&sheet, "D3"), 1.0);
    assert_eq!(number(&sheet, "E2"), 44928.0);
    assert_eq!(number(&sheet, "F2"), 44927.75);
    let date_style = cell(&sheet, "D2")
        .and_then(|c| c.split("s=\"").nth(1))
        .map(|s| &s[..1]);
    assert!(date_style.is_some_and(|s| s != "0"), "{:?}", cell(&sheet, "D2"));
    assert_eq!(cell(&sheet, "E2").map(|c| c.contains(" s=\"")), Some(true));
    assert_eq!(cell(&sheet, "B2").map(|c| c.contains(" s=\"")), Some(false));
    // Nulls leave no cell.
    assert_eq!(cell(&sheet, "G2"), None);
    assert_eq!(cell(&sheet, "G3"), None);
    assert_eq!(cell(&sheet, "E3"), None);
    let ok = cell(&sheet, "H2").expect("H2");
    assert!(ok.contains("t=\"b\"") && inner(ok, "v") == Some("1"), "{ok}");
    assert_eq!(cell(&sheet, "H3").and_then(|c| inner(c, "v")), Some("0"));
    // Nested values and integers beyond 64 bits as Java prints them.
    assert_eq!(text(&sheet, "I2"), "[a, 1]");
    assert_eq!(text(&sheet, "I3"), "{k=1}");
    assert_eq!(text(&sheet, "J2"), "123456789012345678901234567890");
    assert_eq!(number(&sheet, "J3"), 1.0);
    assert_eq!(cell(&sheet, "K2").and_then(|c| inner(c, "f")), Some("B2*C2"));
    assert_eq!(text(&sheet, "K3"), "x");
    // The symbol made no row.
    assert_eq!(cell(&sheet, "A4"), None);
}

#[tokio::test]
async fn several_sheets_lists_and_options() {
    let folder = Folder::new();
    let lists = folder
        .put("lists.ion", "[\"a\",1]\n[2023-06-01,null,\"b\"]\n")
        .await;
    let maps = folder.put("maps.ion", "{x:1}\n{x:2}\n").await;
    let answer = folder
        .convert(
            "excel.IonToExcel",
            json!({"from": {"Lists": lists, "Maps": maps}, "header": false, "styles": false}),
        )
        .await
        .expect("converted");
    assert_eq!(answer.records, 4);
    let mut book = Workbook::open(folder.bytes(&answer.uri));
    let workbook = book.part("xl/workbook.xml");
    let (first, second) = (workbook.find("name=\"Lists\""), workbook.find("name=\"Maps\""));
    assert!(first.is_some() && first < second, "{workbook}");
    let first_sheet = book.part("xl/worksheets/sheet1.xml");
    assert_eq!(text(&first_sheet, "A1"), "a");
    assert_eq!(number(&first_sheet, "B1"), 1.0);
    // styles: false: a date is its serial number, without a style.
    assert_eq!(number(&first_sheet, "A2"), 45078.0);
    assert_eq!(cell(&first_sheet, "A2").map(|c| c.contains(" s=\"")), Some(false));
    assert_eq!(cell(&first_sheet, "B2"), None);
    assert_eq!(text(&first_sheet, "C2"), "b");
    // header: false: no names row.
    let second_sheet = book.part("xl/worksheets/sheet2.xml");
    assert_eq!(
        (number(&second_sheet, "A1"), number(&second_sheet, "A2")),
        (1.0, 2.0)
    );

    // Lists with a header, as in Kestra, fail.
    let error = folder
        .convert("excel.IonToExcel", json!({"from": lists}))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        SerdesError::Record {
            line: 1,
            message: "Invalid data of type List with header".into()
        }
    );
    // A title Excel refuses fails the task, naming it.
    let error = folder
        .convert("excel.IonToExcel", json!({"from": maps, "sheetsTitle": "a/b"}))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("'a/b'"), "{error}");
}

#[tokio::test]
async fn csv_in_latin1_and_windows_1252() {
    let folder = Folder::new();
    let csv = folder
        .put("latin1.csv", b"name,city\nJos\xe9,S\xe3o Paulo\n".to_vec())
        .await;
    let ion = folder
        .converted("csv.CsvToIon", json!({"from": csv, "charset": "ISO-8859-1"}))
        .await;
    assert_eq!(
        String::from_utf8(ion).unwrap(),
        "{name:\"José\",city:\"São Paulo\"}\n"
    );
    // Read as UTF-8, the same bytes are refused.
    let error = folder
        .convert("csv.CsvToIon", json!({"from": csv}))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not UTF-8"), "{error}");

    let ion = folder
        .put("prices.ion", "{item:\"café\",price:\"3 €\",note:\"日本\"}\n")
        .await;
    let csv = folder
        .converted("csv.IonToCsv", json!({"from": ion, "charset": "windows-1252"}))
        .await;
    // é is E9, € is 80; what windows-1252 lacks is written `?` (Java's replacement).
    assert_eq!(csv, b"item,price,note\ncaf\xe9,3 \x80,??\n".to_vec());
    let csv = folder
        .converted("csv.IonToCsv", json!({"from": ion, "charset": "ISO-8859-1"}))
        .await;
    assert_eq!(csv, b"item,price,note\ncaf\xe9,3 ?,??\n".to_vec());
}

#[tokio::test]
async fn a_character_cut_between_chunks_is_read_whole() {
    let folder = Folder::new();
    // Shift_JIS: 日 is 93 FA. After the 3 bytes "a\nx", every character starts at an odd
    // offset, so each chunk boundary (at an even offset) cuts one in two.
    let mut csv = b"a\nx".to_vec();
    for _ in 0..100_000 {
        csv.extend_from_slice(b"\x93\xfa");
    }
    csv.push(b'\n');
    let csv = folder.put("sjis.csv", csv).await;
    let ion = folder
        .converted("csv.CsvToIon", json!({"from": csv, "charset": "Shift_JIS"}))
        .await;
    let expected = format!("{{a:\"x{}\"}}\n", "日".repeat(100_000));
    assert!(String::from_utf8(ion).unwrap() == expected, "the text differs");

    // UTF-16 with a little-endian byte order mark, one JSON value per line.
    let mut json = vec![0xFF, 0xFE];
    json.extend("{\"k\":\"é\"}\n".encode_utf16().flat_map(u16::to_le_bytes));
    let json = folder.put("utf16.json", json).await;
    let ion = folder
        .converted("json.JsonToIon", json!({"from": json, "charset": "UTF-16"}))
        .await;
    assert_eq!(String::from_utf8(ion).unwrap(), "{k:\"é\"}\n");

    // IonToJson in UTF-16: big-endian after a byte order mark, as Java writes it.
    let ion = folder.put("one.ion", "{k:\"é\"}\n").await;
    let out = folder
        .converted("json.IonToJson", json!({"from": ion, "charset": "UTF-16"}))
        .await;
    let mut expected = vec![0xFE, 0xFF];
    expected.extend("{\"k\":\"é\"}\n".encode_utf16().flat_map(u16::to_be_bytes));
    assert_eq!(out, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_turns_a_written_csv_into_a_workbook() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let source = include_str!("../../../flows/dev/csv-to-excel.yaml");
    let (done, logs) = run_flow(&engine, source).await;
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let outputs = done
        .task_runs()
        .iter()
        .find(|tr| tr.task_id == "to_excel")
        .and_then(|tr| tr.outputs.clone())
        .expect("outputs of to_excel");
    assert_eq!(outputs.get("size"), Some(&json!(5)));
    let uri = outputs.get("uri").and_then(Value::as_str).expect("uri");
    assert!(uri.ends_with(".xlsx"), "{uri}");
    assert!(
        logs.iter().any(|l| l.starts_with("5 rows written to kestra:///")),
        "{logs:?}"
    );

    let files = LocalFileStorage::new(dir.path().join("storage")).expect("files");
    let mut book = Workbook::open(files.read_blocking(uri).expect("file"));
    assert!(book.part("xl/styles.xml").contains("formatCode=\"dd/MM/yyyy\""));
    let orders = book.part("xl/worksheets/sheet1.xml");
    assert_eq!(text(&orders, "B1"), "email");
    assert_eq!(text(&orders, "C2"), "166.89");
    assert_eq!(cell(&orders, "C4"), None);
    let totals = book.part("xl/worksheets/sheet2.xml");
    assert_eq!(number(&totals, "A2"), 45292.0);
    assert_eq!(number(&totals, "B3"), 7.0);
    assert_eq!(number(&totals, "C2"), 1234.5);
    assert_eq!(cell(&totals, "D3").and_then(|c| inner(c, "v")), Some("0"));
    assert_eq!(cell(&totals, "E3").and_then(|c| inner(c, "f")), Some("B3*2"));
}
