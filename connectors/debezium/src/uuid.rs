//! The text form of a UUID, as `io.debezium.data.Uuid` carries it.

/// A UUID's 16 bytes (big-endian, as both servers send them) in lower-case hex, 8-4-4-4-12.
pub fn uuid_text(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_uuid_is_lower_case_hex_in_five_groups() {
        let mut bytes = [0u8; 16];
        bytes[0] = 0xA0;
        bytes[15] = 0x11;
        assert_eq!(
            super::uuid_text(&bytes),
            "a0000000-0000-0000-0000-000000000011"
        );
    }
}
