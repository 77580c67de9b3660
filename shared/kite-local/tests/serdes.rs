//! The serdes conversions: the worker's calls on a local file storage (Kestra's own
//! samples, every property that changes the text, bad input failing with its line), and
//! a flow run on the local engine from a CSV written by a task to the JSON it becomes.

use kite_core::execution::StateType;
use kite_core::plugin::serdes::{SerdesAnswer, SerdesCall, SerdesError};
use kite_core::plugin::storage::StorageError;
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

const INSURANCE_CSV: &str = include_str!("../../kite-core/tests/fixtures/ion/insurance_sample.csv");
const INSURANCE_ION: &str = include_str!("../../kite-core/tests/fixtures/ion/insurance_sample.ion");

impl Folder {
    /// The task's call from its properties, as a flow would give them.
    async fn convert(&self, task: &str, properties: Value) -> Result<SerdesAnswer, SerdesError> {
        match prepare(&format!("io.kestra.plugin.serdes.{task}"), properties).expect("prepare") {
            IoCall::Serdes(call) => self.call(call).await,
            other => panic!("{other:?}"),
        }
    }

    async fn call(&self, call: SerdesCall) -> Result<SerdesAnswer, SerdesError> {
        run(&self.scope(), &call).await
    }

    /// The converted file's text.
    async fn converted(&self, task: &str, properties: Value) -> String {
        let answer = self.convert(task, properties).await.expect("converted");
        self.text(&answer.uri)
    }
}

#[tokio::test]
async fn kestras_insurance_sample_converts_both_ways() {
    let folder = Folder::new();
    let csv = folder.put("insurance_sample.csv", INSURANCE_CSV).await;
    let answer = folder
        .convert("csv.CsvToIon", json!({"from": csv, "fieldSeparator": ";"}))
        .await
        .expect("converted");
    assert!(answer.uri.ends_with("/tasks/t/tr/result.ion"), "{}", answer.uri);
    assert_eq!(answer.records, 5);
    let ion = folder.text(&answer.uri);
    assert_eq!(ion, INSURANCE_ION);

    let ion = folder.put("insurance_sample.ion", INSURANCE_ION).await;
    let back = folder
        .converted(
            "csv.CsvWriter",
            json!({"from": ion, "fieldSeparator": ";", "alwaysDelimitText": true, "lineDelimiter": "\r\n"}),
        )
        .await;
    assert_eq!(back, INSURANCE_CSV);
}

#[tokio::test]
async fn csv_options_change_what_is_read() {
    let folder = Folder::new();
    let csv = folder
        .put("a.csv", "# export\nid|name\n1|'a|b'\n2|\\N\n\n3|'it''s'\n")
        .await;
    let ion = folder
        .converted(
            "csv.CsvToIon",
            json!({"from": csv, "fieldSeparator": "|", "textDelimiter": "'", "skipRows": 0, "header": false}),
        )
        .await;
    assert_eq!(
        ion,
        "[\"# export\"]\n[\"id\",\"name\"]\n[\"1\",\"a|b\"]\n[\"2\",null]\n[\"3\",\"it's\"]\n"
    );
    let csv = folder.put("b.csv", "id,name\n0,zero\n1,one\n").await;
    let ion = folder
        .converted("csv.CsvToIon", json!({"from": csv, "skipRows": 1}))
        .await;
    assert_eq!(ion, "{id:\"1\",name:\"one\"}\n");
}

#[tokio::test]
async fn bad_input_fails_with_its_line() {
    let folder = Folder::new();
    let csv = folder.put("bad.csv", "a,b\n1,2\n3\n").await;
    assert_eq!(
        folder.convert("csv.CsvToIon", json!({"from": csv})).await,
        Err(SerdesError::Record {
            line: 3,
            message: "Bad line encountered (field count mismatch): Expected 2, got 1 fields.".into()
        })
    );
    let warned = folder
        .convert("csv.CsvToIon", json!({"from": csv, "onBadLines": "WARN"}))
        .await
        .expect("converted");
    assert_eq!(warned.records, 1);
    assert_eq!(
        warned.warnings,
        vec!["Line 3: Bad line encountered (field count mismatch): Expected 2, got 1 fields.".to_string()]
    );

    let ion = folder.put("bad.ion", "{a:1}\n{a:2\n,b:}\n").await;
    let error = folder
        .convert("json.IonToJson", json!({"from": ion}))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Line 3: invalid Ion at column 4: unexpected '}'"
    );
    let json = folder.put("bad.jsonl", "{\"a\":1}\n{\"a\":\n").await;
    let error = folder
        .convert("json.JsonToIon", json!({"from": json}))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SerdesError::Record { line: 2, message } if message.starts_with("invalid JSON")),
        "{error:?}"
    );

    let list = folder.put("list.ion", "[1,2]\n").await;
    assert_eq!(
        folder.convert("csv.IonToCsv", json!({"from": list})).await,
        Err(SerdesError::Record {
            line: 1,
            message: "Invalid data of type List with header".into()
        })
    );
    let elsewhere = "kestra:///other/f/executions/x/secret.csv".to_string();
    assert_eq!(
        folder.convert("csv.CsvToIon", json!({"from": elsewhere})).await,
        Err(SerdesError::Storage(StorageError::NotReadable(elsewhere)))
    );
}

#[tokio::test]
async fn json_and_ion_convert_both_ways() {
    let folder = Folder::new();
    let jsonl = folder
        .put(
            "a.jsonl",
            "{\"id\":1,\"score\":2.5,\"tags\":[\"x\"],\"at\":null}\n\n{\"id\":2,\"first name\":\"Zoé\"}\n",
        )
        .await;
    let ion = folder.converted("json.JsonToIon", json!({"from": jsonl})).await;
    assert_eq!(
        ion,
        "{id:1,score:2.5e0,tags:[\"x\"],at:null}\n{id:2,'first name':\"Zoé\"}\n"
    );

    let array = folder.put("a.json", "[{\"id\": 1}, {\"id\": 2}]").await;
    let ion = folder
        .converted("json.JsonToIon", json!({"from": array, "newLine": false}))
        .await;
    assert_eq!(ion, "{id:1}\n{id:2}\n");

    let typed = folder
        .put(
            "typed.ion",
            "{d:1.50,t:2023-01-01T10:00:00.000Z,z:2023-01-01T10:00:00+02:00,day:2023-06-01,n:null.int}\n// a comment\n{d:2d0}\n",
        )
        .await;
    let lines = folder
        .converted("json.IonToJson", json!({"from": typed.clone()}))
        .await;
    assert_eq!(
        lines,
        "{\"d\":1.50,\"t\":\"2023-01-01T10:00:00Z\",\"z\":\"2023-01-01T08:00:00Z\",\"day\":\"2023-06-01\",\"n\":null}\n{\"d\":2}\n"
    );
    let answer = folder
        .convert(
            "json.IonToJson",
            json!({"from": typed.clone(), "newLine": false, "timeZoneId": "Europe/Paris"}),
        )
        .await
        .expect("converted");
    assert!(answer.uri.ends_with(".json"));
    let array = folder.text(&answer.uri);
    assert_eq!(
        array,
        "[{\"d\":1.50,\"t\":\"2023-01-01T10:00:00Z\",\"z\":\"2023-01-01T09:00:00+01:00\",\"day\":\"2023-06-01\",\"n\":null},{\"d\":2}]"
    );

    let csv = folder
        .converted(
            "csv.IonToCsv",
            json!({"from": typed, "dateTimeFormat": "dd/MM/yyyy HH:mm", "quoteMode": "NON_NUMERIC", "lineDelimiter": "\r\n"}),
        )
        .await;
    assert_eq!(
        csv,
        "\"d\",\"t\",\"z\",\"day\",\"n\"\r\n1.50,\"01/01/2023 10:00\",\"01/01/2023 08:00\",\"2023-06-01\",\r\n2\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_turns_a_written_csv_into_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open_engine(dir.path(), EngineConfig::default()).expect("engine");
    let runtime = Runtime::start(engine.clone(), 2).await.expect("runtime");
    let source = include_str!("../../../flows/dev/csv-to-json.yaml");
    let (done, logs) = run_flow(&engine, source).await;
    runtime.shutdown().await;
    assert_eq!(done.state.current, StateType::Success, "{logs:?}");
    let files = LocalFileStorage::new(dir.path().join("storage")).expect("files");
    let output = |task: &str| {
        done.task_runs()
            .iter()
            .find(|tr| tr.task_id == task)
            .and_then(|tr| tr.outputs.as_ref())
            .and_then(|o| o.get("uri"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no uri of {task}"))
            .to_string()
    };
    let read = |uri: String| String::from_utf8(files.read_blocking(&uri).expect("file")).expect("utf-8");
    assert_eq!(
        read(output("to_ion")),
        "{order_id:\"1\",email:\"kelly@example.com\",total:\"166.89\"}\n\
         {order_id:\"2\",email:\"miguel@example.net\",total:\"12.5\"}\n\
         {order_id:\"3\",email:\"jessica@example.com\",total:null}\n"
    );
    assert_eq!(
        read(output("to_json")),
        "{\"order_id\":\"1\",\"email\":\"kelly@example.com\",\"total\":\"166.89\"}\n\
         {\"order_id\":\"2\",\"email\":\"miguel@example.net\",\"total\":\"12.5\"}\n\
         {\"order_id\":\"3\",\"email\":\"jessica@example.com\",\"total\":null}\n"
    );
    assert!(output("to_json").ends_with(".jsonl"));
}

/// plugin-serdes' `IonToCsvTest.ion`: every Java time type Kestra writes, in the Ion it
/// writes them as, with `timeZoneId: Europe/Lisbon`, gives the line that test expects.
#[tokio::test]
async fn java_time_values_are_formatted_as_kestra_formats_them() {
    let folder = Folder::new();
    let row = concat!(
        "{String:\"string\",Int:2,Float:3.200000047683716e0,Double:3.2e0,",
        "Instant:2021-05-05T10:21:12.123Z,",
        "ZonedDateTime:ZonedDateTime::\"2021-05-05T12:21:12.123456+02:00\",",
        "LocalDateTime:LocalDateTime::\"2021-05-05T12:21:00\",",
        "OffsetDateTime:OffsetDateTime::\"2021-05-05T12:21:12.123456+02:00\",",
        "LocalDate:2021-05-05,",
        "LocalTime:LocalTime::\"12:21:12.123456\",",
        "OffsetTime:OffsetTime::\"12:21:12.123456+02:00\",",
        "Date:2021-05-05T10:21:12.123Z}\n"
    );
    let ion = folder.put("times.ion", row).await;
    let csv = folder
        .converted(
            "csv.IonToCsv",
            json!({"from": ion, "alwaysDelimitText": true, "header": false, "timeZoneId": "Europe/Lisbon"}),
        )
        .await;
    assert_eq!(
        csv,
        "\"string\",\"2\",\"3.200000047683716\",\"3.2\",\"2021-05-05T10:21:12.123Z\",\
         \"2021-05-05T11:21:12.123+01:00\",\"2021-05-05T12:21:00.000\",\
         \"2021-05-05T11:21:12.123+01:00\",\"2021-05-05\",\"12:21:12\",\"12:21:12+02:00\",\
         \"2021-05-05T10:21:12.123Z\"\n"
    );

    // `quoteModeNonNumeric_negativeAndDecimal`.
    let numbers = folder
        .put(
            "numbers.ion",
            "{label:\"test\",positive_int:42,negative_int:-7,decimal:3.14e0,negative_decimal:-0.5e0,not_a_number:\"12abc\"}\n",
        )
        .await;
    let csv = folder
        .converted(
            "csv.IonToCsv",
            json!({"from": numbers, "header": false, "quoteMode": "NON_NUMERIC"}),
        )
        .await;
    assert_eq!(csv, "\"test\",42,-7,3.14,-0.5,\"12abc\"\n");
}

/// plugin-serdes' `CsvToIonWriterTest`: one column without a header, bad rows per
/// `onBadLines`, a quoted field larger than `maxBufferSize`.
#[tokio::test]
async fn kestras_csv_reading_cases() {
    let folder = Folder::new();
    let single = folder.put("single.csv", "ABC\nXYZ\n").await;
    let ion = folder
        .converted("csv.CsvToIon", json!({"from": single, "header": false}))
        .await;
    assert_eq!(ion, "[\"ABC\"]\n[\"XYZ\"]\n");

    let bad = folder
        .put(
            "bad_rows.csv",
            "name,age,city\nAlice,New York\nBob,25,London,extra\nCharlie,35,Paris",
        )
        .await;
    for mode in ["WARN", "SKIP"] {
        let answer = folder
            .convert("csv.CsvToIon", json!({"from": bad, "onBadLines": mode}))
            .await
            .expect("converted");
        assert_eq!(answer.records, 1, "{mode}");
        assert_eq!(answer.warnings.len(), if mode == "WARN" { 2 } else { 0 });
    }
    assert_eq!(
        folder.convert("csv.CsvToIon", json!({"from": bad})).await,
        Err(SerdesError::Record {
            line: 2,
            message: "Bad line encountered (field count mismatch): Expected 3, got 2 fields.".into()
        })
    );

    let long = folder
        .put("long.csv", format!("col1\n\"{}\"\n", "x".repeat(50)))
        .await;
    let error = folder
        .convert(
            "csv.CsvToIon",
            json!({"from": long, "maxBufferSize": 8, "maxFieldSize": 1024}),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("maximum buffer size"), "{error}");
    assert!(folder
        .convert(
            "csv.CsvToIon",
            json!({"from": long, "maxBufferSize": 128, "maxFieldSize": 1024})
        )
        .await
        .is_ok());
}
