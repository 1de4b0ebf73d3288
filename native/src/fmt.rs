//! Python's `"%.12g" % value`, exactly (the trace's float format).

use std::fmt::Write;

pub fn format_g12(out: &mut String, value: f64) {
    const PRECISION: i32 = 12;
    if value.is_nan() {
        out.push_str("nan");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if value == 0.0 {
        out.push_str(if value.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // a whole number below 10**12 prints as one (the common case: aggregates of integers)
    if value == value.trunc() && value.abs() < 1e12 {
        let _ = write!(out, "{}", value as i64);
        return;
    }
    // the exponent after rounding to PRECISION significant digits decides the style
    let scientific = format!("{:.*e}", (PRECISION - 1) as usize, value);
    let (mantissa, exponent) = scientific.split_once('e').expect("an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    if (-4..PRECISION).contains(&exponent) {
        let decimals = (PRECISION - 1 - exponent) as usize;
        let fixed = format!("{:.*}", decimals, value);
        out.push_str(strip_zeros(&fixed));
    } else {
        out.push_str(strip_zeros(mantissa));
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{}{:02}", sign, exponent.abs());
    }
}

fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

pub fn g12(value: f64) -> String {
    let mut out = String::new();
    format_g12(&mut out, value);
    out
}
