//! `IonToExcel`: each Ion file becomes a sheet of one workbook. Sheets are written in
//! rust_xlsxwriter's constant-memory mode (each row goes to a temporary file once the
//! next one starts), and the workbook is zipped on a blocking thread straight into the
//! output's pipe, so memory holds a row and a few buffers whatever the files' size.

use std::io::Write;

use kite_core::ion::IonValue;
use kite_core::plugin::serdes::excel::{excel_cell, text_cell, MAX_COLUMNS, MAX_ROWS};
use kite_core::plugin::serdes::{ExcelCell, ExcelWriting, SerdesAnswer, SerdesError};
use rust_xlsxwriter::{Format, Formula, Workbook, Worksheet, XlsxError};
use tokio::sync::mpsc;

use super::{IonValues, Output};
use crate::storage::Scope;

const CHUNK: usize = 64 * 1024;

fn workbook_error(error: XlsxError) -> SerdesError {
    SerdesError::Workbook(format!("The workbook could not be written: {error}"))
}

/// Writes one row of cells.
fn write_row(
    sheet: &mut Worksheet,
    row: u32,
    cells: impl Iterator<Item = ExcelCell>,
    date: Option<&Format>,
    line: u64,
) -> Result<(), SerdesError> {
    if row >= MAX_ROWS {
        return Err(SerdesError::Record {
            line,
            message: format!("a sheet holds at most {MAX_ROWS} rows"),
        });
    }
    for (column, cell) in cells.enumerate() {
        let column = u16::try_from(column)
            .ok()
            .filter(|c| *c < MAX_COLUMNS)
            .ok_or_else(|| SerdesError::Record {
                line,
                message: format!("a sheet holds at most {MAX_COLUMNS} columns"),
            })?;
        let written = match cell {
            ExcelCell::Empty => continue,
            ExcelCell::Number(n) => sheet.write_number(row, column, n),
            ExcelCell::Bool(b) => sheet.write_boolean(row, column, b),
            ExcelCell::Date(serial) => match date {
                Some(format) => sheet.write_number_with_format(row, column, serial, format),
                None => sheet.write_number(row, column, serial),
            },
            ExcelCell::Text(text) => sheet.write_string(row, column, text),
            ExcelCell::Formula(formula) => sheet.write_formula(row, column, Formula::new(formula)),
        };
        written.map_err(|e| SerdesError::Record {
            line,
            message: e.to_string(),
        })?;
    }
    Ok(())
}

/// Writes the records of `from` into `sheet`; returns how many there are.
async fn write_sheet(
    scope: &Scope<'_>,
    from: &str,
    sheet: &mut Worksheet,
    excel: &ExcelWriting,
    date: Option<&Format>,
) -> Result<u64, SerdesError> {
    let mut values = IonValues::open(scope, from, excel.charset).await?;
    let (mut records, mut row, mut first) = (0u64, 0u32, true);
    while let Some((line, value)) = values.next().await? {
        records += 1;
        match value.unannotated().0 {
            IonValue::List(items) => {
                if excel.header {
                    return Err(SerdesError::Record {
                        line,
                        message: "Invalid data of type List with header".into(),
                    });
                }
                write_row(
                    sheet,
                    row,
                    items.iter().map(|v| excel_cell(v, excel.zone)),
                    date,
                    line,
                )?;
            }
            IonValue::Struct(fields) => {
                if first && excel.header {
                    write_row(sheet, row, fields.iter().map(|(k, _)| text_cell(k)), date, line)?;
                    row += 1;
                }
                write_row(
                    sheet,
                    row,
                    fields.iter().map(|(_, v)| excel_cell(v, excel.zone)),
                    date,
                    line,
                )?;
            }
            // Kestra writes rows of lists and maps only.
            _ => continue,
        }
        first = false;
        row += 1;
    }
    Ok(records)
}

/// The zipped workbook's bytes, sent in chunks to the task's side of the pipe.
struct ChannelWriter {
    chunks: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.chunks
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the output was closed"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

pub(super) async fn ion_to_excel(
    scope: &Scope<'_>,
    excel: &ExcelWriting,
) -> Result<SerdesAnswer, SerdesError> {
    let mut workbook = Workbook::new();
    // One style for every date (Kestra adds one per date cell, up to Excel's limit).
    let date = excel
        .styles
        .then(|| Format::new().set_num_format(&excel.date_format));
    let mut records = 0u64;
    for (title, from) in &excel.sheets {
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(workbook_error)?;
        sheet
            .set_name(title)
            .map_err(|e| SerdesError::Workbook(format!("Invalid sheet title '{title}': {e}")))?;
        records += write_sheet(scope, from, sheet, excel, date.as_ref()).await?;
    }

    let (chunks, mut received) = mpsc::channel::<Vec<u8>>(4);
    let zip = tokio::task::spawn_blocking(move || {
        let mut writer = ChannelWriter {
            chunks,
            buf: Vec::with_capacity(CHUNK),
        };
        workbook.save_to_writer(&mut writer)?;
        writer.flush().map_err(XlsxError::from)
    });
    let mut out = Output::open(scope, ".xlsx");
    let mut pushed = Ok(());
    while let Some(chunk) = received.recv().await {
        pushed = out.push(&chunk).await;
        if pushed.is_err() {
            break;
        }
    }
    // Closing the pipe stops the zipping if the output failed.
    drop(received);
    pushed?;
    zip.await
        .map_err(|e| SerdesError::Workbook(format!("The workbook could not be written: {e}")))?
        .map_err(workbook_error)?;
    Ok(SerdesAnswer {
        uri: out.finish().await?,
        records,
        warnings: Vec::new(),
    })
}
