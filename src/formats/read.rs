//! Reading a data, labels or weights file's bytes: decompressed when gzipped, bounded by
//! what its header declares (NPY, IDX) or by the memory available (text), and standard
//! input read once.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::idx::{idx_declared_bytes, idx_dims, idx_magic};
use super::memory::available_memory;
use super::npy::{npy_declared_bytes, parse_npy};
use super::{Format, FormatError, Input, fail, shape_text};

/// What a file should hold, which decides how much of it is read: NPY and IDX headers
/// declare their data, and nothing past that is read; text declares nothing, so it is
/// read only as far as memory allows, and only once its first block has no NUL byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Contents {
    Text,
    Npy,
    Idx,
    /// A binary file read whole (an `.npz` archive), bounded like text but not probed for
    /// NUL bytes.
    Binary,
}

impl Contents {
    pub(super) fn of(format: Option<Format>) -> Self {
        match format {
            Some(Format::Npy) => Contents::Npy,
            Some(Format::Idx) => Contents::Idx,
            Some(Format::Npz) => Contents::Binary,
            _ => Contents::Text,
        }
    }
}

/// Bytes at the start of a text file checked for NUL bytes, which text never holds: a
/// binary file, a device like /dev/zero or UTF-16 text is refused before more is read.
const TEXT_PROBE: u64 = 64 << 10;

/// The most a gzipped text file, or a text stream (a pipe, a device), may hold: its size
/// is known only once it is read, so this bounds the read where the available memory is
/// not known, and a file meant as data is never this large.
pub const MAX_TEXT_STREAM: u64 = 64 << 30;

/// The longest NPY header read. NumPy writes a few hundred bytes; its own reader refuses
/// more than 10,000 unless told otherwise.
const MAX_NPY_HEADER: usize = 1 << 20;

/// Reads `reader` into `out` until it ends or `out` holds one byte more than `limit`, and
/// says whether it went past the limit (then the byte past it is kept in `out`, so a
/// later call can go on). Memory is taken as bytes arrive, never from a size a file
/// claims, and a failed reservation is an `OutOfMemory` error, not an abort.
pub(crate) fn read_bounded(
    reader: &mut impl Read,
    limit: u64,
    out: &mut Vec<u8>,
) -> io::Result<bool> {
    let cap = limit.saturating_add(1);
    let mut chunk = vec![0u8; 64 << 10];
    while (out.len() as u64) < cap {
        let want = usize::try_from(cap - out.len() as u64)
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        let got = match reader.read(chunk.get_mut(..want).unwrap_or_default()) {
            Ok(0) => return Ok(false),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.try_reserve(got)
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        out.extend_from_slice(chunk.get(..got).unwrap_or_default());
    }
    Ok(true)
}

/// The file's bytes, decompressed when the name ends `.gz` or the bytes start with gzip's
/// magic (so a compressed file that lost its `.gz` still reads). The read is bounded by
/// what `contents` allows: see [`Contents`].
pub(super) fn read_file(path: &Path, contents: Contents) -> Result<Vec<u8>, FormatError> {
    let cannot = |e: io::Error| fail(path, format_args!("cannot read the file: {e}"));
    let file = File::open(path).map_err(cannot)?;
    // Only a regular file's length is its size; a device or a pipe reports 0.
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let mut raw = BufReader::with_capacity(64 << 10, file);
    let gz_name = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(".gz"));
    let gz = gz_name || raw.fill_buf().map_err(cannot)?.starts_with(&[0x1f, 0x8b]);
    let result = if gz {
        read_contents(path, &mut MultiGzDecoder::new(raw), contents, None, true)
    } else {
        read_contents(path, &mut raw, contents, size, false)
    };
    result.map_err(|stop| stop_error(path, gz, stop))
}

/// The sentence for a read that [`read_contents`] stopped.
fn stop_error(path: &Path, gz: bool, stop: Stop) -> FormatError {
    match stop {
        Stop::Refused(e) => e,
        Stop::Io(e) if e.kind() == io::ErrorKind::OutOfMemory => fail(
            path,
            "cannot be held in memory: the system refused the allocation",
        ),
        Stop::Io(e) if gz => fail(path, format_args!("cannot decompress it as gzip: {e}")),
        Stop::Io(e) => fail(path, format_args!("cannot read the file: {e}")),
    }
}

/// Standard input's bytes, read once (a pipe cannot be read twice) with the bounds of a
/// stream, decompressed when they start with gzip's magic; its format is `format`, else
/// NPY when the bytes start with NumPy's magic, else CSV.
pub(super) fn read_stdin(path: &Path, format: Option<Format>) -> Result<Input, FormatError> {
    // The first bytes decide how to read the rest, then are read again in front of it.
    fn head(reader: &mut impl Read, len: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        reader.take(len).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
    let mut stdin = io::stdin().lock();
    let magic = head(&mut stdin, 2).map_err(|e| stop_error(path, false, Stop::Io(e)))?;
    let gz = magic.starts_with(&[0x1f, 0x8b]);
    let raw = io::Cursor::new(magic).chain(stdin);
    let mut reader: Box<dyn Read> = if gz {
        Box::new(MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let start = head(&mut reader, 6).map_err(|e| stop_error(path, gz, Stop::Io(e)))?;
    let format = format.unwrap_or(if start.starts_with(b"\x93NUMPY") {
        Format::Npy
    } else {
        Format::Csv
    });
    let mut reader = io::Cursor::new(start).chain(reader);
    let bytes = read_contents(path, &mut reader, Contents::of(Some(format)), None, gz)
        .map_err(|stop| stop_error(path, gz, stop))?;
    Ok(Input { format, bytes })
}

/// Why [`read_contents`] stopped early.
enum Stop {
    Refused(FormatError),
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

impl From<FormatError> for Stop {
    fn from(e: FormatError) -> Self {
        Stop::Refused(e)
    }
}

/// Reads a file's (decompressed) bytes as `contents` bounds them. `size` is the length of
/// a regular, uncompressed file. Anything the format's parser would report (a wrong
/// magic, a short header, a truncated body) is left to it: this returns what it read.
fn read_contents(
    path: &Path,
    reader: &mut impl Read,
    contents: Contents,
    size: Option<u64>,
    gz: bool,
) -> Result<Vec<u8>, Stop> {
    let memory = available_memory();
    match contents {
        Contents::Text => read_text(path, reader, size, gz, memory, true),
        Contents::Binary => read_text(path, reader, size, gz, memory, false),
        Contents::Npy => read_npy(path, reader, size, gz, memory),
        Contents::Idx => read_idx(path, reader, size, gz, memory),
    }
}

/// Text: its first block, refused if it holds a NUL byte, then the rest as far as memory
/// (and, for a stream, [`MAX_TEXT_STREAM`]) allows.
fn read_text(
    path: &Path,
    reader: &mut impl Read,
    size: Option<u64>,
    gz: bool,
    memory: Option<u64>,
    text: bool,
) -> Result<Vec<u8>, Stop> {
    let mut out = Vec::new();
    // A regular file is bounded by its length, checked against memory here; a
    // stream has no length, so it also has a ceiling.
    let ceiling = if size.is_some() {
        u64::MAX
    } else {
        MAX_TEXT_STREAM
    };
    let limit = ceiling.min(memory.unwrap_or(u64::MAX));
    if let (Some(size), Some(memory)) = (size, memory)
        && size > memory
    {
        return Err(fail(
            path,
            format_args!(
                "is {}, more than the {} of memory available to read it into",
                crate::util::human_bytes(size),
                crate::util::human_bytes(memory)
            ),
        )
        .into());
    }
    let more = read_bounded(reader, TEXT_PROBE.min(limit), &mut out)?;
    if let Some(at) = out.iter().position(|&b| b == 0)
        && text
    {
        return Err(fail(
            path,
            format_args!(
                "is not a text file (byte {} is NUL{}); save it as UTF-8 text",
                at + 1,
                if gz { " once decompressed" } else { "" }
            ),
        )
        .into());
    }
    if more && read_bounded(reader, limit, &mut out)? {
        let why = if limit < ceiling {
            "the memory available"
        } else {
            "the most a text stream may hold"
        };
        let limit = crate::util::human_bytes(limit);
        return Err(fail(
            path,
            if gz {
                format!("expands beyond {limit} ({why}) when decompressed")
            } else {
                format!("holds more than {limit} ({why})")
            },
        )
        .into());
    }
    Ok(out)
}

/// NPY: the header, then no more data than it declares.
fn read_npy(
    path: &Path,
    reader: &mut impl Read,
    size: Option<u64>,
    gz: bool,
    memory: Option<u64>,
) -> Result<Vec<u8>, Stop> {
    let mut out = Vec::new();
    read_bounded(reader, 12, &mut out)?;
    let header_end = match out.strip_prefix(b"\x93NUMPY") {
        Some([1, _, a, b, ..]) => 10 + usize::from(u16::from_le_bytes([*a, *b])),
        Some([2 | 3, _, a, b, c, d, ..]) => {
            let len = u32::from_le_bytes([*a, *b, *c, *d]);
            match usize::try_from(len) {
                Ok(len) if len <= MAX_NPY_HEADER => 12 + len,
                _ => {
                    return Err(fail(
                        path,
                        format_args!(
                            "has an NPY header of {len} bytes; NumPy writes a few hundred, and more than {MAX_NPY_HEADER} is not read"
                        ),
                    )
                    .into());
                }
            }
        }
        // Not NPY, or a version the parser refuses: it says which.
        _ => return Ok(out),
    };
    read_bounded(reader, header_end as u64, &mut out)?;
    if out.len() < header_end {
        return Ok(out);
    }
    let npy = parse_npy(path, out.get(..header_end).unwrap_or_default())?;
    // An element type the readers refuse needs no data to be refused.
    let Some(dtype) = npy.dtype else {
        return Ok(out);
    };
    let declared = npy_declared_bytes(path, &npy.shape, dtype)?;
    let what = format!("{} {}", shape_text(&npy.shape), dtype.name());
    read_declared(
        path, reader, out, header_end, declared, &what, size, gz, memory,
    )
}

/// IDX: the header, then no more data than it declares.
fn read_idx(
    path: &Path,
    reader: &mut impl Read,
    size: Option<u64>,
    gz: bool,
    memory: Option<u64>,
) -> Result<Vec<u8>, Stop> {
    let mut out = Vec::new();
    read_bounded(reader, 4, &mut out)?;
    let ndims = match out.get(..4) {
        Some(magic) if idx_magic(magic).is_some() => usize::from(magic[3]),
        _ => return Ok(out),
    };
    let header_end = 4 + 4 * ndims;
    read_bounded(reader, header_end as u64, &mut out)?;
    let (Some(num), Some(dim_bytes)) = (idx_magic(&out), out.get(4..header_end)) else {
        return Ok(out);
    };
    let dims = idx_dims(dim_bytes);
    let declared = idx_declared_bytes(path, &dims, num)?;
    let what = format!("{} {}", shape_text(&dims), num.name());
    read_declared(
        path, reader, out, header_end, declared, &what, size, gz, memory,
    )
}

/// Reads the data after a header of `header_end` bytes (already in `out`) that declares
/// `declared` bytes of `what` (a shape and element type): no further than the header
/// declares, and no further than memory allows. A short body is returned for the parser
/// to call truncated; a longer one is refused here, with its length when that is known.
#[allow(clippy::too_many_arguments)]
fn read_declared(
    path: &Path,
    reader: &mut impl Read,
    mut out: Vec<u8>,
    header_end: usize,
    declared: usize,
    what: &str,
    size: Option<u64>,
    gz: bool,
    memory: Option<u64>,
) -> Result<Vec<u8>, Stop> {
    let total = (header_end as u64).saturating_add(declared as u64);
    // What there is to read: all the header declares, or less when the file is shorter.
    let expected = size.map_or(total, |s| s.min(total));
    let beyond_memory = || {
        let memory = crate::util::human_bytes(memory.unwrap_or(0));
        fail(
            path,
            format_args!(
                "its header declares {what} = {declared} bytes of data, more than the {memory} of memory available"
            ),
        )
    };
    if memory.is_some_and(|m| expected > m) {
        return Err(beyond_memory().into());
    }
    let limit = memory.map_or(total, |m| m.min(total));
    if !read_bounded(reader, limit, &mut out)? {
        return Ok(out);
    }
    if limit < total {
        return Err(beyond_memory().into());
    }
    // A length that does not exceed what was read is not the file's (a file in /proc).
    let actual = size
        .filter(|&s| s > total)
        .and_then(|s| usize::try_from(s).ok());
    Err(match actual {
        Some(actual) => fail(
            path,
            format_args!(
                "has {} bytes of data but its header says {what} = {declared} bytes of data",
                actual.saturating_sub(header_end)
            ),
        ),
        None if gz => fail(
            path,
            format_args!(
                "expands beyond the {declared} bytes of data its header declares for {what}; the file is damaged"
            ),
        ),
        None => fail(
            path,
            format_args!("holds more than the {declared} bytes of data its header declares for {what}"),
        ),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_files::*;
    use crate::formats::*;
    use std::io::Write;

    #[test]
    fn text_with_nul_bytes_is_refused_as_not_text() {
        let dir = TempDir::new("nul");
        let path = dir.write("x.csv", b"1,2,0\n3,\x004,1\n");
        let err = load_err(&path, &labelled());
        assert!(
            err.contains("x.csv: is not a text file (byte 9 is NUL)"),
            "{err}"
        );
        // UTF-16, as some spreadsheets save "Unicode text".
        let utf16: Vec<u8> = "1,2,0\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let path = dir.write("u.csv", &utf16);
        let err = load_err(&path, &labelled());
        assert!(err.contains("u.csv: is not a text file"), "{err}");
        let path = dir.write("y.txt", b"0\n\x001\n");
        let err = load_labels_file(&path).unwrap_err().to_string();
        assert!(err.contains("y.txt: is not a text file"), "{err}");
    }

    /// A device that never ends is refused after its first block, in every text format
    /// and as a labels or weights file.
    #[test]
    fn dev_zero_is_refused_at_once() {
        let zero = Path::new("/dev/zero");
        let started = std::time::Instant::now();
        for format in [Format::Csv, Format::Libsvm] {
            let options = LoadOptions {
                format: Some(format),
                ..labelled()
            };
            let err = load_err(zero, &options);
            assert!(
                err.contains("/dev/zero: is not a text file (byte 1 is NUL)"),
                "{err}"
            );
        }
        let options = LoadOptions {
            format: Some(Format::Npy),
            ..LoadOptions::default()
        };
        assert!(load_err(zero, &options).contains("not an NPY file"));
        let options = LoadOptions {
            format: Some(Format::Idx),
            ..LoadOptions::default()
        };
        assert!(load_err(zero, &options).contains("not an IDX file"));
        assert!(load_labels_file(zero).is_err());
        assert!(load_weights(zero, 2, Path::new("x.csv")).is_err());
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }

    /// A gzipped file is decompressed no further than its header declares.
    #[test]
    fn gzip_expanding_beyond_its_idx_header_is_refused() {
        let dir = TempDir::new("gz-bomb");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&idx(0x08, &[10, 10, 10], &[])).unwrap();
        let block = vec![0u8; 1 << 20];
        for _ in 0..50 {
            enc.write_all(&block).unwrap();
        }
        let path = dir.write("bomb-idx3-ubyte.gz", enc.finish().unwrap());
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains(
                "bomb-idx3-ubyte.gz: expands beyond the 1000 bytes of data its header declares for (10, 10, 10) uint8"
            ),
            "{err}"
        );
        // A header that declares 2.4 GB over a short body reads only the body.
        let path = dir.write(
            "huge-idx3-ubyte.gz",
            gzip(&idx(0x08, &[60000, 200, 200], &[7; 1000])),
        );
        let err = load_err(&path, &LoadOptions::default());
        assert!(
            err.contains("is truncated: header says (60000, 200, 200) uint8 = 2400000000 bytes of data, file has 1000"),
            "{err}"
        );
    }

    #[test]
    fn bounded_reads_stop_one_byte_past_the_limit() {
        let mut out = Vec::new();
        let more = read_bounded(&mut std::io::repeat(7).take(100), 10, &mut out).unwrap();
        assert!(more);
        assert_eq!(out, vec![7; 11]);
        let mut out = Vec::new();
        let more = read_bounded(&mut &[1u8, 2, 3][..], 3, &mut out).unwrap();
        assert!(!more);
        assert_eq!(out, vec![1, 2, 3]);
    }
}
