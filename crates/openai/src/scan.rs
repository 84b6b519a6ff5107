//! A one-pass JSON scanner for the quick readers ([`crate::forward`]'s answer check and
//! [`crate::parse`]'s request reader).
//!
//! Both readers answer "certainly this" or "not sure", and a serde reader decides whatever
//! they are not sure of. So the scanner follows only the JSON it can read without doubt:
//! a `\\u` escape, a number with an exponent, deep nesting or anything malformed is "not
//! sure" (`None`), never an error of its own.
//!
//! It reads bytes, not `&str`: outside strings it takes only ASCII, and every string's
//! contents are checked to be UTF-8 as they are read, so a body it reads to the end is valid
//! UTF-8 without a separate pass over the whole of it (that pass was 5 % of the plain route's
//! instructions).

/// `None` everywhere below means "not sure".
pub(crate) type Sure<T> = Option<T>;

/// Nesting a skipped value may add. serde_json stops at 128 levels in all; our own shape is
/// at most 7 deep, so this keeps every body we accept well inside its limit.
const MAX_SKIP_DEPTH: u32 = 64;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of the little-endian word `w` that end a plain run of string contents, each
/// flagged by its high bit: `"`, `\\`, a control character and, while `ascii`, any byte of
/// 0x80 and up. The classic "has a zero byte" and "has a byte below n" tests flag their first
/// match exactly (false flags appear only above a true one), so the lowest flag is the first
/// such byte.
#[inline(always)]
fn stops(w: u64, ascii: bool) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let below_space = w.wrapping_sub(ONES * 0x20);
    // `below_space` also flags bytes of 0xa0 and up; they are either wanted or masked out.
    let other = if ascii {
        below_space | w
    } else {
        below_space & !w
    };
    ((quote.wrapping_sub(ONES) & !quote) | (backslash.wrapping_sub(ONES) & !backslash) | other)
        & HIGHS
}

/// Where the first byte [`stops`] flags is in `bytes`, at or after `from`. Eight bytes per
/// step: a byte-at-a-time search spent more than half of the scanner's time in string
/// contents. Without `ascii` these are also exactly the bytes serde_json escapes.
#[inline(always)]
pub(crate) fn stop_at(bytes: &[u8], from: usize, ascii: bool) -> Option<usize> {
    let mut at = from;
    while let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let found = stops(u64::from_le_bytes(*word), ascii);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes
        .get(at..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20 || (ascii && c >= 0x80))
        .map(|j| at + j)
}

pub(crate) struct Scan<'a> {
    b: &'a [u8],
    pub(crate) i: usize,
}

/// Marks field `bit` as seen; a second sighting is a duplicate key, which serde rejects.
pub(crate) fn once(seen: &mut u32, bit: u32) -> Sure<()> {
    let mask = 1 << bit;
    if *seen & mask != 0 {
        return None;
    }
    *seen |= mask;
    Some(())
}

impl<'a> Scan<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Scan { b: bytes, i: 0 }
    }

    pub(crate) fn ws(&mut self) {
        // Compact JSON has none: one test for the common case.
        if self.b.get(self.i).is_some_and(|&c| c > b' ') {
            return;
        }
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    pub(crate) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    /// The next byte that is not whitespace, left unread.
    #[inline(always)]
    pub(crate) fn peek(&mut self) -> Sure<u8> {
        // Compact JSON has no whitespace: one load and one test for the common case.
        match self.b.get(self.i) {
            Some(&c) if c > b' ' => Some(c),
            _ => {
                self.ws();
                self.b.get(self.i).copied()
            }
        }
    }

    pub(crate) fn eat(&mut self, c: u8) -> Sure<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    pub(crate) fn literal(&mut self, word: &[u8]) -> Sure<()> {
        self.ws();
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A string with at most the one-letter escapes; its raw bytes (between the quotes; valid
    /// UTF-8) and whether it had an escape. Inlined for its common case, plain ASCII read a
    /// word at a time: a call per string cost more than the search (most are short keys).
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Sure<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let at = stop_at(self.b, start, true)?;
        if self.b.get(at) == Some(&b'"') {
            self.i = at + 1;
            return Some((self.b.get(start..at)?, false));
        }
        self.string_rest(start, at)
    }

    /// [`Self::string`] from its first stop that is not the closing quote (`start..at` is
    /// plain ASCII): escapes and other UTF-8.
    #[inline(never)]
    fn string_rest(&mut self, start: usize, mut at: usize) -> Sure<(&'a [u8], bool)> {
        let mut escaped = false;
        let mut ascii = true;
        loop {
            at = stop_at(self.b, at, ascii)?;
            match *self.b.get(at)? {
                b'"' => break,
                b'\\' => match self.b.get(at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                        escaped = true;
                        at += 2;
                    }
                    // `\u`: surrogate rules differ between serde_json's parse and skip paths.
                    _ => return None,
                },
                // From here on only the three stops: the contents are checked as UTF-8 once,
                // at the end.
                0x80.. => ascii = false,
                // A raw control character: invalid JSON.
                _ => return None,
            }
        }
        let raw = self.b.get(start..at)?;
        if !ascii {
            std::str::from_utf8(raw).ok()?;
        }
        self.i = at + 1;
        Some((raw, escaped))
    }

    /// A string whose value is compared as written: serde borrows these (`&str`) and fails
    /// on an escaped one, so an escape is "not sure".
    #[inline(always)]
    pub(crate) fn word(&mut self) -> Sure<&'a [u8]> {
        match self.string()? {
            (raw, false) => Some(raw),
            (_, true) => None,
        }
    }

    /// A text field serde checks as a string (`Str`); whether it was empty.
    #[inline(always)]
    pub(crate) fn text(&mut self) -> Sure<bool> {
        self.string().map(|(raw, _)| raw.is_empty())
    }

    /// `null`, or what `then` reads.
    pub(crate) fn null_or<T>(
        &mut self,
        then: impl FnOnce(&mut Self) -> Sure<T>,
    ) -> Sure<Option<T>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(None)
        } else {
            then(self).map(Some)
        }
    }

    /// An unsigned integer in plain digits (what serde reads as a `u64` without doubt). 19
    /// digits always fit; longer ones are left to serde. Inlined, and the digits walked as a
    /// slice: five of these per answer cost more than a string each.
    #[inline(always)]
    pub(crate) fn u64(&mut self) -> Sure<u64> {
        self.peek()?;
        let digits = self.b.get(self.i..)?;
        let mut n: u64 = 0;
        let mut len = 0;
        for &c in digits {
            let digit = c.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
            len += 1;
        }
        self.i += len;
        // A leading zero ("01") is invalid JSON; a fraction or exponent is a float to serde.
        if len == 0 || len > 19 || (len > 1 && digits.first() == Some(&b'0')) {
            return None;
        }
        match digits.get(len) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(n),
        }
    }

    /// An object: `field` is called with each key, positioned at its value, and must read
    /// the value. Keys with escapes are "not sure" (serde matches them after unescaping).
    pub(crate) fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, &'a [u8]) -> Sure<()>,
    ) -> Sure<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.word()?;
            self.eat(b':')?;
            field(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Sure<()>) -> Sure<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Any JSON value, checked and dropped (serde's `IgnoredAny` and unknown fields).
    pub(crate) fn skip(&mut self, depth: u32) -> Sure<()> {
        if depth > MAX_SKIP_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => self.array(|s| s.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' => {
                self.i += 1;
                self.number()
            }
            b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// The rest of a number after any sign: digits, then an optional fraction. Exponents are
    /// "not sure".
    pub(crate) fn number(&mut self) -> Sure<()> {
        let digits = |s: &mut Self| {
            let start = s.i;
            while s.b.get(s.i).is_some_and(u8::is_ascii_digit) {
                s.i += 1;
            }
            s.i - start
        };
        let first = *self.b.get(self.i)?;
        let n = digits(self);
        if n == 0 || (first == b'0' && n > 1) {
            return None;
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        match self.b.get(self.i) {
            Some(b'e' | b'E') => None,
            _ => Some(()),
        }
    }

    pub(crate) fn u32(&mut self) -> Sure<u32> {
        u32::try_from(self.u64()?).ok()
    }

    /// A string's text, unescaped: what serde reads into a `String`.
    pub(crate) fn owned(&mut self) -> Sure<String> {
        let (raw, escaped) = self.string()?;
        // Already checked as UTF-8 by `string`; this gives the `&str`.
        let text = std::str::from_utf8(raw).ok()?;
        if escaped {
            unescape(text)
        } else {
            Some(text.to_owned())
        }
    }

    /// `true` or `false`.
    pub(crate) fn bool(&mut self) -> Sure<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// An integer serde reads into an `i64` without doubt. `-0` is not one: serde_json
    /// reads it as a float.
    pub(crate) fn i64(&mut self) -> Sure<i64> {
        let negative = self.peek()? == b'-';
        if negative {
            self.i += 1;
            // `u64` would skip whitespace after the sign.
            if !self.b.get(self.i)?.is_ascii_digit() {
                return None;
            }
        }
        let digits_from = self.i;
        let n = self.u64()?;
        // 18 digits always fit; longer ones are left to serde.
        if self.i - digits_from > 18 || (negative && n == 0) {
            return None;
        }
        let n = i64::try_from(n).ok()?;
        Some(if negative { -n } else { n })
    }

    /// A number serde reads into an `f64`, when the value is certain: no exponent and at
    /// most 15 digits in all. The value is then an integer below 2^53 divided by a power of
    /// ten, both exact in an `f64`, so one correctly rounded division gives it, as every
    /// path of serde_json's float parsing does.
    pub(crate) fn f64(&mut self) -> Sure<f64> {
        const POW10: [f64; 16] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
        ];
        let negative = self.peek()? == b'-';
        if negative {
            self.i += 1;
        }
        let first = *self.b.get(self.i)?;
        let mut significand: u64 = 0;
        let mut digits = 0usize;
        let mut fraction = 0usize;
        let mut in_fraction = false;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'0'..=b'9' => {
                    significand = significand * 10 + u64::from(c - b'0');
                    digits += 1;
                    if in_fraction {
                        fraction += 1;
                    }
                    if digits > 15 {
                        return None;
                    }
                }
                b'.' if !in_fraction && digits > 0 => in_fraction = true,
                _ => break,
            }
            self.i += 1;
        }
        let integer_digits = digits - fraction;
        if integer_digits == 0
            || (first == b'0' && integer_digits > 1)
            || (in_fraction && fraction == 0)
        {
            return None;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            return None;
        }
        // serde_json reads `-0` as -0.0 too, so the sign is simply applied.
        let magnitude = significand as f64 / POW10[fraction];
        Some(if negative { -magnitude } else { magnitude })
    }
}

/// `text` with its one-letter escapes replaced (the scanner refuses any other escape).
fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(rest.get(..at)?);
        out.push(match rest.as_bytes().get(at + 1)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => return None,
        });
        rest = rest.get(at + 2..)?;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{stop_at, Scan};

    /// Against a byte-at-a-time search, at every alignment, with UTF-8 around, in both modes.
    #[test]
    fn stop_at_finds_the_first_stop() {
        for ascii in [true, false] {
            let is_stop = |c: u8| c == b'"' || c == b'\\' || c < 0x20 || (ascii && c >= 0x80);
            let naive = |b: &[u8]| b.iter().position(|&c| is_stop(c));
            let fillers: [&[u8]; 3] = [b"abcdefgh", "é€😀x".as_bytes(), b"\x7f ~!#$%&"];
            for special in [b'"', b'\\', 0x00, 0x1f, b'\n', 0x80, 0xff] {
                for filler in fillers {
                    for before in 0..20 {
                        for after in 0..10 {
                            let mut bytes: Vec<u8> =
                                filler.iter().cycle().take(before).copied().collect();
                            bytes.push(special);
                            bytes.extend(filler.iter().cycle().take(after));
                            // A second stop later must not be reported instead.
                            bytes.push(b'"');
                            assert_eq!(stop_at(&bytes, 0, ascii), naive(&bytes), "{bytes:?}");
                            // From inside the buffer: the index is the buffer's.
                            let skip = before.min(3);
                            assert_eq!(
                                stop_at(&bytes, skip, ascii),
                                naive(&bytes[skip..]).map(|j| j + skip),
                                "{bytes:?}"
                            );
                        }
                    }
                    let plain: Vec<u8> = filler.iter().cycle().take(40).copied().collect();
                    assert_eq!(stop_at(&plain, 0, ascii), naive(&plain), "{plain:?}");
                }
            }
        }
    }

    /// Strings of every length up to past two words, at every offset from the buffer's end,
    /// with and without escapes and non-ASCII text: the same contents as serde_json reads,
    /// and "not sure" for every broken one.
    #[test]
    fn strings_read_as_serde_reads_them() {
        let contents = [
            "",
            "a",
            "id",
            "content",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
            "é",
            "aé",
            "abcdefgé",
            "😀😀😀",
            "a\\\"b",
            "\\n",
            "abcdefg\\t",
            "x\\/y",
            "日本語のテキスト",
        ];
        for content in contents {
            for tail in ["", ",", "}      ", ":1}             "] {
                let body = format!("\"{content}\"{tail}");
                let want: String = serde_json::Deserializer::from_str(&body)
                    .into_iter()
                    .next()
                    .unwrap()
                    .unwrap();
                let mut s = Scan::new(body.as_bytes());
                assert_eq!(s.owned().as_deref(), Some(want.as_str()), "{body}");
                assert_eq!(s.i, content.len() + 2, "{body}");
            }
        }
        let broken: [&[u8]; 8] = [
            b"\"abc",
            b"\"a\nb\"",
            b"\"abcdefgh\x01\"",
            b"\"\\u0041\"",
            b"\"\\x\"",
            b"\"\xff\"",
            b"\"abcdefghij\xc3\"",
            b"\"abc\xe2\x82\"xxxxxxxx",
        ];
        for body in broken {
            assert_eq!(Scan::new(body).string(), None, "{body:?}");
        }
    }
}
