//! Compares output with what was expected, and describes the first
//! difference in a form that reads well in a one-line failure message.

use super::expectations::ContentMatch;

/// Compares `actual` with `expected` and describes the first difference,
/// or returns `None` when they match.
pub fn compare(expected: &ContentMatch, actual: &[u8]) -> Option<String> {
    match expected {
        ContentMatch::Regex(regex) => match regex.is_match(actual) {
            true => None,
            false => Some(format!("does not match the regular expression {expected}")),
        },
        ContentMatch::Exact(text) => {
            let expected = text.as_bytes();
            if actual == expected {
                return None;
            }
            Some(describe_difference(expected, actual))
        }
    }
}

/// Names the first line where two texts differ, with both versions.
fn describe_difference(expected: &[u8], actual: &[u8]) -> String {
    let expected_lines: Vec<&[u8]> = expected.split_inclusive(|&b| b == b'\n').collect();
    let actual_lines: Vec<&[u8]> = actual.split_inclusive(|&b| b == b'\n').collect();
    let lines = expected_lines.len().max(actual_lines.len());
    for index in 0..lines {
        let want = expected_lines.get(index).copied();
        let got = actual_lines.get(index).copied();
        if want == got {
            continue;
        }
        let show = |line: Option<&[u8]>| match line {
            Some(line) => format!("{:?}", shorten(&String::from_utf8_lossy(line))),
            None => "nothing".to_owned(),
        };
        return format!(
            "differs at line {}: expected {}, got {}",
            index + 1,
            show(want),
            show(got)
        );
    }
    "differs".to_owned()
}

/// Maximum characters of a line shown in a difference.
const MAX_SHOWN_CHARS: usize = 120;

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_SHOWN_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_SHOWN_CHARS).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_names_first_line() {
        let text = describe_difference(b"a\nb\nc\n", b"a\nx\nc\n");
        assert_eq!(text, r#"differs at line 2: expected "b\n", got "x\n""#);
    }

    #[test]
    fn difference_in_final_newline() {
        let text = describe_difference(b"hello", b"hello\n");
        assert_eq!(
            text,
            r#"differs at line 1: expected "hello", got "hello\n""#
        );
    }

    #[test]
    fn difference_in_missing_line() {
        let text = describe_difference(b"a\nb\n", b"a\n");
        assert_eq!(text, r#"differs at line 2: expected "b\n", got nothing"#);
    }

    #[test]
    fn regex_searches_lines() {
        let regex = regex::bytes::RegexBuilder::new(r"^total: \d+$")
            .multi_line(true)
            .build()
            .expect("valid regex");
        let expected = ContentMatch::Regex(regex);
        assert_eq!(compare(&expected, b"rows: 2\ntotal: 7\n"), None);
        assert!(compare(&expected, b"total: seven\n").is_some());
    }
}
