//! The common case of [`super::forwardable`], decided in one pass over the bytes.
//!
//! The serde check reads the body through serde_json's general machinery: a visitor per
//! struct, field names matched as strings, an allocation for the choices. On the gateway's
//! plain route that was the largest single item of user time per request (about 7k
//! instructions for a 400-byte answer). This scanner reads the same shape directly.
//!
//! It answers only "certainly forwardable" or "not sure". Whenever it answers yes, the serde
//! check would too (the tests hold it to that over every fixture, every broken variant and
//! random byte edits); anything it does not follow exactly — a `\u` escape, a number with
//! an exponent or a sign, a repeated key, an escaped key or enum word, deep nesting, any
//! value of an unexpected type — makes it say "not sure", and the serde check decides.

/// True only when [`super::checked`] would be true for the same text.
pub(super) fn sure(text: &str) -> bool {
    let mut s = Scan {
        b: text.as_bytes(),
        i: 0,
    };
    s.completion().is_some() && s.at_end()
}

/// `None` everywhere below means "not sure".
type Sure<T> = Option<T>;

/// Nesting a skipped value may add. serde_json stops at 128 levels in all; our own shape is
/// at most 7 deep, so this keeps every body we accept well inside its limit.
const MAX_SKIP_DEPTH: u32 = 64;

/// Where the first `"`, `\\` or control character in `bytes` is. Eight bytes per step: a
/// byte-at-a-time search spent more than half of the scanner's time in string contents.
fn special_at(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        let w = u64::from_le_bytes(le);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // The classic "has a zero byte" and "has a byte below n" tests. Each flags its first
        // match exactly (false flags appear only above a true one), and bytes of 0x80 and up
        // (UTF-8 sequences) never flag, so the lowest flag is the first special byte.
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGHS;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|j| at + j)
}

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

/// Marks field `bit` as seen; a second sighting is a duplicate key, which serde rejects.
fn once(seen: &mut u32, bit: u32) -> Sure<()> {
    let mask = 1 << bit;
    if *seen & mask != 0 {
        return None;
    }
    *seen |= mask;
    Some(())
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    fn peek(&mut self) -> Sure<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Sure<()> {
        if self.peek()? == c {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    fn literal(&mut self, word: &[u8]) -> Sure<()> {
        self.ws();
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A string with at most the one-letter escapes; its raw bytes (between the quotes) and
    /// whether it had an escape.
    fn string(&mut self) -> Sure<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            self.i += special_at(self.b.get(self.i..)?)?;
            match self.b[self.i] {
                b'"' => {
                    let raw = &self.b[start..self.i];
                    self.i += 1;
                    return Some((raw, escaped));
                }
                b'\\' => match self.b.get(self.i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                        escaped = true;
                        self.i += 2;
                    }
                    // `\u`: surrogate rules differ between serde_json's parse and skip paths.
                    _ => return None,
                },
                // A raw control character: invalid JSON.
                _ => return None,
            }
        }
    }

    /// A string whose value is compared as written: serde borrows these (`&str`) and fails
    /// on an escaped one, so an escape is "not sure".
    fn word(&mut self) -> Sure<&'a [u8]> {
        match self.string()? {
            (raw, false) => Some(raw),
            (_, true) => None,
        }
    }

    /// A text field serde checks as a string (`Str`); whether it was empty.
    fn text(&mut self) -> Sure<bool> {
        self.string().map(|(raw, _)| raw.is_empty())
    }

    /// `null`, or what `then` reads.
    fn null_or<T>(&mut self, then: impl FnOnce(&mut Self) -> Sure<T>) -> Sure<Option<T>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(None)
        } else {
            then(self).map(Some)
        }
    }

    /// An unsigned integer in plain digits (what serde reads as a `u64` without doubt).
    fn u64(&mut self) -> Sure<u64> {
        self.ws();
        let first = *self.b.get(self.i)?;
        if !first.is_ascii_digit() {
            return None;
        }
        let mut n: u64 = 0;
        let start = self.i;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        // A leading zero ("01") is invalid JSON; a fraction or exponent is a float to serde.
        if first == b'0' && self.i - start > 1 {
            return None;
        }
        match self.b.get(self.i) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(n),
        }
    }

    /// An object: `field` is called with each key, positioned at its value, and must read
    /// the value. Keys with escapes are "not sure" (serde matches them after unescaping).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Sure<()>) -> Sure<()> {
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

    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Sure<()>) -> Sure<()> {
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
    fn skip(&mut self, depth: u32) -> Sure<()> {
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
    fn number(&mut self) -> Sure<()> {
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

    /// `forward::Completion` and its `forwardable` conditions.
    fn completion(&mut self) -> Sure<()> {
        let mut seen = 0;
        let (mut id, mut object, mut created, mut model, mut choices) =
            (false, false, false, false, false);
        self.object(|s, key| {
            match key {
                b"id" => {
                    once(&mut seen, 0)?;
                    id = !s.text()?;
                }
                b"object" => {
                    once(&mut seen, 1)?;
                    object = s.word()? == b"chat.completion";
                }
                b"created" => {
                    once(&mut seen, 2)?;
                    created = s.u64()? != 0;
                }
                b"model" => {
                    once(&mut seen, 3)?;
                    s.text()?;
                    model = true;
                }
                b"choices" => {
                    once(&mut seen, 4)?;
                    s.array(Self::choice)?;
                    choices = true;
                }
                b"usage" => {
                    once(&mut seen, 5)?;
                    s.null_or(Self::usage)?;
                }
                b"system_fingerprint" => {
                    once(&mut seen, 6)?;
                    s.null_or(Self::text)?;
                }
                b"service_tier" => {
                    once(&mut seen, 7)?;
                    s.null_or(Self::text)?;
                }
                _ => s.skip(1)?,
            }
            Some(())
        })?;
        (id && object && created && model && choices).then_some(())
    }

    /// `forward::Choice`: an index, a message, a finish reason written as read.
    fn choice(&mut self) -> Sure<()> {
        let mut seen = 0;
        let (mut index, mut message, mut finish) = (false, false, false);
        self.object(|s, key| {
            match key {
                b"index" => {
                    once(&mut seen, 0)?;
                    index = s.u64()? <= u64::from(u32::MAX);
                }
                b"message" => {
                    once(&mut seen, 1)?;
                    s.message()?;
                    message = true;
                }
                b"finish_reason" => {
                    once(&mut seen, 2)?;
                    finish = matches!(
                        s.word()?,
                        b"stop" | b"length" | b"tool_calls" | b"content_filter"
                    );
                }
                b"logprobs" => {
                    once(&mut seen, 3)?;
                    s.skip(3)?;
                }
                _ => s.skip(3)?,
            }
            Some(())
        })?;
        (index && message && finish).then_some(())
    }

    /// `forward::Message`: the assistant's, with tool calls the encoder would write as read.
    fn message(&mut self) -> Sure<()> {
        let mut seen = 0;
        let mut role = false;
        self.object(|s, key| {
            match key {
                b"role" => {
                    once(&mut seen, 0)?;
                    role = s.word()? == b"assistant";
                }
                b"content" => {
                    once(&mut seen, 1)?;
                    s.null_or(Self::text)?;
                }
                b"refusal" => {
                    once(&mut seen, 2)?;
                    s.null_or(Self::text)?;
                }
                b"tool_calls" => {
                    once(&mut seen, 3)?;
                    s.null_or(|s| s.array(Self::tool_call))?;
                }
                b"reasoning_content" => {
                    once(&mut seen, 4)?;
                    s.null_or(Self::text)?;
                }
                b"function_call" => {
                    // Anything but null is the legacy form, which takes the canonical path.
                    once(&mut seen, 5)?;
                    s.literal(b"null")?;
                }
                _ => s.skip(4)?,
            }
            Some(())
        })?;
        role.then_some(())
    }

    /// `forward::ToolCall` with a `function` type and arguments.
    fn tool_call(&mut self) -> Sure<()> {
        let mut seen = 0;
        let (mut id, mut kind, mut function) = (false, false, false);
        self.object(|s, key| {
            match key {
                b"id" => {
                    once(&mut seen, 0)?;
                    s.text()?;
                    id = true;
                }
                b"type" => {
                    once(&mut seen, 1)?;
                    kind = s.word()? == b"function";
                }
                b"function" => {
                    once(&mut seen, 2)?;
                    s.function()?;
                    function = true;
                }
                _ => s.skip(6)?,
            }
            Some(())
        })?;
        (id && kind && function).then_some(())
    }

    /// `forward::Function` with its arguments present.
    fn function(&mut self) -> Sure<()> {
        let mut seen = 0;
        let (mut name, mut arguments) = (false, false);
        self.object(|s, key| {
            match key {
                b"name" => {
                    once(&mut seen, 0)?;
                    s.text()?;
                    name = true;
                }
                b"arguments" => {
                    once(&mut seen, 1)?;
                    s.text()?;
                    arguments = true;
                }
                _ => s.skip(7)?,
            }
            Some(())
        })?;
        (name && arguments).then_some(())
    }

    /// `forward::Usage`: the three counts, a total the encoder would not fill in.
    fn usage(&mut self) -> Sure<()> {
        let mut seen = 0;
        let (mut prompt, mut completion, mut total) = (None, None, None);
        self.object(|s, key| {
            match key {
                b"prompt_tokens" => {
                    once(&mut seen, 0)?;
                    prompt = Some(s.u64()?);
                }
                b"completion_tokens" => {
                    once(&mut seen, 1)?;
                    completion = Some(s.u64()?);
                }
                b"total_tokens" => {
                    once(&mut seen, 2)?;
                    total = Some(s.u64()?);
                }
                b"prompt_tokens_details" => {
                    once(&mut seen, 3)?;
                    s.null_or(|s| {
                        s.counts(&[b"cached_tokens", b"audio_tokens", b"cache_write_tokens"])
                    })?;
                }
                b"completion_tokens_details" => {
                    once(&mut seen, 4)?;
                    s.null_or(|s| {
                        s.counts(&[
                            b"reasoning_tokens",
                            b"audio_tokens",
                            b"accepted_prediction_tokens",
                            b"rejected_prediction_tokens",
                        ])
                    })?;
                }
                _ => s.skip(2)?,
            }
            Some(())
        })?;
        let (prompt, completion, total) = (prompt?, completion?, total?);
        super::usage_forwardable(prompt, completion, total).then_some(())
    }

    /// An object whose `known` fields are optional counts (`wire::PromptTokensDetails`,
    /// `wire::CompletionTokensDetails`).
    fn counts(&mut self, known: &[&[u8]]) -> Sure<()> {
        let mut seen = 0;
        self.object(|s, key| {
            match known.iter().position(|k| *k == key) {
                Some(bit) => {
                    once(&mut seen, u32::try_from(bit).ok()?)?;
                    s.null_or(Self::u64)?;
                }
                None => s.skip(3)?,
            }
            Some(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::special_at;

    /// Against the byte-at-a-time search, at every alignment, with UTF-8 around.
    #[test]
    fn special_at_finds_the_first_special_byte() {
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let fillers: [&[u8]; 3] = [b"abcdefgh", "é€😀x".as_bytes(), b"\x7f ~!#$%&"];
        for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
            for filler in fillers {
                for before in 0..20 {
                    for after in 0..10 {
                        let mut bytes: Vec<u8> =
                            filler.iter().cycle().take(before).copied().collect();
                        bytes.push(special);
                        bytes.extend(filler.iter().cycle().take(after));
                        // A second special byte later must not be reported instead.
                        bytes.push(b'"');
                        assert_eq!(special_at(&bytes), naive(&bytes), "{bytes:?}");
                    }
                }
                let plain: Vec<u8> = filler.iter().cycle().take(40).copied().collect();
                assert_eq!(special_at(&plain), None);
            }
        }
    }
}
