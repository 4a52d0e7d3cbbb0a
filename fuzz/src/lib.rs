//! Shared pieces of the fuzz targets: a reference frame-header decoder that is
//! obviously correct (byte by byte, straight from the RFC 6455 §5.2 diagram),
//! for differential checks against `tincan_core::FrameHeader::decode`.

/// What the reference decoder makes of the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The header is not complete yet.
    NeedMore,
    /// Opcode 3–7 or 0xB–0xF.
    ReservedOpcode(u8),
    /// A 64-bit length with the most significant bit set.
    HighBit,
    /// A 16- or 64-bit length that would have fit a shorter form.
    NonMinimal,
    /// A header: FIN, RSV bits, opcode, masking key, payload length, header length.
    Header {
        fin: bool,
        rsv: u8,
        opcode: u8,
        mask: Option<[u8; 4]>,
        len: u64,
        header_len: usize,
    },
}

/// Decodes a frame header the slow, plain way.
pub fn reference_decode(buf: &[u8]) -> Reference {
    if buf.len() < 2 {
        return Reference::NeedMore;
    }
    let fin = buf[0] >> 7 == 1;
    let rsv = (buf[0] >> 4) & 0b111;
    let opcode = buf[0] & 0b1111;
    if !matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10) {
        return Reference::ReservedOpcode(opcode);
    }
    let masked = buf[1] >> 7 == 1;
    let short = u64::from(buf[1] & 0b0111_1111);
    let mut at = 2;
    let len = match short {
        126 => {
            if buf.len() < at + 2 {
                return Reference::NeedMore;
            }
            let len = u64::from(buf[at]) * 256 + u64::from(buf[at + 1]);
            at += 2;
            if len < 126 {
                return Reference::NonMinimal;
            }
            len
        }
        127 => {
            if buf.len() < at + 8 {
                return Reference::NeedMore;
            }
            let mut len: u64 = 0;
            for i in 0..8 {
                len = len * 256 + u64::from(buf[at + i]);
            }
            at += 8;
            if buf[2] >= 0x80 {
                return Reference::HighBit;
            }
            if len < 65536 {
                return Reference::NonMinimal;
            }
            len
        }
        n => n,
    };
    let mask = if masked {
        if buf.len() < at + 4 {
            return Reference::NeedMore;
        }
        let key = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(key)
    } else {
        None
    };
    Reference::Header {
        fin,
        rsv,
        opcode,
        mask,
        len,
        header_len: at,
    }
}
