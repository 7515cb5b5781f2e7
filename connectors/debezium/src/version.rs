//! `source.version`: what sluice writes where Debezium writes its release (`2.7.3.Final`).

/// The Debezium release whose events sluice's connectors reproduce.
pub const DEBEZIUM_RELEASE: &str = "3.3.0";

/// `source.version`: Debezium's `X.Y.Z.Qualifier` form, so consumers that parse it read the
/// Debezium release whose events these are, with a qualifier saying they come from sluice
/// (and which sluice), in word characters only: `3.3.0.sluice_0_1_0`.
pub fn source_version() -> &'static str {
    static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{DEBEZIUM_RELEASE}.sluice_{}",
            env!("CARGO_PKG_VERSION").replace('.', "_")
        )
    });
    &VERSION
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_parses_as_debezium_s_major_minor_patch_qualifier() {
        let version = super::source_version();
        let parts: Vec<&str> = version.split('.').collect();
        assert_eq!(parts.len(), 4, "{version}");
        assert!(
            parts[..3].iter().all(|p| p.parse::<u32>().is_ok()),
            "{version}"
        );
        assert!(parts[3].starts_with("sluice_"), "{version}");
        assert!(
            parts[3]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{version}"
        );
    }
}
