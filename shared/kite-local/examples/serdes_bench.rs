//! Throughput of `IonToCsv` (and `CsvToIon` back), or of `IonToExcel`, on a generated Ion
//! file in the local file storage:
//! `cargo run --release -p kite-local --example serdes_bench -- [MB] [csv|excel]` (200 MB
//! and `csv` by default). The file is generated and converted as streams, so the
//! process's peak memory (`bench/serdes.sh` reads it with `/usr/bin/time -v`) does not
//! grow with its size.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use kite_core::ion::IonValue;
use kite_core::plugin::serdes::{Charset, CsvReading, CsvWriting, ExcelWriting, OnBadLines, QuoteMode};
use kite_core::plugin::serdes::{JavaPattern, SerdesCall, TextFormats};
use kite_engine::ports::FileStorage;
use kite_local::LocalFileStorage;
use kite_worker::serdes::run;
use kite_worker::storage::Scope;
use tokio::io::AsyncWriteExt;

const PREFIX: &str = "kestra:///bench/serdes/executions/e/";

/// One row as Kestra's query tasks store them: numbers, text, a decimal, a timestamp.
fn row(i: u64) -> String {
    let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(i as i64);
    let value = IonValue::Struct(vec![
        ("id".into(), IonValue::Int(i128::from(i))),
        ("name".into(), IonValue::String(format!("customer {i}, \"vip\""))),
        ("email".into(), IonValue::String(format!("user{i}@example.com"))),
        ("score".into(), IonValue::Float(i as f64 / 7.0)),
        ("active".into(), IonValue::Bool(i.is_multiple_of(3))),
        ("created".into(), IonValue::instant(at)),
        ("note".into(), IonValue::Null(kite_core::ion::IonType::Null)),
    ]);
    let mut line = value.to_line();
    line.push('\n');
    line
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let megabytes: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let excel = std::env::args().nth(2).as_deref() == Some("excel");
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Arc<dyn FileStorage> = Arc::new(LocalFileStorage::new(dir.path()).expect("files"));

    // The source, generated into the storage through a pipe.
    let source = format!("{PREFIX}rows.ion");
    let (mut writer, reader) = tokio::io::duplex(256 * 1024);
    let put = {
        let (files, source) = (files.clone(), source.clone());
        tokio::spawn(async move { files.put(&source, Box::pin(reader), u64::MAX).await })
    };
    let (mut written, mut rows) = (0u64, 0u64);
    while written < megabytes * 1_000_000 {
        let line = row(rows);
        writer.write_all(line.as_bytes()).await.expect("generate");
        written += line.len() as u64;
        rows += 1;
    }
    drop(writer);
    put.await.expect("join").expect("put");

    let readable = vec![PREFIX.to_string()];
    let scope = Scope {
        files: &files,
        prefix: "kestra:///bench/serdes/executions/e/tasks/t/tr/",
        readable: &readable,
        now: DateTime::<Utc>::UNIX_EPOCH,
    };
    if excel {
        let to_excel = SerdesCall::IonToExcel {
            excel: ExcelWriting {
                sheets: vec![("Sheet".into(), source)],
                header: true,
                styles: true,
                date_format: "yyyy-MM-dd".into(),
                zone: chrono_tz::UTC,
                charset: Charset::Utf8,
            },
        };
        let started = Instant::now();
        let xlsx = run(&scope, &to_excel).await.expect("IonToExcel");
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(xlsx.records, rows);
        let size = files.size(&xlsx.uri).await.expect("size").unwrap_or(0);
        println!(
            "IonToExcel: {rows} rows, {:.1} MB Ion -> {:.1} MB xlsx in {seconds:.2} s: {:.1} MB/s of Ion",
            written as f64 / 1e6,
            size as f64 / 1e6,
            written as f64 / 1e6 / seconds
        );
        return;
    }
    let to_csv = SerdesCall::IonToCsv {
        from: source,
        csv: CsvWriting {
            header: true,
            field_separator: b',',
            text_delimiter: b'"',
            line_delimiter: "\n".into(),
            quote: QuoteMode::Required,
            formats: TextFormats {
                date: JavaPattern::parse("yyyy-MM-dd").expect("pattern"),
                time: JavaPattern::parse("HH:mm:ss[XXX]").expect("pattern"),
                date_time: JavaPattern::parse("yyyy-MM-dd'T'HH:mm:ss.SSS[XXX]").expect("pattern"),
                zone: chrono_tz::UTC,
            },
        },
        charset: Charset::Utf8,
    };
    let started = Instant::now();
    let csv = run(&scope, &to_csv).await.expect("IonToCsv");
    let seconds = started.elapsed().as_secs_f64();
    let csv_size = files.size(&csv.uri).await.expect("size").unwrap_or(0);
    println!(
        "IonToCsv: {rows} rows, {:.1} MB Ion -> {:.1} MB CSV in {seconds:.2} s: {:.1} MB/s of Ion",
        written as f64 / 1e6,
        csv_size as f64 / 1e6,
        written as f64 / 1e6 / seconds
    );

    let to_ion = SerdesCall::CsvToIon {
        from: csv.uri,
        csv: CsvReading {
            header: true,
            field_separator: b',',
            text_delimiter: b'"',
            skip_empty_rows: false,
            skip_rows: 0,
            on_bad_lines: OnBadLines::Error,
            max_field_size: 16 * 1024 * 1024,
            max_buffer_size: 16 * 1024 * 1024,
        },
        charset: Charset::Utf8,
    };
    let started = Instant::now();
    let back = run(&scope, &to_ion).await.expect("CsvToIon");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(back.records, rows);
    println!(
        "CsvToIon: {} rows, {:.1} MB CSV in {seconds:.2} s: {:.1} MB/s of CSV",
        back.records,
        csv_size as f64 / 1e6,
        csv_size as f64 / 1e6 / seconds
    );
}
