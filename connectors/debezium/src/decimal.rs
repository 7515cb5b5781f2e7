//! Decimals as Kafka Connect's `Decimal` logical type holds them: an unscaled integer in
//! big-endian two's complement, with the scale in the schema.

/// A decimal's unscaled value and scale (`-12.340` → (-12340, 3)); `None` beyond 38 digits or
/// for anything that is not a plain decimal.
pub fn parse_decimal(text: &str) -> Option<(i128, i32)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all = format!("{whole}{fraction}");
    if all.is_empty() || all.len() > 38 || !all.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unscaled: i128 = all.parse().ok()?;
    Some((
        if negative { -unscaled } else { unscaled },
        fraction.len() as i32,
    ))
}

/// Big-endian two's complement in the fewest bytes (Java's `BigInteger.toByteArray`).
pub fn twos_complement(value: i128) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (here, next) = (bytes[start], bytes[start + 1]);
        let redundant = (here == 0x00 && next & 0x80 == 0) || (here == 0xFF && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

/// The Decimal bytes of `text` at `scale` (more fraction digits than the scale are refused).
pub fn decimal_bytes(text: &str, scale: i32) -> Option<Vec<u8>> {
    let (unscaled, given) = parse_decimal(text)?;
    if given > scale {
        return None;
    }
    let factor = 10i128.checked_pow(u32::try_from(scale - given).ok()?)?;
    Some(twos_complement(unscaled.checked_mul(factor)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_as_java_s_big_integer_bytes() {
        assert_eq!(parse_decimal("-12.340"), Some((-12340, 3)));
        assert_eq!(twos_complement(-100), vec![0x9C]);
        assert_eq!(twos_complement(1250), vec![0x04, 0xE2]);
        assert_eq!(decimal_bytes("12.5", 2), Some(vec![0x04, 0xE2]));
        assert_eq!(decimal_bytes("1.234", 2), None);
    }
}
