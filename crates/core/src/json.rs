//! Small checks on raw JSON that the provider crates' fast paths share.

/// True when `json` may contain a `\uD800`–`\uDFFF` escape, i.e. half of a surrogate pair.
///
/// The fast, borrowed parsers skip values they do not need without validating them, while
/// the general parsers (through `serde_json::Value`) reject an unpaired surrogate anywhere.
/// A body that may hold one goes to the general parser, so both accept exactly the same
/// inputs. Paired surrogates also match; they merely take the slower path.
pub fn may_hold_surrogate_escape(json: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', json).any(|i| {
        json.get(i + 1) == Some(&b'u')
            && matches!(json.get(i + 2), Some(b'd' | b'D'))
            && matches!(
                json.get(i + 3),
                Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
            )
    })
}

#[cfg(test)]
mod tests {
    use super::may_hold_surrogate_escape;

    #[test]
    fn surrogate_escapes_are_spotted_and_others_are_not() {
        assert!(may_hold_surrogate_escape(br#"{"a":"\uD800"}"#));
        assert!(may_hold_surrogate_escape(br#"{"a":"\udfff"}"#));
        assert!(!may_hold_surrogate_escape(br#"{"a":"\u00e9 \\u d8"}"#));
        assert!(!may_hold_surrogate_escape(br#"{"a":"\uD7FF"}"#));
        assert!(!may_hold_surrogate_escape(br#"{"a":"\uE000"}"#));
        assert!(!may_hold_surrogate_escape(br#"{"a":"\u"}"#));
    }
}
