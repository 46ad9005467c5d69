//! Compression of release tarballs on every core, with the same bytes
//! whatever the number of cores: the stream is cut into fixed-size chunks,
//! each compressed on its own into a complete gzip member, xz stream, zstd
//! frame or lzip member, and those are written in order. Every decompressor
//! reads such concatenations (`gzip -d`, `tar xzf`, `xz -d`, `zstd -d`,
//! `lzip -d`, as plzip writes them); the cost in size
//! is a few hundred bytes per chunk.

use std::io::{self, Read, Write};

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Gz,
    Xz,
    Zst,
    Lz,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "gz" | "gzip" => Some(Format::Gz),
            "xz" => Some(Format::Xz),
            "zst" | "zstd" => Some(Format::Zst),
            "lz" | "lzip" => Some(Format::Lz),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Gz => "tar.gz",
            Format::Xz => "tar.xz",
            Format::Zst => "tar.zst",
            Format::Lz => "tar.lz",
        }
    }

    /// Input bytes per independently compressed chunk. Large enough that the
    /// restart costs under 0.1% (gzip's window is 32 KiB; xz's dictionary at
    /// preset 6 is 8 MiB).
    fn chunk_size(self) -> usize {
        match self {
            Format::Gz => 4 << 20,
            Format::Xz | Format::Zst | Format::Lz => 16 << 20,
        }
    }

    /// The format of a compressed file, from its first bytes.
    pub fn sniff(magic: &[u8]) -> Option<Format> {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Some(Format::Gz)
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Format::Xz)
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Format::Zst)
        } else if magic.starts_with(b"LZIP") {
            Some(Format::Lz)
        } else {
            None
        }
    }

    /// A reader of the decompressed stream (all members, streams or frames).
    pub fn decoder<'a, R: io::BufRead + 'a>(self, input: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Format::Gz => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Format::Xz => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(input)),
            Format::Zst => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
            Format::Lz => Box::new(super::lzip::Decoder::new(input)),
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Gz => "gz",
            Format::Xz => "xz",
            Format::Zst => "zst",
            Format::Lz => "lz",
        })
    }
}

/// gzip -9 class deflate; xz preset 6 (xz's default); zstd level 19;
/// lzip -9 class LZMA.
fn compress_chunk(format: Format, data: &[u8]) -> io::Result<Vec<u8>> {
    match format {
        Format::Gz => {
            let deflated = miniz_oxide::deflate::compress_to_vec(data, 9);
            let mut out = Vec::with_capacity(deflated.len() + 18);
            // Header: no name, mtime 0, XFL 2 (best compression), OS 3 (Unix).
            out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
            out.extend_from_slice(&deflated);
            out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            Ok(out)
        }
        Format::Xz => {
            let mut encoder = xz2::write::XzEncoder::new(Vec::with_capacity(data.len() / 4), 6);
            encoder.write_all(data)?;
            encoder.finish()
        }
        Format::Zst => {
            let mut compressor = zstd::bulk::Compressor::new(19)?;
            compressor.include_checksum(true)?;
            compressor.include_contentsize(true)?;
            compressor.compress(data)
        }
        Format::Lz => super::lzip::member(data),
    }
}

/// A `Write` that compresses what it is given, `jobs` chunks at a time.
pub struct ParallelWriter<W: Write> {
    format: Format,
    chunk_size: usize,
    jobs: usize,
    pending: Vec<u8>,
    out: W,
    /// Bytes written to `out`.
    written: u64,
}

impl<W: Write> ParallelWriter<W> {
    pub fn new(format: Format, jobs: usize, out: W) -> ParallelWriter<W> {
        ParallelWriter {
            format,
            chunk_size: format.chunk_size(),
            jobs: jobs.max(1),
            pending: Vec::new(),
            out,
            written: 0,
        }
    }

    /// Smaller chunks, for tests that need several of them.
    #[cfg(test)]
    fn with_chunk_size(mut self, size: usize) -> Self {
        self.chunk_size = size;
        self
    }

    /// Compress whole chunks from the front of `pending`; with `all`, the
    /// tail too.
    fn drain(&mut self, all: bool) -> io::Result<()> {
        let size = self.chunk_size;
        let whole = self.pending.len() / size * size;
        let end = if all { self.pending.len() } else { whole };
        if end == 0 {
            return Ok(());
        }
        let chunks: Vec<&[u8]> = self.pending[..end].chunks(size).collect();
        let format = self.format;
        let compressed = crate::parallel::map(self.jobs, &chunks, |chunk| compress_chunk(format, chunk));
        for chunk in compressed {
            let chunk = chunk?;
            self.out.write_all(&chunk)?;
            self.written += chunk.len() as u64;
        }
        self.pending.drain(..end);
        Ok(())
    }

    /// Compress what is left and return the inner writer.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.drain(true)?;
        if self.written == 0 {
            // An empty input still makes a valid (empty) compressed file.
            let chunk = compress_chunk(self.format, &[])?;
            self.out.write_all(&chunk)?;
            self.written += chunk.len() as u64;
        }
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

impl<W: Write> Write for ParallelWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= self.chunk_size * self.jobs {
            self.drain(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: words from a small LCG.
        let mut state = 12345u32;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            out.extend_from_slice(format!("w{} ", (state >> 16) % 500).as_bytes());
        }
        out.truncate(len);
        out
    }

    const CHUNK: usize = 64 << 10;

    fn compress(format: Format, jobs: usize, data: &[u8], write_size: usize) -> Vec<u8> {
        let mut writer = ParallelWriter::new(format, jobs, Vec::new()).with_chunk_size(CHUNK);
        for piece in data.chunks(write_size.max(1)) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap().0
    }

    #[test]
    fn same_bytes_whatever_the_jobs_and_round_trip() {
        for format in [Format::Gz, Format::Xz, Format::Zst, Format::Lz] {
            let data = sample(CHUNK * 3 + 1000);
            let one = compress(format, 1, &data, 7_000);
            let two = compress(format, 2, &data, 100_000);
            let five = compress(format, 5, &data, 333);
            assert_eq!(one, two, "{format}");
            assert_eq!(one, five, "{format}");
            assert_eq!(Format::sniff(&one), Some(format));
            let mut back = Vec::new();
            format.decoder(&one[..]).unwrap().read_to_end(&mut back).unwrap();
            assert!(back == data, "{format}: round trip");
        }
    }

    #[test]
    fn empty_input_is_a_valid_empty_file() {
        for format in [Format::Gz, Format::Xz, Format::Zst, Format::Lz] {
            let out = compress(format, 2, &[], 1);
            let mut back = Vec::new();
            format.decoder(&out[..]).unwrap().read_to_end(&mut back).unwrap();
            assert!(back.is_empty(), "{format}");
        }
    }
}
