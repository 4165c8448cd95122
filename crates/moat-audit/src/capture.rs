//! Turning a run's texts into [`Captured`] values at a policy's capture
//! level, with secret values redacted.

use sha2::{Digest, Sha256};

use crate::record::{Capture, Captured, TRUNCATED_CAPTURE_BYTES};

/// Replaces secret values in a text, returning `None` when it contains none.
/// The egress gate provides one built from the policy's secrets.
pub type Redact<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// Returns `None` for every text: the redaction of runs without secrets.
pub fn no_secrets(_: &str) -> Option<String> {
    None
}

/// SHA-256 of `bytes` as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Captures `bytes` at `level`: the hash and size always; the text, with
/// secrets redacted and cut at [`TRUNCATED_CAPTURE_BYTES`] when `level` is
/// [`Capture::Truncated`], unless `level` is [`Capture::Hashes`].
///
/// When the bytes hold a secret's value, the hash is of the redacted text
/// instead, because a hash of text that is known except for a short
/// secret would let anyone holding the record guess the secret.
pub fn capture(bytes: &[u8], level: Capture, redact: Redact<'_>) -> Captured {
    let mut captured = Captured {
        sha256: String::new(),
        bytes: bytes.len() as u64,
        text: None,
        truncated: false,
        redacted: false,
    };
    // Redact before cutting, so that a cut cannot leave part of a secret.
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    match redact(&text) {
        Some(redacted) => {
            text = redacted;
            captured.redacted = true;
            captured.sha256 = sha256_hex(text.as_bytes());
        }
        None => captured.sha256 = sha256_hex(bytes),
    }
    if level == Capture::Hashes {
        return captured;
    }
    if level == Capture::Truncated && text.len() > TRUNCATED_CAPTURE_BYTES {
        let mut end = TRUNCATED_CAPTURE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        captured.truncated = true;
    }
    captured.text = Some(text);
    captured
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_level_keeps_no_text() {
        let captured = capture(b"print(1)", Capture::Hashes, &no_secrets);
        assert_eq!(captured.text, None);
        assert_eq!(captured.bytes, 8);
        assert_eq!(captured.sha256, sha256_hex(b"print(1)"));
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn truncation_respects_characters_and_redacts_first() {
        let secret = "s3cr3t-value";
        let redact = |text: &str| {
            text.contains(secret)
                .then(|| text.replace(secret, "[REDACTED:key]"))
        };
        let mut input = "é".repeat(TRUNCATED_CAPTURE_BYTES);
        input.insert_str(0, secret);
        let captured = capture(input.as_bytes(), Capture::Truncated, &redact);
        let text = captured.text.expect("text kept");
        assert!(captured.truncated);
        assert!(captured.redacted);
        assert!(text.starts_with("[REDACTED:key]"));
        assert_ne!(captured.sha256, sha256_hex(input.as_bytes()));
        assert!(text.len() <= TRUNCATED_CAPTURE_BYTES);
        assert!(!text.contains(secret));
    }

    #[test]
    fn full_level_keeps_everything() {
        let input = "x".repeat(TRUNCATED_CAPTURE_BYTES * 3);
        let captured = capture(input.as_bytes(), Capture::Full, &no_secrets);
        assert_eq!(captured.text.as_deref(), Some(input.as_str()));
        assert!(!captured.truncated);
        assert!(!captured.redacted);
    }

    #[test]
    fn hashes_level_hashes_the_redacted_text() {
        let redact = |text: &str| {
            text.contains("hunter2")
                .then(|| text.replace("hunter2", "[REDACTED:pw]"))
        };
        let captured = capture(b"pw = 'hunter2'", Capture::Hashes, &redact);
        assert_eq!(captured.text, None);
        assert!(captured.redacted);
        assert_eq!(captured.sha256, sha256_hex(b"pw = '[REDACTED:pw]'"));
    }
}
