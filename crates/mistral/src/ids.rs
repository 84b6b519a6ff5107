//! Mistral's tool call ids.
//!
//! Mistral rejects a request whose tool call ids are not exactly nine ASCII letters or digits
//! (`Tool call id was call_abc but must be a-z, A-Z, 0-9, with a length of 9`). Conversations
//! that started on another provider carry ids like `call_Ab12…` or `toolu_01…`, so every id that
//! is not already in Mistral's form is replaced by a hash of itself:
//!
//! - deterministic and stateless: the same id maps to the same value in the assistant turn's
//!   `tool_calls[].id` and in the tool turn's `tool_call_id`, so the pairing survives, and the
//!   same conversation sent twice (a retry, a failover) builds the same body;
//! - ids that already fit are kept, so Mistral's own ids round-trip unchanged;
//! - 64-bit FNV-1a, finished with a SplitMix64 mix, reduced to 9 base-62 digits (62⁹ ≈ 1.35e16
//!   values). Two different ids in one conversation colliding is negligible.

use std::borrow::Cow;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `id` if Mistral accepts it as is, else its 9-character hash.
pub fn tool_call_id(id: &str) -> Cow<'_, str> {
    if is_mistral_id(id) {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(hash_id(id))
    }
}

/// Exactly nine ASCII letters or digits.
pub fn is_mistral_id(id: &str) -> bool {
    id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn hash_id(id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    let mut out = [0u8; 9];
    for slot in out.iter_mut() {
        *slot = ALPHABET[(h % 62) as usize];
        h /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_ids_map_to_nine_alphanumerics_deterministically() {
        for id in [
            "call_abc123",
            "toolu_01A09q90qw90lq917835lq9",
            "",
            "x",
            "abcdefgh-",
        ] {
            let a = tool_call_id(id);
            assert!(is_mistral_id(&a), "{id} → {a}");
            assert_eq!(a, tool_call_id(id));
        }
        assert_ne!(tool_call_id("call_1"), tool_call_id("call_2"));
    }

    #[test]
    fn mistral_ids_are_kept() {
        assert_eq!(tool_call_id("D681PevKs"), Cow::Borrowed("D681PevKs"));
        // Nine characters but not alphanumeric, or ten alphanumerics: hashed.
        assert_ne!(tool_call_id("abc_defgh"), "abc_defgh");
        assert_ne!(tool_call_id("abcdefghij"), "abcdefghij");
    }
}
