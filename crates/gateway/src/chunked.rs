//! The chunked transfer coding (RFC 9112 section 7.1), decoded step by step out of a read
//! buffer. One decoder for both directions: the server reads request bodies with it
//! ([`crate::connection`]), the upstream client response bodies ([`crate::client`]).
//!
//! It is strict in both: a chunk size is hex digits only, optionally followed by
//! `;extensions`; a chunk's data must be followed by CRLF. A lenient reader on the server
//! side is how request smuggling starts, and an upstream that gets this wrong is broken.

use bytes::{Buf, Bytes, BytesMut};

/// Longest chunk-size or trailer line: a size line is a few bytes, so a long one is not HTTP.
const MAX_LINE: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero) chunk: trailer lines up to an empty one.
    Trailers,
    /// The body has ended.
    Done,
}

/// What one step read.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Data of the body, cut out of the buffer without a copy.
    Data(Bytes),
    /// The buffer holds no more of the body; read more and step again.
    NeedMore,
    /// The last chunk and the trailers have been read.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid chunk size")]
    Size,
    #[error("a chunk is not followed by CRLF")]
    MissingCrlf,
    #[error("a chunk line is too long")]
    LineTooLong,
    #[error("a trailer line holds a bare CR or LF")]
    BareLineEnd,
}

/// Reads from `buf` up to the next piece of data, the end, or the end of what is buffered.
pub fn step(state: &mut State, buf: &mut BytesMut) -> Result<Step, Error> {
    loop {
        match *state {
            State::Size => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Step::NeedMore);
                };
                let size = chunk_size(&line)?;
                *state = if size == 0 {
                    State::Trailers
                } else {
                    State::Data(size)
                };
            }
            State::Data(left) => {
                if buf.is_empty() {
                    return Ok(Step::NeedMore);
                }
                let take = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                let left = left - take as u64;
                *state = if left == 0 {
                    State::DataEnd
                } else {
                    State::Data(left)
                };
                return Ok(Step::Data(buf.split_to(take).freeze()));
            }
            State::DataEnd => {
                if buf.len() < 2 {
                    return Ok(Step::NeedMore);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(Error::MissingCrlf);
                }
                buf.advance(2);
                *state = State::Size;
            }
            State::Trailers => {
                let Some(line) = take_line(buf)? else {
                    return Ok(Step::NeedMore);
                };
                if line.is_empty() {
                    *state = State::Done;
                    return Ok(Step::End);
                }
                // A parser that ends lines at a bare LF would see the trailers end here and
                // the next message begin; refuse rather than read past where it stops.
                if memchr::memchr2(b'\r', b'\n', &line).is_some() {
                    return Err(Error::BareLineEnd);
                }
            }
            State::Done => return Ok(Step::End),
        }
    }
}

/// After a chunk's data: consumes what `buf` already holds of the chunk's CRLF, a following
/// zero-size chunk and an empty trailer, so that the state reads [`State::Done`] when the
/// body's end arrived with its last data. Anything else is left for [`step`] to judge.
pub fn finish_if_here(state: &mut State, buf: &mut BytesMut) {
    if *state == State::DataEnd && buf.starts_with(b"\r\n") {
        buf.advance(2);
        *state = State::Size;
    }
    if *state == State::Size && buf.starts_with(b"0") {
        if let Some(end) = memchr::memmem::find(buf, b"\r\n") {
            if chunk_size(&buf[..end]) == Ok(0) && buf[end + 2..].starts_with(b"\r\n") {
                buf.advance(end + 4);
                *state = State::Done;
            }
        }
    }
}

/// One CRLF-ended line out of the buffer (without its CRLF), if a whole one is there.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, Error> {
    match memchr::memmem::find(buf, b"\r\n") {
        Some(end) => {
            let line = buf.split_to(end).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(Error::LineTooLong),
        None => Ok(None),
    }
}

/// A chunk-size line: hex digits, then optionally spaces or tabs and `;extensions`
/// (ignored). Nothing else: no leading whitespace, no sign, no `0x`, at most 15 digits, and
/// no other whitespace — a bare CR or LF in the line is how two parsers come to disagree on
/// where it ends.
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    let size = match memchr::memchr(b';', line) {
        Some(i) => &line[..i],
        None => line,
    };
    let end = size
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    let digits = &size[..end];
    if digits.is_empty() || digits.len() > 15 {
        return Err(Error::Size);
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let v = (d as char).to_digit(16).ok_or(Error::Size)?;
        Ok(n * 16 + u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(wire: &[u8]) -> Result<(Vec<u8>, State), Error> {
        let mut state = State::Size;
        let mut buf = BytesMut::from(wire);
        let mut body = Vec::new();
        loop {
            match step(&mut state, &mut buf)? {
                Step::Data(d) => body.extend_from_slice(&d),
                Step::NeedMore | Step::End => return Ok((body, state)),
            }
        }
    }

    #[test]
    fn chunk_sizes_are_hex_and_bounded() {
        assert_eq!(chunk_size(b"1a"), Ok(26));
        assert_eq!(chunk_size(b"FF ; name=value"), Ok(255));
        assert_eq!(chunk_size(b"0;x"), Ok(0));
        assert_eq!(
            chunk_size(b"1a \t"),
            Ok(26),
            "trailing spaces and tabs, as hyper allows"
        );
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"0x1",
            b" 1",
            b"\t1",
            b"1 2",
            b"1\n",
            b"1\r;x",
            b"1\x0c",
            b"1234567890abcdef0",
        ] {
            assert_eq!(chunk_size(bad), Err(Error::Size), "{bad:?}");
        }
    }

    #[test]
    fn a_body_decodes_whole_with_extensions_and_trailers() {
        let wire = b"3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let mut state = State::Size;
        let mut buf = BytesMut::from(&wire[..]);
        let mut body = Vec::new();
        loop {
            match step(&mut state, &mut buf).unwrap() {
                Step::Data(d) => body.extend_from_slice(&d),
                Step::End => break,
                Step::NeedMore => panic!("all of it was there"),
            }
        }
        assert_eq!(body, b"abc0123456789abcdef");
        assert_eq!(state, State::Done);
        assert_eq!(
            &buf[..],
            b"NEXT",
            "what follows the body stays in the buffer"
        );
    }

    #[test]
    fn every_split_gives_the_same_body() {
        let wire = b"5\r\nhello\r\n1;e\r\n \r\n6\r\nworld!\r\n0\r\n\r\n";
        for cut in 0..=wire.len() {
            let mut state = State::Size;
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut body = Vec::new();
            let mut ended = false;
            for more in [&wire[cut..], &b""[..]] {
                loop {
                    match step(&mut state, &mut buf).unwrap() {
                        Step::Data(d) => body.extend_from_slice(&d),
                        Step::End => {
                            ended = true;
                            break;
                        }
                        Step::NeedMore => break,
                    }
                }
                buf.extend_from_slice(more);
            }
            assert!(ended, "cut at {cut}");
            assert_eq!(body, b"hello world!", "cut at {cut}");
        }
    }

    #[test]
    fn broken_framing_is_an_error() {
        assert_eq!(decode_all(b"3\r\nabcX\r\n"), Err(Error::MissingCrlf));
        assert_eq!(decode_all(b"zz\r\n"), Err(Error::Size));
        assert_eq!(
            decode_all(b"0\r\nx-t: 1\n\r\nGET / HTTP/1.1\r\n\r\n"),
            Err(Error::BareLineEnd)
        );
        let long = vec![b'1'; MAX_LINE + 1];
        assert_eq!(decode_all(&long), Err(Error::LineTooLong));
    }

    #[test]
    fn the_end_is_seen_with_the_last_data_when_it_is_buffered() {
        let mut state = State::Size;
        let mut buf = BytesMut::from(&b"2\r\nhi\r\n0\r\n\r\n"[..]);
        assert_eq!(
            step(&mut state, &mut buf),
            Ok(Step::Data(Bytes::from_static(b"hi")))
        );
        finish_if_here(&mut state, &mut buf);
        assert_eq!(state, State::Done);
        assert!(buf.is_empty());

        // Not all here yet: nothing is consumed beyond what is certain.
        let mut state = State::Size;
        let mut buf = BytesMut::from(&b"2\r\nhi\r\n0\r\n"[..]);
        step(&mut state, &mut buf).unwrap();
        finish_if_here(&mut state, &mut buf);
        assert_eq!(state, State::Size);
        assert_eq!(&buf[..], b"0\r\n");
    }
}
