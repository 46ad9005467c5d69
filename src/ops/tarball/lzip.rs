//! lzip (`.tar.lz`, as Xen's mktarball writes with `lzip -9`), encoded by
//! the liblzma built into sultana: the same bytes on every machine, whatever
//! `lzip` the host has.
//!
//! A lzip member is a 6-byte header (`LZIP`, version 1, the coded dictionary
//! size), an LZMA stream with lc=3 lp=0 pb=2 ended by an end-of-payload
//! marker, and a 20-byte trailer (CRC32 and size of the data, size of the
//! member). liblzma's `.lzma` ("alone") encoder writes exactly that stream
//! after a 13-byte header of its own, which is cut off here; the decoder
//! gives it such a header back. Concatenated members are one lzip file.

use std::io::{self, BufRead, Read};

/// 16 MiB: the chunk size too (a dictionary larger than the data it
/// compresses buys nothing). Coded in the header as 2^24 exactly.
const DICT_LOG2: u8 = 24;
const DICT_SIZE: u32 = 1 << DICT_LOG2;
/// The `.lzma` header liblzma writes and reads: properties, dictionary
/// size, uncompressed size (unknown: all ones).
const ALONE_HEADER: usize = 13;
/// lc=3, lp=0, pb=2: (pb * 5 + lp) * 9 + lc, the only properties lzip allows.
const LZIP_PROPERTIES: u8 = 0x5d;
const TRAILER: usize = 20;
/// What a member may ask of the decoder: lzip's largest dictionary is 512 MiB.
const MEMLIMIT: u64 = 1 << 30;

/// One lzip member holding `data` (lzip -9's match finder and lengths).
pub fn member(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut options = xz2::stream::LzmaOptions::new_preset(9).map_err(io::Error::other)?;
    options
        .dict_size(DICT_SIZE)
        .literal_context_bits(3)
        .literal_position_bits(0)
        .position_bits(2)
        .nice_len(273);
    let stream = xz2::stream::Stream::new_lzma_encoder(&options).map_err(io::Error::other)?;
    let mut encoder = xz2::write::XzEncoder::new_stream(Vec::with_capacity(data.len() / 4), stream);
    io::Write::write_all(&mut encoder, data)?;
    let alone = encoder.finish()?;
    if alone.len() < ALONE_HEADER || alone[0] != LZIP_PROPERTIES {
        return Err(io::Error::other("liblzma wrote an unexpected .lzma header"));
    }
    let body = &alone[ALONE_HEADER..];
    let mut out = Vec::with_capacity(6 + body.len() + TRAILER);
    out.extend_from_slice(b"LZIP");
    out.push(1);
    out.push(DICT_LOG2);
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let member_size = (out.len() + 8) as u64;
    out.extend_from_slice(&member_size.to_le_bytes());
    Ok(out)
}

/// The dictionary size a header's byte codes: 2^(bits 0-4) less
/// (bits 5-7)/16 of it, between 4 KiB and 512 MiB.
fn dict_size(coded: u8) -> Option<u32> {
    let log2 = u32::from(coded & 0x1f);
    if !(12..=29).contains(&log2) {
        return None;
    }
    let base = 1u32 << log2;
    Some(base - (base / 16) * u32::from(coded >> 5))
}

fn bad(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("lzip: {}", message.into()))
}

/// Reads the data of every member of a lzip file, checking each trailer
/// (CRC, data size, member size); anything after the last member that is
/// not a member is an error.
pub struct Decoder<R: BufRead> {
    input: R,
    member: Option<Member>,
    /// Members read whole so far.
    members: u64,
    done: bool,
}

struct Member {
    stream: xz2::stream::Stream,
    /// The `.lzma` header still to give the decoder first.
    header: Vec<u8>,
    crc: crc32fast::Hasher,
    out: u64,
    /// Compressed bytes of this member read so far (its header included).
    read: u64,
}

impl<R: BufRead> Decoder<R> {
    pub fn new(input: R) -> Decoder<R> {
        Decoder {
            input,
            member: None,
            members: 0,
            done: false,
        }
    }

    /// Start the next member; false at a clean end of input.
    fn start(&mut self, first: bool) -> io::Result<bool> {
        let mut header = [0u8; 6];
        let mut got = 0;
        while got < header.len() {
            let n = self.input.read(&mut header[got..])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        if got == 0 && !first {
            return Ok(false);
        }
        if got < 6 || &header[..4] != b"LZIP" {
            return Err(bad(if first {
                "not a lzip file"
            } else {
                "data after the last member"
            }));
        }
        if header[4] != 1 {
            return Err(bad(format!("version {} is not 1", header[4])));
        }
        let dict = dict_size(header[5]).ok_or_else(|| bad("invalid dictionary size"))?;
        let mut alone = vec![LZIP_PROPERTIES];
        alone.extend_from_slice(&dict.to_le_bytes());
        alone.extend_from_slice(&u64::MAX.to_le_bytes());
        self.member = Some(Member {
            stream: xz2::stream::Stream::new_lzma_decoder(MEMLIMIT).map_err(io::Error::other)?,
            header: alone,
            crc: crc32fast::Hasher::new(),
            out: 0,
            read: 6,
        });
        Ok(true)
    }

    /// Check the trailer after a member's end marker.
    fn finish_member(&mut self) -> io::Result<()> {
        let member = self.member.take().ok_or_else(|| bad("no member"))?;
        let mut trailer = [0u8; TRAILER];
        self.input
            .read_exact(&mut trailer)
            .map_err(|_| bad("truncated member trailer"))?;
        let crc = u32::from_le_bytes(trailer[0..4].try_into().unwrap_or_default());
        let size = u64::from_le_bytes(trailer[4..12].try_into().unwrap_or_default());
        let member_size = u64::from_le_bytes(trailer[12..20].try_into().unwrap_or_default());
        if crc != member.crc.finalize() {
            return Err(bad("CRC mismatch"));
        }
        if size != member.out {
            return Err(bad("data size mismatch"));
        }
        if member_size != member.read + TRAILER as u64 {
            return Err(bad("member size mismatch"));
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.done {
                return Ok(0);
            }
            if self.member.is_none() && !self.start(self.members == 0)? {
                self.done = true;
                return Ok(0);
            }
            let member = self.member.as_mut().ok_or_else(|| bad("no member"))?;
            // The synthetic .lzma header first, then the member's bytes.
            let (status, used, made) = if !member.header.is_empty() {
                let before_in = member.stream.total_in();
                let before_out = member.stream.total_out();
                let status = member
                    .stream
                    .process(&member.header, buf, xz2::stream::Action::Run)
                    .map_err(|e| bad(e.to_string()))?;
                let used = (member.stream.total_in() - before_in) as usize;
                member.header.drain(..used);
                (status, 0, (member.stream.total_out() - before_out) as usize)
            } else {
                let input = self.input.fill_buf()?;
                if input.is_empty() {
                    return Err(bad("truncated member"));
                }
                let before_in = member.stream.total_in();
                let before_out = member.stream.total_out();
                let status = member
                    .stream
                    .process(input, buf, xz2::stream::Action::Run)
                    .map_err(|e| bad(e.to_string()))?;
                let used = (member.stream.total_in() - before_in) as usize;
                (status, used, (member.stream.total_out() - before_out) as usize)
            };
            self.input.consume(used);
            let member = self.member.as_mut().ok_or_else(|| bad("no member"))?;
            member.read += used as u64;
            member.crc.update(&buf[..made]);
            member.out += made as u64;
            if status == xz2::stream::Status::StreamEnd {
                self.finish_member()?;
                self.members += 1;
            }
            if made > 0 {
                return Ok(made);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Decoder::new(bytes).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn members_round_trip_and_concatenate() {
        let a: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let b = b"the second member\n".repeat(1000);
        let mut file = member(&a).unwrap();
        file.extend(member(&b).unwrap());
        file.extend(member(&[]).unwrap());
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert!(decode(&file).unwrap() == both);
        // Deterministic: the same bytes every time.
        assert_eq!(member(&a).unwrap(), member(&a).unwrap());
        assert_eq!(&file[..6], b"LZIP\x01\x18");
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let data = b"hello lzip\n".repeat(5000);
        let good = member(&data).unwrap();
        let n = good.len();
        let mut cases: Vec<Vec<u8>> = vec![
            good[..n - 1].to_vec(),
            good[..n / 2].to_vec(),
            good[..3].to_vec(),
            Vec::new(),
            [good.clone(), b"junk".to_vec()].concat(),
        ];
        for at in [0, 4, 10, n / 2, n - 20, n - 12, n - 1] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            cases.push(bad);
        }
        for case in cases {
            assert!(decode(&case).is_err(), "{} bytes accepted", case.len());
        }
    }

    #[test]
    fn dictionary_sizes_decode_as_lzip_codes_them() {
        assert_eq!(dict_size(24), Some(16 << 20));
        assert_eq!(dict_size(0x20 | 24), Some((16 << 20) - (1 << 20)));
        assert_eq!(dict_size(11), None);
        assert_eq!(dict_size(30), None);
    }
}
