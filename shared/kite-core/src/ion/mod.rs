//! Amazon Ion text, as Kestra stores query results and items files (its `FileSerde`): one
//! value per line.
//!
//! Writing: [`to_line`] gives one JSON value as the line Kestra writes for it (without the
//! line end); [`IonValue::to_line`] does the same for the Ion types JSON lacks. Reading:
//! [`from_line`] reads one value; [`LineReader`] reads the values of a line-oriented stream
//! one at a time (a value may span lines, a line may hold several).
//!
//! The mapping, as Kestra's Jackson Ion mapper writes and reads Java values:
//!
//! | Ion | [`IonValue`] | written from | JSON ([`IonValue::to_json`]) |
//! |---|---|---|---|
//! | `null`, `null.int`… | `Null(IonType)` | JSON `null` | `null` |
//! | `true` | `Bool` | boolean | boolean |
//! | `42`, `0x2a`, `1_000` | `Int` (i128) | integer | number |
//! | `1.5e0`, `nan`, `+inf` | `Float` | non-integer number (Java's `Double`) | number (`null` for nan/inf) |
//! | `1.5`, `1.5d0`, `1.` | `Decimal` (digits and exponent, exact) | — (Java's `BigDecimal`) | number, as Java prints it |
//! | `2023-01-01T10:00:00.000Z` | `Timestamp` (its text) | [`IonValue::instant`], [`IonValue::date`] | ISO string (`2023-01-01` at UTC midnight) |
//! | `"text"`, `'''long'''` | `String` | string | string |
//! | `sym`, `'quoted sym'` | `Symbol` | — | string |
//! | `{{ aGk= }}`, `{{ "hi" }}` | `Blob`, `Clob` | — | base64 string, text |
//! | `[1,2]`, `(a b)` | `List`, `Sexp` | array | array |
//! | `{a:1}` | `Struct` (ordered fields) | object | object |
//! | `LocalDate::"2023-01-01"` | `Annotated` | — | the annotated value |
//!
//! Kestra writes `OffsetDateTime`, `ZonedDateTime`, `LocalDateTime`, `OffsetTime` and
//! `LocalTime` as strings annotated with the Java class name; the CSV conversion formats
//! them by that annotation ([`JavaTime`]).

mod number;
mod read;
#[cfg(test)]
mod tests;
mod time;
mod write;

use base64::Engine as _;
use serde_json::{Map, Value};

pub use number::{java_decimal, java_double};
pub use read::{from_line, LineReader};
pub use time::{JavaTime, Timestamp};

/// One Ion value.
#[derive(Debug, Clone, PartialEq)]
pub enum IonValue {
    /// `null` (`IonType::Null`) or a typed null such as `null.string`.
    Null(IonType),
    Bool(bool),
    Int(i128),
    Float(f64),
    Decimal(Decimal),
    Timestamp(Timestamp),
    String(String),
    Symbol(String),
    Blob(Vec<u8>),
    Clob(Vec<u8>),
    List(Vec<IonValue>),
    Sexp(Vec<IonValue>),
    /// Fields in the order written (names may repeat in Ion).
    Struct(Vec<(String, IonValue)>),
    /// `a::b::value`.
    Annotated(Vec<String>, Box<IonValue>),
}

/// The types a typed null names (`null.int`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IonType {
    Null,
    Bool,
    Int,
    Float,
    Decimal,
    Timestamp,
    String,
    Symbol,
    Blob,
    Clob,
    List,
    Sexp,
    Struct,
}

impl IonType {
    pub(crate) const ALL: [(IonType, &'static str); 13] = [
        (IonType::Null, "null"),
        (IonType::Bool, "bool"),
        (IonType::Int, "int"),
        (IonType::Float, "float"),
        (IonType::Decimal, "decimal"),
        (IonType::Timestamp, "timestamp"),
        (IonType::String, "string"),
        (IonType::Symbol, "symbol"),
        (IonType::Blob, "blob"),
        (IonType::Clob, "clob"),
        (IonType::List, "list"),
        (IonType::Sexp, "sexp"),
        (IonType::Struct, "struct"),
    ];

    pub fn name(self) -> &'static str {
        IonType::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, n)| *n)
            .unwrap_or("null")
    }
}

/// An exact decimal: `coefficient × 10^exponent` (Ion keeps trailing zeros: `1.50` is
/// 150 × 10⁻²).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    /// Digits without leading zeros (`"0"` for zero).
    pub digits: String,
    pub negative: bool,
    pub exponent: i64,
}

/// Why Ion text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IonError {
    /// The text ended inside a value (a value may continue on the next line).
    #[error("unexpected end of the Ion text")]
    Incomplete,
    /// Not Ion text, at a character (1-based line and column of the text read).
    #[error("invalid Ion on line {line}, column {column}: {message}")]
    Invalid {
        line: u64,
        column: usize,
        message: String,
    },
    #[error("an Ion value is longer than the limit of {limit} bytes")]
    TooLong { limit: usize },
}

/// `value` as the one line of Ion text Kestra writes for it (no line end).
pub fn to_line(value: &Value) -> String {
    IonValue::from_json(value).to_line()
}

impl IonValue {
    /// The value as one line of Ion text (no line end), as Kestra's Ion writer prints it.
    pub fn to_line(&self) -> String {
        let mut out = String::new();
        write::value(&mut out, self);
        out
    }

    /// A JSON value as Kestra writes what Jackson read from JSON: integers stay integers,
    /// other numbers are doubles.
    pub fn from_json(value: &Value) -> IonValue {
        match value {
            Value::Null => IonValue::Null(IonType::Null),
            Value::Bool(b) => IonValue::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => IonValue::Int(i128::from(i)),
                (None, Some(u)) => IonValue::Int(i128::from(u)),
                _ => IonValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => IonValue::String(s.clone()),
            Value::Array(items) => IonValue::List(items.iter().map(IonValue::from_json).collect()),
            Value::Object(fields) => IonValue::Struct(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), IonValue::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// An instant as Kestra writes Java `Instant`s: a timestamp to the millisecond, UTC.
    pub fn instant(at: chrono::DateTime<chrono::Utc>) -> IonValue {
        IonValue::Timestamp(Timestamp::instant(at))
    }

    /// A date as Kestra writes Java `LocalDate`s: a timestamp of day precision.
    pub fn date(date: chrono::NaiveDate) -> IonValue {
        IonValue::Timestamp(Timestamp::date(date))
    }

    /// The value as a JSON value, for expressions and JSON output (see the module's
    /// table). Decimals become JSON numbers (their exact text when JSON can hold it).
    pub fn to_json(&self) -> Value {
        match self {
            IonValue::Null(_) => Value::Null,
            IonValue::Bool(b) => Value::Bool(*b),
            IonValue::Int(i) => match i64::try_from(*i) {
                Ok(i) => Value::from(i),
                Err(_) => match u64::try_from(*i) {
                    Ok(u) => Value::from(u),
                    Err(_) => serde_json::Number::from_f64(*i as f64).map_or(Value::Null, Value::Number),
                },
            },
            IonValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            IonValue::Decimal(d) => serde_json::from_str::<Value>(&java_decimal(d))
                .ok()
                .filter(Value::is_number)
                .unwrap_or(Value::Null),
            IonValue::Timestamp(t) => Value::String(t.to_iso()),
            IonValue::String(s) | IonValue::Symbol(s) => Value::String(s.clone()),
            IonValue::Blob(bytes) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            IonValue::Clob(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
            IonValue::List(items) | IonValue::Sexp(items) => {
                Value::Array(items.iter().map(IonValue::to_json).collect())
            }
            IonValue::Struct(fields) => {
                let mut map = Map::new();
                for (k, v) in fields {
                    map.insert(k.clone(), v.to_json());
                }
                Value::Object(map)
            }
            IonValue::Annotated(_, value) => value.to_json(),
        }
    }

    /// The value without its annotations, and the first of them.
    pub fn unannotated(&self) -> (&IonValue, Option<&str>) {
        match self {
            IonValue::Annotated(annotations, value) => {
                (value.unannotated().0, annotations.first().map(String::as_str))
            }
            other => (other, None),
        }
    }
}
