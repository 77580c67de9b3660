//! `CsvToIon` and `IonToCsv`: CSV parsed by the csv crate's push parser from the chunks
//! of the source stream, records written as they come.

use csv_core::{ReadRecordResult, ReaderBuilder};
use kite_core::ion::IonValue;
use kite_core::plugin::serdes::text::{csv_field, write_csv_record, CsvRecords, CsvRow};
use kite_core::plugin::serdes::{Charset, CsvReading, CsvWriting, SerdesAnswer, SerdesError, MAX_WARNINGS};
use kite_core::plugin::storage::files::MAX_LINE_BYTES;
use kite_core::plugin::storage::StorageError;
use tokio::io::AsyncReadExt;

use super::charset::open_text;
use super::{IonValues, Output};
use crate::storage::Scope;

const CHUNK: usize = 64 * 1024;

pub(super) async fn csv_to_ion(
    scope: &Scope<'_>,
    from: &str,
    reading: &CsvReading,
    charset: Charset,
) -> Result<SerdesAnswer, SerdesError> {
    let mut source = open_text(scope, from, charset).await?;
    let mut parser = ReaderBuilder::new()
        .delimiter(reading.field_separator)
        .quote(reading.text_delimiter)
        .build();
    let mut rows = CsvRecords::new(reading.clone());
    let mut out = Output::open(scope, ".ion");
    let (mut records, mut bad) = (0u64, 0u64);
    let mut warnings = Vec::new();

    let mut chunk = vec![0u8; CHUNK];
    let (mut start, mut end) = (0usize, 0usize);
    let mut eof = false;
    let mut fields = vec![0u8; 4096];
    let mut ends = vec![0usize; 64];
    let (mut used, mut nends) = (0usize, 0usize);
    loop {
        if start == end && !eof {
            end = source.read(&mut chunk).await.map_err(|e| StorageError::Storage {
                uri: from.to_string(),
                reason: e.to_string(),
            })?;
            start = 0;
            eof = end == 0;
        }
        let input = &chunk[start..end];
        let (result, nin, nout, nend) = parser.read_record(input, &mut fields[used..], &mut ends[nends..]);
        let last_byte = (nin > 0).then(|| input[nin - 1]);
        start += nin;
        used += nout;
        nends += nend;
        match result {
            ReadRecordResult::InputEmpty => {}
            ReadRecordResult::OutputFull => {
                if fields.len() >= MAX_LINE_BYTES {
                    return Err(StorageError::LineTooLong {
                        uri: from.to_string(),
                        limit: MAX_LINE_BYTES,
                    }
                    .into());
                }
                fields.resize(fields.len() * 2, 0);
            }
            ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
            ReadRecordResult::Record => {
                // The line the record ends on.
                let line = parser.line() - u64::from(last_byte == Some(b'\n'));
                let mut values = Vec::with_capacity(nends);
                let mut from_at = 0;
                for &to in &ends[..nends] {
                    let field = &fields[from_at..to];
                    if field.len() > reading.max_buffer_size {
                        return Err(SerdesError::Record {
                            line,
                            message: format!(
                                "a field does not fit the maximum buffer size of {} bytes (maxBufferSize); is a quote left open?",
                                reading.max_buffer_size
                            ),
                        });
                    }
                    if field.len() > reading.max_field_size {
                        return Err(SerdesError::Record {
                            line,
                            message: format!(
                                "a field is longer than maxFieldSize ({} bytes)",
                                reading.max_field_size
                            ),
                        });
                    }
                    let text = std::str::from_utf8(field).map_err(|_| SerdesError::Record {
                        line,
                        message: "not UTF-8 text".into(),
                    })?;
                    values.push(text.to_string());
                    from_at = to;
                }
                used = 0;
                nends = 0;
                match rows.row(line, values) {
                    Ok(CsvRow::Record(value)) => {
                        let mut text = value.to_line();
                        text.push('\n');
                        out.push(text.as_bytes()).await?;
                        records += 1;
                    }
                    Ok(CsvRow::Skipped) => {}
                    Ok(CsvRow::Bad(warning)) => {
                        bad += 1;
                        if reading.on_bad_lines == kite_core::plugin::serdes::OnBadLines::Warn
                            && warnings.len() < MAX_WARNINGS
                        {
                            warnings.push(warning);
                        }
                    }
                    Err(message) => return Err(SerdesError::Record { line, message }),
                }
            }
            ReadRecordResult::End => break,
        }
    }
    if reading.on_bad_lines == kite_core::plugin::serdes::OnBadLines::Warn && bad as usize > warnings.len() {
        warnings.push(format!("{bad} bad lines left out in all"));
    }
    Ok(SerdesAnswer {
        uri: out.finish().await?,
        records,
        warnings,
    })
}

pub(super) async fn ion_to_csv(
    scope: &Scope<'_>,
    from: &str,
    csv: &CsvWriting,
    charset: Charset,
) -> Result<SerdesAnswer, SerdesError> {
    let mut values = IonValues::open(scope, from, Charset::Utf8).await?;
    let mut out = Output::open_in(scope, ".csv", charset);
    let mut records = 0u64;
    let mut first = true;
    let mut row = Vec::new();
    let field = |value: &IonValue, line: u64| {
        csv_field(value, &csv.formats).map_err(|message| SerdesError::Record { line, message })
    };
    while let Some((line, value)) = values.next().await? {
        records += 1;
        row.clear();
        match value.unannotated().0 {
            IonValue::List(items) => {
                if csv.header {
                    return Err(SerdesError::Record {
                        line,
                        message: "Invalid data of type List with header".into(),
                    });
                }
                let fields = items
                    .iter()
                    .map(|v| field(v, line))
                    .collect::<Result<Vec<_>, _>>()?;
                write_csv_record(&mut row, &fields, csv);
            }
            IonValue::Struct(pairs) => {
                if first {
                    first = false;
                    if csv.header {
                        let names: Vec<Option<String>> = pairs.iter().map(|(k, _)| Some(k.clone())).collect();
                        write_csv_record(&mut row, &names, csv);
                    }
                }
                let fields = pairs
                    .iter()
                    .map(|(_, v)| field(v, line))
                    .collect::<Result<Vec<_>, _>>()?;
                write_csv_record(&mut row, &fields, csv);
            }
            // Kestra writes rows of lists and maps only.
            _ => continue,
        }
        out.push(&row).await?;
    }
    Ok(SerdesAnswer {
        uri: out.finish().await?,
        records,
        warnings: Vec::new(),
    })
}
