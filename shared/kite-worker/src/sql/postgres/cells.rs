//! PostgreSQL values (their binary wire format) as Kestra's `PostgresCellConverter` reads
//! them: `numeric` as exact decimals, `date` as `LocalDate`, `time` and `timetz` as
//! `LocalTime` (the latter in `timeZoneId`), `timestamp` as `LocalDateTime`, `timestamptz`
//! as `ZonedDateTime` in `timeZoneId`, `interval` as an ISO-8601 duration, `json`/`jsonb`
//! as their values, arrays as lists, `uuid` as text, `bytea` as bytes.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use kite_core::ion::{Decimal, IonType, IonValue, JavaTime};
use postgres_protocol::types as wire;
use tokio_postgres::types::{FromSql, Kind, Type};

/// A column's raw bytes (`None` for SQL NULL), decoded by [`decode`].
pub struct Raw<'a>(pub Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

type Error = Box<dyn std::error::Error + Sync + Send>;

/// PostgreSQL's epoch for dates and timestamps.
fn epoch() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .unwrap_or_default()
        .and_time(NaiveTime::MIN)
}

/// The value of a column of type `ty`, or why it cannot be read.
pub fn decode(ty: &Type, raw: Option<&[u8]>, zone: chrono_tz::Tz) -> Result<IonValue, String> {
    let Some(raw) = raw else {
        return Ok(IonValue::Null(IonType::Null));
    };
    decode_value(ty, raw, zone)
        .map_err(|e| format!("Invalid {} value: {e}", ty.name()))?
        .ok_or_else(|| format!("Data of type '{}' is not supported", ty.name()))
}

fn decode_value(ty: &Type, raw: &[u8], zone: chrono_tz::Tz) -> Result<Option<IonValue>, Error> {
    let java = |t: JavaTime| Ok(Some(t.to_ion()));
    match *ty {
        Type::BOOL => return Ok(Some(IonValue::Bool(wire::bool_from_sql(raw)?))),
        Type::INT2 => return Ok(Some(IonValue::Int(wire::int2_from_sql(raw)?.into()))),
        Type::INT4 => return Ok(Some(IonValue::Int(wire::int4_from_sql(raw)?.into()))),
        Type::INT8 => return Ok(Some(IonValue::Int(wire::int8_from_sql(raw)?.into()))),
        Type::OID => return Ok(Some(IonValue::Int(wire::oid_from_sql(raw)?.into()))),
        Type::FLOAT4 => return Ok(Some(IonValue::Float(wire::float4_from_sql(raw)?.into()))),
        Type::FLOAT8 => return Ok(Some(IonValue::Float(wire::float8_from_sql(raw)?))),
        Type::NUMERIC => return numeric(raw).map(Some),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::XML => {
            return Ok(Some(IonValue::String(wire::text_from_sql(raw)?.to_string())))
        }
        Type::CHAR => {
            return Ok(Some(IonValue::String(
                char::from(raw.first().copied().unwrap_or(0)).to_string(),
            )))
        }
        Type::UUID => {
            return Ok(Some(IonValue::String(crate::sql::uuid_text(
                &wire::uuid_from_sql(raw)?,
            ))))
        }
        Type::BYTEA => return Ok(Some(IonValue::Blob(wire::bytea_from_sql(raw).to_vec()))),
        Type::JSON => return Ok(Some(IonValue::from_json(&serde_json::from_slice(raw)?))),
        // jsonb's binary form is a version byte then the JSON text.
        Type::JSONB => {
            return Ok(Some(IonValue::from_json(&serde_json::from_slice(
                raw.get(1..).unwrap_or_default(),
            )?)))
        }
        Type::VOID => return Ok(Some(IonValue::Null(IonType::Null))),
        Type::MONEY => return Ok(Some(IonValue::Float(wire::int8_from_sql(raw)? as f64 / 100.0))),
        Type::INET | Type::CIDR => {
            let inet = wire::inet_from_sql(raw)?;
            return Ok(Some(IonValue::String(format!(
                "{}/{}",
                inet.addr(),
                inet.netmask()
            ))));
        }
        Type::DATE => {
            let days = wire::date_from_sql(raw)?;
            return match days {
                i32::MAX => Ok(Some(IonValue::String("infinity".into()))),
                i32::MIN => Ok(Some(IonValue::String("-infinity".into()))),
                days => java(JavaTime::LocalDate(
                    (epoch() + Duration::days(days.into())).date(),
                )),
            };
        }
        Type::TIME => return java(JavaTime::LocalTime(time_of_day(wire::time_from_sql(raw)?))),
        Type::TIMETZ => {
            // Kestra reads the instant (on 1970-01-01) and shows it in timeZoneId.
            let micros = i64::from_be_bytes(raw.get(..8).ok_or("short timetz")?.try_into()?);
            let west = i32::from_be_bytes(raw.get(8..12).ok_or("short timetz")?.try_into()?);
            let utc = NaiveDate::from_ymd_opt(1970, 1, 1)
                .unwrap_or_default()
                .and_time(NaiveTime::MIN)
                + Duration::microseconds(micros)
                + Duration::seconds(west.into());
            return java(JavaTime::LocalTime(zone.from_utc_datetime(&utc).time()));
        }
        Type::TIMESTAMP => {
            let micros = wire::timestamp_from_sql(raw)?;
            return match infinite(micros) {
                Some(text) => Ok(Some(IonValue::String(text.into()))),
                None => java(JavaTime::LocalDateTime(epoch() + Duration::microseconds(micros))),
            };
        }
        Type::TIMESTAMPTZ => {
            let micros = wire::timestamp_from_sql(raw)?;
            if let Some(text) = infinite(micros) {
                return Ok(Some(IonValue::String(text.into())));
            }
            let utc =
                DateTime::<Utc>::from_naive_utc_and_offset(epoch() + Duration::microseconds(micros), Utc);
            let local = utc.with_timezone(&zone);
            return java(JavaTime::Zoned(utc.with_timezone(&local.offset().fix())));
        }
        Type::INTERVAL => return interval(raw).map(Some),
        _ => {}
    }
    match ty.kind() {
        Kind::Enum(_) => Ok(Some(IonValue::String(wire::text_from_sql(raw)?.to_string()))),
        Kind::Domain(inner) => decode_value(inner, raw, zone),
        Kind::Array(inner) => array(inner, raw, zone),
        _ => Ok(None),
    }
}

fn infinite(micros: i64) -> Option<&'static str> {
    match micros {
        i64::MAX => Some("infinity"),
        i64::MIN => Some("-infinity"),
        _ => None,
    }
}

fn time_of_day(micros: i64) -> NaiveTime {
    NaiveTime::MIN + Duration::microseconds(micros)
}

/// `numeric`: base-10000 digits with a weight and a display scale.
fn numeric(raw: &[u8]) -> Result<IonValue, Error> {
    let word = |i: usize| -> Result<u16, Error> {
        Ok(u16::from_be_bytes(
            raw.get(i * 2..i * 2 + 2).ok_or("short numeric")?.try_into()?,
        ))
    };
    let (count, weight, sign, scale) = (word(0)? as usize, word(1)? as i16, word(2)?, word(3)?);
    match sign {
        0xC000 => return Ok(IonValue::Float(f64::NAN)),
        0xD000 => return Ok(IonValue::Float(f64::INFINITY)),
        0xF000 => return Ok(IonValue::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    // The digits as one integer scaled by 10^-scale: each base-10000 digit is four decimal
    // digits at position `weight - i` (in units of 10000).
    let mut digits = String::new();
    for i in 0..count {
        digits.push_str(&format!("{:04}", word(4 + i)?));
    }
    // `digits` now holds the value × 10000^(count - 1 - weight).
    let mut exponent = 4 * (i64::from(weight) + 1 - count as i64);
    let scale = i64::from(scale);
    // Shown with `scale` fraction digits: pad or cut the trailing digits to that scale.
    if exponent > -scale {
        digits.extend(std::iter::repeat_n('0', (exponent + scale) as usize));
        exponent = -scale;
    } else if exponent < -scale {
        let cut = (-scale - exponent) as usize;
        digits.truncate(digits.len().saturating_sub(cut));
        exponent = -scale;
    }
    let trimmed = digits.trim_start_matches('0');
    Ok(IonValue::Decimal(Decimal {
        digits: if trimmed.is_empty() {
            "0".into()
        } else {
            trimmed.to_string()
        },
        negative: sign == 0x4000 && !trimmed.is_empty(),
        exponent,
    }))
}

/// `interval` as Kestra prints `PGInterval`s: `P{y}Y{m}M{d}DT{h}H{m}M{s}S`, seconds whole.
fn interval(raw: &[u8]) -> Result<IonValue, Error> {
    let micros = i64::from_be_bytes(raw.get(..8).ok_or("short interval")?.try_into()?);
    let days = i32::from_be_bytes(raw.get(8..12).ok_or("short interval")?.try_into()?);
    let months = i32::from_be_bytes(raw.get(12..16).ok_or("short interval")?.try_into()?);
    let seconds = micros / 1_000_000;
    Ok(IonValue::String(format!(
        "P{}Y{}M{}DT{}H{}M{}S",
        months / 12,
        months % 12,
        days,
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )))
}

/// An array, nested by its dimensions (Kestra reads `PgArray`s as Java arrays).
fn array(inner: &Type, raw: &[u8], zone: chrono_tz::Tz) -> Result<Option<IonValue>, Error> {
    use postgres_protocol::types::ArrayDimension;
    let array = wire::array_from_sql(raw)?;
    let dimensions: Vec<ArrayDimension> = fallible_iterator::FallibleIterator::collect(array.dimensions())?;
    let mut values = Vec::new();
    let mut items = array.values();
    while let Some(item) = fallible_iterator::FallibleIterator::next(&mut items)? {
        match decode(inner, item, zone) {
            Ok(value) => values.push(value),
            Err(e) => return Err(e.into()),
        }
    }
    fn nest(values: &mut std::vec::IntoIter<IonValue>, dims: &[usize]) -> IonValue {
        match dims {
            [] | [_] => IonValue::List(values.take(dims.first().copied().unwrap_or(0)).collect()),
            [n, rest @ ..] => IonValue::List((0..*n).map(|_| nest(values, rest)).collect()),
        }
    }
    let dims: Vec<usize> = dimensions.iter().map(|d| d.len.max(0) as usize).collect();
    Ok(Some(nest(&mut values.into_iter(), &dims)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kite_core::ion::java_decimal;

    fn numeric_bytes(weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [digits.len() as u16, weight as u16, sign, scale]
            .iter()
            .chain(digits)
        {
            out.extend(word.to_be_bytes());
        }
        out
    }

    fn decimal_text(raw: &[u8]) -> String {
        match numeric(raw).unwrap() {
            IonValue::Decimal(d) => java_decimal(&d),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn numerics_keep_their_scale() {
        // 12345.678 (scale 3): digits 1 | 2345 | 6780, weight 1.
        assert_eq!(
            decimal_text(&numeric_bytes(1, 0, 3, &[1, 2345, 6780])),
            "12345.678"
        );
        // -0.05 (scale 2): digit 500 at weight -1.
        assert_eq!(decimal_text(&numeric_bytes(-1, 0x4000, 2, &[500])), "-0.05");
        // 1000000 (scale 0): digit 100 at weight 1.
        assert_eq!(decimal_text(&numeric_bytes(1, 0, 0, &[100])), "1000000");
        // 0.00 (scale 2): no digits.
        assert_eq!(decimal_text(&numeric_bytes(0, 0, 2, &[])), "0.00");
        assert!(
            matches!(numeric(&numeric_bytes(0, 0xC000, 0, &[])).unwrap(), IonValue::Float(f) if f.is_nan())
        );
    }

    #[test]
    fn intervals_and_uuids() {
        let mut raw = Vec::new();
        raw.extend((((4 * 3600 + 5 * 60 + 6) * 1_000_000_i64) + 500).to_be_bytes());
        raw.extend(3_i32.to_be_bytes());
        raw.extend(14_i32.to_be_bytes());
        assert_eq!(interval(&raw).unwrap(), IonValue::String("P1Y2M3DT4H5M6S".into()));
        assert_eq!(
            crate::sql::uuid_text(&[0xab; 16]),
            "abababab-abab-abab-abab-abababababab"
        );
    }
}
