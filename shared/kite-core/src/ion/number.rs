//! Numbers as Java prints them (`Double.toString`, `BigDecimal.toString`), which is what
//! Kestra's CSV and JSON outputs hold, and as Ion text prints them.

use super::Decimal;

/// The shortest digits of a finite, non-zero `value` and its decimal exponent: `value =
/// 0.d1d2… × 10^(exponent + 1)`, i.e. `d1.d2… × 10^exponent`.
fn shortest(value: f64) -> (String, i32) {
    let text = format!("{:e}", value.abs());
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exponent.parse().unwrap_or(0))
}

/// `value` as Java's `Double.toString` prints it (`1.5`, `100.0`, `1.0E10`, `1.0E-5`).
pub fn java_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0.0");
    }
    let (digits, exponent) = shortest(value);
    let abs = value.abs();
    if (1e-3..1e7).contains(&abs) {
        let point = exponent + 1;
        let (int, frac) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{}", "0".repeat((-point) as usize), digits),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            (
                digits[..point as usize].to_string(),
                digits[point as usize..].to_string(),
            )
        };
        let frac = if frac.is_empty() { "0".to_string() } else { frac };
        format!("{sign}{int}.{frac}")
    } else {
        let rest = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{rest}E{exponent}", &digits[..1])
    }
}

/// `value` as Ion text prints a float: Java's digits with a lower-case exponent, which
/// every float has (`1.5e0`, `1.0e10`, `0e0`, `nan`, `+inf`).
pub fn ion_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+inf" } else { "-inf" }.into();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0e0" } else { "0e0" }.into();
    }
    let text = java_double(value);
    match text.split_once('E') {
        Some((mantissa, exponent)) => format!("{mantissa}e{exponent}"),
        None => format!("{text}e0"),
    }
}

/// A decimal as Java's `BigDecimal.toString` prints it (`1.50`, `1E+2`, `1.2E-8`).
pub fn java_decimal(d: &Decimal) -> String {
    let sign = if d.negative && d.digits != "0" { "-" } else { "" };
    let digits = &d.digits;
    let scale = -d.exponent;
    let adjusted = d.exponent + digits.len() as i64 - 1;
    if scale >= 0 && adjusted >= -6 {
        let scale = scale as usize;
        if scale == 0 {
            return format!("{sign}{digits}");
        }
        if digits.len() > scale {
            let (int, frac) = digits.split_at(digits.len() - scale);
            format!("{sign}{int}.{frac}")
        } else {
            format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
        }
    } else {
        let rest = if digits.len() > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        let exp_sign = if adjusted >= 0 { "+" } else { "" };
        format!("{sign}{}{rest}E{exp_sign}{adjusted}", &digits[..1])
    }
}

/// A decimal as Ion text prints it: `1.50`, `1.`, `0.001`, `1d2`.
pub fn ion_decimal(d: &Decimal) -> String {
    let sign = if d.negative { "-" } else { "" };
    let digits = &d.digits;
    if d.exponent == 0 {
        return format!("{sign}{digits}.");
    }
    if d.exponent > 0 {
        return format!("{sign}{digits}d{}", d.exponent);
    }
    let point = digits.len() as i64 + d.exponent;
    if point > 0 {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    } else if point > -6 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else {
        format!("{sign}{digits}d{}", d.exponent)
    }
}
