//! Parsers for the command line's durations, byte sizes and counts.
//!
//! Durations and sizes are parsed exactly as policy files write them, so a
//! value that works in one works in the other.

pub use moat_policy::{parse_bytes, parse_duration};

/// Parses a whole number that may contain `_` separators, such as
/// `10_000_000_000`.
pub fn parse_count(text: &str) -> Result<u64, String> {
    let digits = text.trim().replace('_', "");
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.parse().map_err(|_| {
            format!(
                "invalid number {text:?}: too large, the maximum is {}",
                u64::MAX
            )
        });
    }
    Err(format!(
        "invalid number {text:?}: expected a whole number, such as 1000000"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(parse_count("10_000"), Ok(10_000));
        assert!(parse_count("many").is_err());
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn count_overflow_says_too_large() {
        let error = parse_count("99999999999999999999999").expect_err("overflow");
        assert!(error.contains("too large"), "{error}");
    }
}
