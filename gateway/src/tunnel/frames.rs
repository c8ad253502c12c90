//! Just enough of RFC 6455 framing to find frame boundaries in a byte stream, so that a close
//! frame can be put between two frames (never inside one), and to build that close frame.
//! Payloads are never decoded or copied.

/// Follows one direction of a WebSocket byte stream frame by frame. Serializable so that a
/// tunnel handed to another process resumes mid-frame exactly where it stopped.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameTracker {
    header: [u8; 14],
    header_have: usize,
    /// Payload bytes still to come of the current frame; meaningful once the header is whole.
    payload_left: u64,
    in_payload: bool,
}

impl FrameTracker {
    /// True between frames: a control frame may be written now.
    pub fn at_boundary(&self) -> bool {
        self.header_have == 0 && !self.in_payload
    }

    /// Follows `data`. Returns the offset just past the first frame end inside `data`
    /// (`Some(0)` when already between frames), or `None` when `data` ends inside a frame.
    /// Everything in `data` is accounted for either way.
    pub fn feed(&mut self, data: &[u8]) -> Option<usize> {
        let mut first_boundary = self.at_boundary().then_some(0);
        let mut i = 0;
        while i < data.len() {
            if self.in_payload {
                let take = (self.payload_left).min((data.len() - i) as u64) as usize;
                i += take;
                self.payload_left -= take as u64;
                if self.payload_left == 0 {
                    self.in_payload = false;
                    first_boundary.get_or_insert(i);
                }
                continue;
            }
            self.header[self.header_have] = data[i];
            self.header_have += 1;
            i += 1;
            if let Some(len) = self.header_complete() {
                self.header_have = 0;
                if len == 0 {
                    first_boundary.get_or_insert(i);
                } else {
                    self.in_payload = true;
                    self.payload_left = len;
                }
            }
        }
        first_boundary
    }

    /// The payload length once the header bytes gathered so far make a whole header.
    fn header_complete(&self) -> Option<u64> {
        let h = &self.header[..self.header_have];
        if h.len() < 2 {
            return None;
        }
        let masked = h[1] & 0x80 != 0;
        let len7 = h[1] & 0x7f;
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let need = 2 + ext + if masked { 4 } else { 0 };
        if h.len() < need {
            return None;
        }
        Some(match len7 {
            126 => u16::from_be_bytes([h[2], h[3]]) as u64,
            127 => u64::from_be_bytes(h[2..10].try_into().expect("8 bytes")),
            n => n as u64,
        })
    }
}

/// A close frame with `code` and a short reason. `mask` is set for frames the gateway sends
/// to the upstream (it acts as the client there, and clients must mask).
pub fn close_frame(code: u16, reason: &str, mask: Option<[u8; 4]>) -> Vec<u8> {
    let reason = &reason.as_bytes()[..reason.len().min(123)];
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason);
    let mut frame = Vec::with_capacity(6 + payload.len());
    frame.push(0x88); // FIN + opcode 8 (close)
    match mask {
        None => {
            frame.push(payload.len() as u8);
            frame.extend_from_slice(&payload);
        }
        Some(key) => {
            frame.push(0x80 | payload.len() as u8);
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
    }
    frame
}

/// The close code of a frame built by [`close_frame`] or any unmasked close frame.
pub fn close_code(frame: &[u8]) -> Option<u16> {
    if frame.len() >= 4 && frame[0] & 0x0f == 8 && frame[1] & 0x80 == 0 {
        Some(u16::from_be_bytes([frame[2], frame[3]]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload_len: usize, masked: bool) -> Vec<u8> {
        let mut f = vec![0x82];
        let m = if masked { 0x80 } else { 0 };
        if payload_len < 126 {
            f.push(m | payload_len as u8);
        } else if payload_len <= u16::MAX as usize {
            f.push(m | 126);
            f.extend_from_slice(&(payload_len as u16).to_be_bytes());
        } else {
            f.push(m | 127);
            f.extend_from_slice(&(payload_len as u64).to_be_bytes());
        }
        if masked {
            f.extend_from_slice(&[1, 2, 3, 4]);
        }
        f.extend(std::iter::repeat_n(7u8, payload_len));
        f
    }

    #[test]
    fn finds_boundaries_in_any_split() {
        let mut stream = Vec::new();
        let sizes = [0usize, 5, 125, 126, 300, 70_000];
        let mut ends = Vec::new();
        for (i, s) in sizes.iter().enumerate() {
            stream.extend(frame(*s, i % 2 == 0));
            ends.push(stream.len());
        }
        for chunk in [1usize, 2, 3, 7, 64, 1000, stream.len()] {
            let mut t = FrameTracker::default();
            let mut reported = Vec::new();
            for (k, piece) in stream.chunks(chunk).enumerate() {
                let offset = k * chunk;
                let was_at_boundary = t.at_boundary();
                match t.feed(piece) {
                    Some(0) => assert!(was_at_boundary, "chunk {chunk}"),
                    Some(b) => reported.push(offset + b),
                    None => assert!(!was_at_boundary),
                }
            }
            assert!(t.at_boundary(), "chunk {chunk}");
            for r in &reported {
                assert!(ends.contains(r), "chunk {chunk}: {r} is not a frame end");
            }
            if chunk == 1 {
                // Byte by byte, every frame end is seen (as the byte that ends it).
                assert_eq!(reported, ends);
            }
        }
    }

    #[test]
    fn mid_frame_is_not_a_boundary() {
        let f = frame(10, true);
        let mut t = FrameTracker::default();
        assert_eq!(t.feed(&f[..5]), Some(0));
        assert!(!t.at_boundary());
        assert_eq!(t.feed(&f[5..]), Some(f.len() - 5));
        assert!(t.at_boundary());
    }

    #[test]
    fn builds_close_frames() {
        let f = close_frame(1001, "going away", None);
        assert_eq!(close_code(&f), Some(1001));
        assert_eq!(f[1] as usize, 2 + "going away".len());
        let m = close_frame(1001, "", Some([9, 8, 7, 6]));
        assert_eq!(m[1], 0x80 | 2);
        assert_eq!([m[6] ^ 9, m[7] ^ 8], 1001u16.to_be_bytes());
    }
}
