//! DynamoDB's typed JSON (`{"S": "x"}`, `{"N": "1"}`, ...) as stream records carry it in
//! Lambda events, turned into plain JSON.

use serde_json::{Map, Number, Value};

/// Converts one typed attribute value; `None` for an unknown type tag.
pub fn attribute(value: &Value) -> Option<Value> {
    let obj = value.as_object()?;
    let (tag, inner) = obj.iter().next()?;
    Some(match tag.as_str() {
        "S" | "B" => Value::String(inner.as_str()?.to_string()),
        "N" => number(inner.as_str()?)?,
        "BOOL" => Value::Bool(inner.as_bool()?),
        "NULL" => Value::Null,
        "M" => Value::Object(image(inner)?),
        "L" => Value::Array(
            inner
                .as_array()?
                .iter()
                .map(attribute)
                .collect::<Option<Vec<_>>>()?,
        ),
        "SS" | "BS" => inner.clone(),
        "NS" => Value::Array(
            inner
                .as_array()?
                .iter()
                .map(|n| n.as_str().and_then(number))
                .collect::<Option<Vec<_>>>()?,
        ),
        _ => return None,
    })
}

/// Converts an item image (`NewImage`, `Keys`): attribute name → typed value.
pub fn image(value: &Value) -> Option<Map<String, Value>> {
    value
        .as_object()?
        .iter()
        .map(|(k, v)| attribute(v).map(|v| (k.clone(), v)))
        .collect()
}

fn number(text: &str) -> Option<Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::Number(i.into()));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_typed_values() {
        let item = json!({
            "pk": {"S": "EXEC#1"}, "version": {"N": "3"}, "ok": {"BOOL": true},
            "nested": {"M": {"a": {"L": [{"N": "1.5"}, {"NULL": true}]}}}, "tags": {"SS": ["x"]}
        });
        assert_eq!(
            Value::Object(image(&item).unwrap()),
            json!({"pk": "EXEC#1", "version": 3, "ok": true, "nested": {"a": [1.5, null]}, "tags": ["x"]})
        );
        assert_eq!(attribute(&json!({"X": 1})), None);
        assert_eq!(attribute(&json!({"N": "abc"})), None);
    }
}
