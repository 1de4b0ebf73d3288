//! The trace's number formats: Python's `"%.12g" % value` and `str(integer)`, exactly.

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
        push_int(out, value as i64);
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

/// The two-digit decimal spellings of 0..=99, back to back.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// `str(value)` of an integer, appended (two digits a division).
#[inline]
pub fn push_int(out: &mut String, value: i64) {
    let mut digits = [0u8; 20];
    let mut position = digits.len();
    let mut rest = value.unsigned_abs();
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        position -= 2;
        digits[position..position + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        position -= 2;
        digits[position..position + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        position -= 1;
        digits[position] = b'0' + rest as u8;
    }
    if value < 0 {
        out.push('-');
    }
    // SAFETY: `digits[position..]` holds ASCII digits only, which are valid UTF-8.
    out.push_str(unsafe { std::str::from_utf8_unchecked(&digits[position..]) });
}
