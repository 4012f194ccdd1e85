//! Helpers shared by the fuzz targets.

use serde_json::Value;

/// Equality of JSON values where numbers that are floats may differ in the last bit.
///
/// serde_json (without its `float_roundtrip` feature, which this workspace does not
/// enable) parses some decimal floats one ULP off, so a float can change by one ULP each
/// time a value crosses the wire (`1e-67` printed, parsed and printed again gives
/// `1.0000000000000001e-67`). Everything else must be equal.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
