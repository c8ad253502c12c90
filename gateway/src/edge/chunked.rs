//! Chunked body framing (RFC 9112 §7.1), checked strictly as the bytes pass: a chunk-size
//! line is hex digits (at most 16), optional extensions, and CRLF; each chunk's data ends with
//! CRLF; the last chunk is followed by trailer lines and an empty line. The scanner finds
//! where the body ends, so the next request's bytes are never handed out with it, and it
//! refuses what another parser could read differently (bare LF, a size that overflows, junk
//! after the data).

/// The longest chunk-size line (size, extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// The most bytes of trailer fields accepted.
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Hex digits of the size; `digits` so far.
    Size {
        digits: u8,
    },
    /// After the size: optional whitespace, then `;` and extensions, or CR.
    AfterSize,
    /// The name of an extension after `;` (`empty` until its first character).
    ExtensionName {
        empty: bool,
    },
    /// Inside the extensions, until CR.
    Extension,
    /// Expecting the LF of a size line.
    SizeLf,
    /// Inside a chunk's data.
    Data,
    /// Expecting CR after the data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    TrailerLf {
        empty: bool,
    },
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkScanner {
    state: State,
    size: u64,
    /// Whitespace came after the size digits.
    spaced: bool,
    line: usize,
    trailers: usize,
    /// A trailer line has had its colon.
    colon: bool,
}

/// What scanning a slice found.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned {
    /// All these bytes belong to the body, which goes on.
    More(usize),
    /// The body ends after this many bytes of the slice.
    Done(usize),
    Invalid(&'static str),
}

impl Default for ChunkScanner {
    fn default() -> Self {
        ChunkScanner {
            state: State::Size { digits: 0 },
            size: 0,
            spaced: false,
            line: 0,
            trailers: 0,
            colon: false,
        }
    }
}

impl ChunkScanner {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scans `bytes` (the next bytes of the body).
    pub fn scan(&mut self, bytes: &[u8]) -> Scanned {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                State::Size { digits } => match hex(b) {
                    Some(d) => {
                        if digits >= 16 {
                            return Scanned::Invalid("chunk size too long");
                        }
                        self.size = (self.size << 4) | u64::from(d);
                        self.state = State::Size { digits: digits + 1 };
                        self.line += 1;
                    }
                    None if digits == 0 => return Scanned::Invalid("chunk size is not hex"),
                    None => {
                        self.state = State::AfterSize;
                        continue;
                    }
                },
                State::AfterSize => {
                    // Whitespace only before an extension (`BWS ";"`), never before CRLF.
                    self.line += 1;
                    match b {
                        b'\r' if !self.spaced => self.state = State::SizeLf,
                        b' ' | b'\t' => self.spaced = true,
                        b';' => self.state = State::ExtensionName { empty: true },
                        _ => return Scanned::Invalid("junk after a chunk size"),
                    }
                }
                State::ExtensionName { empty } => {
                    self.line += 1;
                    match b {
                        b if crate::edge::is_tchar(b) => {
                            self.state = State::ExtensionName { empty: false };
                        }
                        b' ' | b'\t' if empty => {}
                        _ if empty => return Scanned::Invalid("a chunk extension without a name"),
                        _ => {
                            self.state = State::Extension;
                            continue;
                        }
                    }
                }
                State::Extension => {
                    self.line += 1;
                    if self.line > MAX_SIZE_LINE {
                        return Scanned::Invalid("chunk-size line too long");
                    }
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        b'\n' => return Scanned::Invalid("bare LF in a chunk-size line"),
                        b';' => self.state = State::ExtensionName { empty: true },
                        b'\t' | b' '..=b'~' | 0x80..=0xff => {}
                        _ => return Scanned::Invalid("control byte in a chunk extension"),
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Scanned::Invalid("CR without LF in a chunk-size line");
                    }
                    self.line = 0;
                    self.spaced = false;
                    self.state = if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    };
                }
                State::Data => {
                    let take =
                        (bytes.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Scanned::Invalid("chunk data longer than its size");
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Scanned::Invalid("CR without LF after chunk data");
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::TrailerStart => match b {
                    b'\r' => self.state = State::TrailerLf { empty: true },
                    b'\n' => return Scanned::Invalid("bare LF in the trailer section"),
                    b' ' | b'\t' => return Scanned::Invalid("obsolete line folding in a trailer"),
                    b if crate::edge::is_tchar(b) => {
                        self.colon = false;
                        self.state = State::Trailer;
                        continue;
                    }
                    _ => return Scanned::Invalid("a trailer line without a field name"),
                },
                State::Trailer => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Scanned::Invalid("trailer section too large");
                    }
                    match b {
                        b'\r' if !self.colon => {
                            return Scanned::Invalid("a trailer line without a colon")
                        }
                        b'\r' => self.state = State::TrailerLf { empty: false },
                        b':' => self.colon = true,
                        b' ' | b'\t' if !self.colon => {
                            return Scanned::Invalid("whitespace in a trailer field name")
                        }
                        b if !self.colon && !crate::edge::is_tchar(b) => {
                            return Scanned::Invalid("a bad trailer field name")
                        }
                        b'\n' => return Scanned::Invalid("bare LF in the trailer section"),
                        0..=8 | 10..=31 | 127 => {
                            return Scanned::Invalid("control byte in a trailer")
                        }
                        _ => {}
                    }
                }
                State::TrailerLf { empty } => {
                    if b != b'\n' {
                        return Scanned::Invalid("CR without LF in the trailer section");
                    }
                    if empty {
                        self.state = State::Done;
                        return Scanned::Done(i + 1);
                    }
                    self.state = State::TrailerStart;
                }
                State::Done => return Scanned::Done(i),
            }
            i += 1;
        }
        Scanned::More(bytes.len())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(body: &[u8]) -> Scanned {
        ChunkScanner::default().scan(body)
    }

    #[test]
    fn finds_the_end_of_a_chunked_body() {
        let body = b"5\r\nhello\r\n3 ;ext=1;b\r\nabc\r\n0\r\n\r\nGET /next";
        assert_eq!(whole(body), Scanned::Done(body.len() - 9));
        let with_trailer = b"1\r\nx\r\n0\r\nX-Sum: 1\r\n\r\n";
        assert_eq!(whole(with_trailer), Scanned::Done(with_trailer.len()));
    }

    #[test]
    fn the_same_in_any_pieces() {
        let body = b"a\r\n0123456789\r\n0\r\n\r\n";
        for cut in 1..body.len() {
            let mut s = ChunkScanner::default();
            assert_eq!(s.scan(&body[..cut]), Scanned::More(cut), "cut {cut}");
            assert_eq!(s.scan(&body[cut..]), Scanned::Done(body.len() - cut));
        }
    }

    #[test]
    fn refuses_ambiguous_framing() {
        for bad in [
            &b"zz\r\n"[..],
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"-1\r\n",
            b"11111111111111111\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"0\r\n\n",
            b"0\r\nX: 1\r\n folded\r\n\r\n",
            b"5 \x01\r\n",
            b"5;a=\x01\r\n",
            b"0x5\r\nhello\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"0\r\nGET / HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(whole(bad), Scanned::Invalid(_)),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
