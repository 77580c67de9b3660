//! DuckDB values as Kestra's `DuckDbCellConverter` reads them through DuckDB's JDBC
//! driver: `DECIMAL` exact, `HUGEINT`, `UHUGEINT` and `UBIGINT` as text (Java's
//! `BigInteger` printed), `TINYINT` as an integer, `DATE` as `LocalDate`, `TIME` as
//! `LocalTime`, `TIMESTAMP` as a `ZonedDateTime` (its wall time in `timeZoneId`),
//! `TIMESTAMPTZ` as an `OffsetDateTime` in UTC, `INTERVAL` as DuckDB prints it (`28 days`),
//! `UUID` and `ENUM` as text, `JSON` as its value, lists and arrays as lists, structs as
//! maps. Values inside lists and structs are converted by the same rules.

use ::duckdb::core::{LogicalTypeHandle, LogicalTypeId};
use ::duckdb::types::{TimeUnit, Value};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use kite_core::ion::{Decimal, IonType, IonValue, JavaTime};

/// A column's type, as far as the conversion needs it (children for nested types).
#[derive(Debug, Clone, PartialEq)]
pub enum CellType {
    Timestamp,
    TimestampTz,
    Uuid,
    Json,
    List(Box<CellType>),
    Struct(Vec<CellType>),
    Map(Box<CellType>, Box<CellType>),
    Other,
}

impl CellType {
    /// The type of a result column.
    pub fn of(handle: &LogicalTypeHandle) -> CellType {
        if handle
            .get_alias()
            .is_some_and(|alias| alias.eq_ignore_ascii_case("JSON"))
        {
            return CellType::Json;
        }
        let Ok(id) = handle.try_id() else {
            return CellType::Other;
        };
        let children = || (0..handle.num_children()).map(|i| CellType::of(&handle.child(i)));
        match id {
            LogicalTypeId::Timestamp
            | LogicalTypeId::TimestampS
            | LogicalTypeId::TimestampMs
            | LogicalTypeId::TimestampNs => CellType::Timestamp,
            LogicalTypeId::TimestampTZ => CellType::TimestampTz,
            LogicalTypeId::Uuid => CellType::Uuid,
            LogicalTypeId::List | LogicalTypeId::Array => {
                CellType::List(Box::new(children().next().unwrap_or(CellType::Other)))
            }
            LogicalTypeId::Struct => CellType::Struct(children().collect()),
            LogicalTypeId::Map => {
                let mut kinds = children();
                let key = kinds.next().unwrap_or(CellType::Other);
                let value = kinds.next().unwrap_or(CellType::Other);
                CellType::Map(Box::new(key), Box::new(value))
            }
            _ => CellType::Other,
        }
    }
}

/// The value of a cell of type `kind`.
pub fn convert(value: Value, kind: &CellType, zone: chrono_tz::Tz) -> IonValue {
    match value {
        Value::Null => IonValue::Null(IonType::Null),
        Value::Boolean(b) => IonValue::Bool(b),
        Value::TinyInt(i) => IonValue::Int(i.into()),
        Value::SmallInt(i) => IonValue::Int(i.into()),
        Value::Int(i) => IonValue::Int(i.into()),
        Value::BigInt(i) => IonValue::Int(i.into()),
        Value::UTinyInt(i) => IonValue::Int(i.into()),
        Value::USmallInt(i) => IonValue::Int(i.into()),
        Value::UInt(i) => IonValue::Int(i.into()),
        // Java reads them as BigInteger, which Kestra prints.
        Value::UBigInt(i) => IonValue::String(i.to_string()),
        Value::HugeInt(i) => IonValue::String(i.to_string()),
        Value::UHugeInt(i) => IonValue::String(i.to_string()),
        // A float as Java prints it (its shortest decimal), not its double widening.
        Value::Float(f) => IonValue::Float(f.to_string().parse().unwrap_or(f.into())),
        Value::Double(f) => IonValue::Float(f),
        Value::Decimal(d) => decimal(d.value(), d.scale()),
        Value::Timestamp(unit, t) => timestamp(unit, t, kind, zone),
        Value::Text(text) => match kind {
            CellType::Json => serde_json::from_str(&text)
                .map(|json| IonValue::from_json(&json))
                .unwrap_or(IonValue::String(text)),
            _ => IonValue::String(text),
        },
        Value::Blob(bytes) if *kind == CellType::Uuid && bytes.len() == 16 => {
            IonValue::String(crate::sql::uuid_text(&bytes))
        }
        Value::Blob(bytes) | Value::Geometry(bytes) => IonValue::Blob(bytes),
        Value::Date32(days) => match NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|epoch| epoch.checked_add_signed(Duration::days(days.into())))
        {
            Some(date) => JavaTime::LocalDate(date).to_ion(),
            None => IonValue::String(days.to_string()),
        },
        Value::Time64(unit, t) => {
            let micros = micros(unit, t);
            JavaTime::LocalTime(NaiveTime::MIN + Duration::microseconds(micros)).to_ion()
        }
        Value::Interval { months, days, nanos } => IonValue::String(interval(months, days, nanos)),
        Value::List(items) | Value::Array(items) => {
            let inner = match kind {
                CellType::List(inner) => inner.as_ref(),
                _ => &CellType::Other,
            };
            IonValue::List(items.into_iter().map(|v| convert(v, inner, zone)).collect())
        }
        Value::Enum(text) => IonValue::String(text),
        Value::Struct(fields) => {
            let kinds: &[CellType] = match kind {
                CellType::Struct(kinds) => kinds,
                _ => &[],
            };
            IonValue::Struct(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, (name, v))| {
                        let kind = kinds.get(i).unwrap_or(&CellType::Other);
                        (name.clone(), convert(v.clone(), kind, zone))
                    })
                    .collect(),
            )
        }
        Value::Map(entries) => {
            let (key_kind, value_kind) = match kind {
                CellType::Map(k, v) => (k.as_ref(), v.as_ref()),
                _ => (&CellType::Other, &CellType::Other),
            };
            IonValue::Struct(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match convert(k.clone(), key_kind, zone).to_json() {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (key, convert(v.clone(), value_kind, zone))
                    })
                    .collect(),
            )
        }
        Value::Union(inner) => convert(*inner, &CellType::Other, zone),
        // A kind of value newer than this code: its text, rather than failing the run.
        other => IonValue::String(format!("{other:?}")),
    }
}

fn micros(unit: TimeUnit, t: i64) -> i64 {
    match unit {
        TimeUnit::Second => t.saturating_mul(1_000_000),
        TimeUnit::Millisecond => t.saturating_mul(1_000),
        TimeUnit::Microsecond => t,
        TimeUnit::Nanosecond => t / 1_000,
    }
}

fn timestamp(unit: TimeUnit, t: i64, kind: &CellType, zone: chrono_tz::Tz) -> IonValue {
    let nanos = match unit {
        TimeUnit::Nanosecond => i128::from(t),
        other => i128::from(micros(other, t)) * 1_000,
    };
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    let Some(at) = DateTime::<Utc>::from_timestamp(secs, sub) else {
        return IonValue::String(t.to_string());
    };
    if *kind == CellType::TimestampTz {
        return JavaTime::Zoned(at.fixed_offset()).to_ion();
    }
    // TIMESTAMP has no zone: Kestra reads its wall time as a time in `timeZoneId`.
    match zone.from_local_datetime(&at.naive_utc()).earliest() {
        Some(local) => JavaTime::Zoned(local.fixed_offset()).to_ion(),
        None => JavaTime::LocalDateTime(at.naive_utc()).to_ion(),
    }
}

/// An exact decimal: `value` × 10^-`scale`, its scale kept (`12345.120`).
fn decimal(value: i128, scale: u8) -> IonValue {
    let digits = value.unsigned_abs().to_string();
    IonValue::Decimal(Decimal {
        digits,
        negative: value < 0,
        exponent: -i64::from(scale),
    })
}

/// An interval as DuckDB prints it: `1 year 2 months 3 days 04:05:06.5`, `28 days`,
/// `00:00:00` when empty.
pub fn interval(months: i32, days: i32, nanos: i64) -> String {
    let mut parts = Vec::new();
    // DuckDB writes the plural for every count but 1 (`-1 days`).
    let unit = |n: i64, name: &str| format!("{n} {name}{}", if n == 1 { "" } else { "s" });
    let (years, months) = (months / 12, months % 12);
    if years != 0 {
        parts.push(unit(years.into(), "year"));
    }
    if months != 0 {
        parts.push(unit(months.into(), "month"));
    }
    if days != 0 {
        parts.push(unit(days.into(), "day"));
    }
    let micros = nanos / 1_000;
    if micros != 0 || parts.is_empty() {
        let sign = if micros < 0 { "-" } else { "" };
        let m = micros.unsigned_abs();
        let (hours, minutes, seconds, fraction) = (
            m / 3_600_000_000,
            m / 60_000_000 % 60,
            m / 1_000_000 % 60,
            m % 1_000_000,
        );
        let mut time = format!("{sign}{hours:02}:{minutes:02}:{seconds:02}");
        if fraction != 0 {
            time.push_str(format!(".{fraction:06}").trim_end_matches('0'));
        }
        parts.push(time);
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kite_core::ion::java_decimal;

    #[test]
    fn intervals_print_as_duckdb() {
        assert_eq!(interval(0, 28, 0), "28 days");
        assert_eq!(
            interval(14, 3, (4 * 3600 + 5 * 60 + 6) * 1_000_000_000 + 500_000_000),
            "1 year 2 months 3 days 04:05:06.5"
        );
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(interval(1, -1, 0), "1 month -1 days");
    }

    #[test]
    fn decimals_keep_their_scale() {
        let IonValue::Decimal(d) = decimal(12_345_123, 3) else {
            panic!()
        };
        assert_eq!(java_decimal(&d), "12345.123");
        let IonValue::Decimal(d) = decimal(-5, 2) else {
            panic!()
        };
        assert_eq!(java_decimal(&d), "-0.05");
    }

    #[test]
    fn timestamps_take_the_zone() {
        let paris = chrono_tz::Europe::Paris;
        // 2020-06-10 15:55:23.383345 as stored (no zone): that wall time in Paris.
        let t = 1_591_804_523_383_345;
        let local = timestamp(TimeUnit::Microsecond, t, &CellType::Timestamp, paris);
        assert_eq!(
            local.to_json(),
            serde_json::json!("2020-06-10T15:55:23.383345+02:00")
        );
        let utc = timestamp(TimeUnit::Microsecond, t, &CellType::TimestampTz, paris);
        assert_eq!(utc.to_json(), serde_json::json!("2020-06-10T15:55:23.383345Z"));
        assert_eq!(
            convert(Value::Float(123.456), &CellType::Other, paris),
            IonValue::Float(123.456)
        );
        assert_eq!(
            crate::sql::uuid_text(&[0xab; 16]),
            "abababab-abab-abab-abab-abababababab"
        );
    }
}
