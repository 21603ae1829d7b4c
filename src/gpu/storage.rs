//! How X is stored on the device (shaders/x_storage.wgsl): as f32, or compactly as f16 or
//! as u8 codes with one affine scale per dataset. The kernels decode each value to f32 and
//! accumulate in f32 whatever the storage; compact storage trades exactness of X for a
//! half or a quarter of the memory and of the bytes each step reads.

use crate::data::dataset::Dataset;
use crate::data::source::ChunkSource;
use crate::error::{Error, Result};

/// Bytes of rows read at a time while scanning a source for its range.
const SCAN_BYTES: usize = 64 << 20;

/// Values below which one thread encodes alone.
const ENCODE_VALUES_PER_THREAD: usize = 1 << 20;

/// The element type of X on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XStorage {
    /// 4 bytes per value, exact. The default.
    #[default]
    F32,
    /// 2 bytes per value: IEEE half precision, 11 significant bits, |x| ≤ 65504.
    F16,
    /// 1 byte per value: x ≈ lo + step·q with q in 0..=255, lo the smallest value of X.
    /// step is 1 when X holds integers that span at most 255 (exact: 8-bit pixels, counts),
    /// else (max − min)/255, which rounds each value to within step/2.
    U8,
}

/// Largest magnitude f16 storage holds.
pub const F16_MAX: f32 = 65504.0;

impl XStorage {
    /// `f32`, `f16` or `u8` (case-insensitive).
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(XStorage::F32),
            "f16" | "float16" | "half" => Ok(XStorage::F16),
            "u8" | "uint8" => Ok(XStorage::U8),
            _ => Err(Error::setting(
                "x_storage",
                name,
                "expected one of f32, f16, u8",
            )),
        }
    }

    /// The name `parse` takes: `f32`, `f16` or `u8`.
    pub fn name(self) -> &'static str {
        match self {
            XStorage::F32 => "f32",
            XStorage::F16 => "f16",
            XStorage::U8 => "u8",
        }
    }

    /// x_storage.wgsl's `X_FORMAT`: log2 of the elements per 32-bit word.
    pub(crate) fn format(self) -> u32 {
        match self {
            XStorage::F32 => 0,
            XStorage::F16 => 1,
            XStorage::U8 => 2,
        }
    }

    /// Elements per 32-bit word.
    pub(crate) fn per_word(self) -> usize {
        1 << self.format()
    }

    /// Words holding `elements` values.
    pub(crate) fn words(self, elements: usize) -> usize {
        elements.div_ceil(self.per_word())
    }

    /// Device bytes holding `elements` values: whole groups of four words, as the kernels
    /// bind X (x_storage.wgsl).
    pub fn bytes(self, elements: usize) -> u64 {
        4 * self.words(elements).next_multiple_of(4) as u64
    }

    /// Checks that every feature value of `data` can be stored this way, as putting it on
    /// a device would: f16 fails with [`Error::OutOfStorageRange`] naming the row and
    /// column of the value of largest magnitude when that is beyond ±65504.
    pub fn check(self, data: &Dataset) -> Result<()> {
        if self == XStorage::F16 {
            let source = data.source();
            XCodec::fit(
                self,
                source.n_features(),
                &XRange::of_source(source.as_ref())?,
            )?;
        }
        Ok(())
    }

    /// The values the kernels compute with when `x` is stored this way: x itself for f32,
    /// each value rounded to f16, or to its u8 code's value under the scale fitted to x.
    /// Fails as uploading would (a value beyond f16's range).
    pub fn as_stored(self, x: ndarray::ArrayView2<'_, f32>) -> Result<ndarray::Array2<f32>> {
        let x = x.as_standard_layout();
        let flat = x.as_slice().unwrap_or(&[]);
        let codec = XCodec::for_values(self, x.ncols(), flat)?;
        Ok(ndarray::Array2::from_shape_vec(x.dim(), codec.decode(flat))
            .unwrap_or_else(|_| unreachable!("decode keeps the length")))
    }
}

/// What a scan of X finds: its extremes, where they are, and whether every value is an
/// integer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XRange {
    min: f32,
    max: f32,
    /// Flat index of the value of largest magnitude.
    widest: usize,
    widest_value: f32,
    integers: bool,
}

impl Default for XRange {
    fn default() -> Self {
        XRange {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            widest: 0,
            widest_value: 0.0,
            integers: true,
        }
    }
}

impl XRange {
    /// The range of `values`, all of X.
    pub(crate) fn of_values(values: &[f32]) -> Self {
        let mut range = XRange::default();
        range.add(0, values);
        range
    }

    /// The range of every value `source` holds, read in blocks of rows.
    pub(crate) fn of_source(source: &dyn ChunkSource) -> Result<Self> {
        let (m, n) = (source.n_rows(), source.n_features());
        let block = (SCAN_BYTES / (4 * n.max(1))).max(1);
        let mut range = XRange::default();
        let mut host = Vec::new();
        for start in (0..m).step_by(block) {
            let rows = block.min(m - start);
            host.resize(rows * n, 0.0);
            crate::data::source::read_rows_parallel(source, start, n, &mut host)?;
            range.add(start * n, &host);
        }
        Ok(range)
    }

    /// Takes in `values`, the elements of X from flat index `first` on.
    pub(crate) fn add(&mut self, first: usize, values: &[f32]) {
        for (i, &v) in values.iter().enumerate() {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            if v.abs() > self.widest_value.abs() {
                self.widest_value = v;
                self.widest = first + i;
            }
            self.integers &= v.fract() == 0.0;
        }
    }
}

/// How one dataset's X is encoded on the device: the storage and, for u8, the scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct XCodec {
    pub storage: XStorage,
    /// Value of code 0 (u8 only; 0 otherwise).
    pub lo: f32,
    /// Value between consecutive codes (u8 only; 1 otherwise).
    pub step: f32,
}

impl XCodec {
    /// Plain f32 storage.
    pub(crate) const F32: XCodec = XCodec {
        storage: XStorage::F32,
        lo: 0.0,
        step: 1.0,
    };

    /// The codec for X of n features with the scanned `range`. f16 storage fails with the
    /// row and column of a value beyond its range.
    pub(crate) fn fit(storage: XStorage, n: usize, range: &XRange) -> Result<Self> {
        let plain = XCodec {
            storage,
            ..Self::F32
        };
        match storage {
            XStorage::F32 => Ok(plain),
            XStorage::F16 if range.widest_value.abs() > F16_MAX => Err(Error::OutOfStorageRange {
                row: range.widest / n.max(1),
                column: range.widest % n.max(1),
                value: range.widest_value,
                storage: "f16",
                limit: F16_MAX,
            }),
            XStorage::F16 => Ok(plain),
            XStorage::U8 if range.min > range.max => Ok(plain),
            XStorage::U8 => {
                let span = range.max - range.min;
                let step = if range.integers && span <= 255.0 {
                    1.0
                } else if span > 0.0 {
                    span / 255.0
                } else {
                    1.0
                };
                Ok(XCodec {
                    storage,
                    lo: range.min,
                    step,
                })
            }
        }
    }

    /// The codec fitted to `values`, all of X (row-major, n columns); f32 needs no scan.
    pub(crate) fn for_values(storage: XStorage, n: usize, values: &[f32]) -> Result<Self> {
        match storage {
            XStorage::F32 => Ok(Self::F32),
            _ => Self::fit(storage, n, &XRange::of_values(values)),
        }
    }

    /// Packs `values` (whole rows, row-major) into `out` as the device stores them,
    /// replacing what `out` held; large inputs are packed on several threads.
    pub(crate) fn encode(&self, values: &[f32], out: &mut Vec<u32>) {
        let per = self.storage.per_word();
        out.clear();
        out.resize(self.storage.words(values.len()), 0);
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(values.len() / ENCODE_VALUES_PER_THREAD);
        if threads <= 1 {
            return self.pack(values, out);
        }
        let words_per_thread = out.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for (part, words) in out.chunks_mut(words_per_thread).enumerate() {
                let first = part * words_per_thread * per;
                let last = (first + words.len() * per).min(values.len());
                let values = &values[first..last];
                scope.spawn(move || self.pack(values, words));
            }
        });
    }

    /// `values` packed into `words` (one word per `per_word` values).
    fn pack(&self, values: &[f32], words: &mut [u32]) {
        let per = self.storage.per_word();
        for (word, group) in words.iter_mut().zip(values.chunks(per)) {
            *word = match self.storage {
                XStorage::F32 => group[0].to_bits(),
                XStorage::F16 => group.iter().enumerate().fold(0, |w, (t, &v)| {
                    w | (u32::from(half::f16::from_f32(v).to_bits()) << (16 * t))
                }),
                XStorage::U8 => group
                    .iter()
                    .enumerate()
                    .fold(0, |w, (t, &v)| w | (self.code(v) << (8 * t))),
            };
        }
    }

    /// The bytes the device stores for `values` (whole rows): the values themselves for
    /// f32, else their encoding, packed into `words`.
    pub(crate) fn stored<'a>(&self, values: &'a [f32], words: &'a mut Vec<u32>) -> &'a [u8] {
        if self.storage == XStorage::F32 {
            return bytemuck::cast_slice(values);
        }
        self.encode(values, words);
        bytemuck::cast_slice(words.as_slice())
    }

    /// The u8 code of v: the nearest of lo + step·q.
    fn code(&self, v: f32) -> u32 {
        ((v - self.lo) / self.step).round().clamp(0.0, 255.0) as u32
    }

    /// The first `len` values held by `words` as the device stores them.
    pub(crate) fn unpack(&self, words: &[u32], len: usize) -> Vec<f32> {
        let per = self.storage.per_word();
        let bits = 32 / per;
        let mask = u32::MAX >> (32 - bits);
        (0..len)
            .map(|i| {
                let code = words
                    .get(i / per)
                    .map_or(0, |w| (w >> (bits * (i % per))) & mask);
                match self.storage {
                    XStorage::F32 => f32::from_bits(code),
                    XStorage::F16 => half::f16::from_bits(code as u16).to_f32(),
                    XStorage::U8 => self.step.mul_add(code as f32, self.lo),
                }
            })
            .collect()
    }

    /// The values the device computes with for `values`: each one encoded and decoded
    /// as the kernels decode it.
    pub(crate) fn decode(&self, values: &[f32]) -> Vec<f32> {
        match self.storage {
            XStorage::F32 => values.to_vec(),
            XStorage::F16 => values
                .iter()
                .map(|&v| half::f16::from_f32(v).to_f32())
                .collect(),
            XStorage::U8 => values
                .iter()
                .map(|&v| self.step.mul_add(self.code(v) as f32, self.lo))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(storage: XStorage, n: usize, values: &[f32]) -> Result<XCodec> {
        XCodec::for_values(storage, n, values)
    }

    #[test]
    fn unpacking_what_was_encoded_gives_the_decoded_values() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.71).cos() * 9.0).collect();
        for storage in [XStorage::F32, XStorage::F16, XStorage::U8] {
            let c = codec(storage, 37, &x).unwrap();
            let mut words = Vec::new();
            c.encode(&x, &mut words);
            assert_eq!(words.len(), storage.words(x.len()));
            assert_eq!(c.unpack(&words, x.len()), c.decode(&x), "{storage:?}");
        }
    }

    #[test]
    fn small_integers_are_exact_in_u8() {
        let x = [3.0, 0.0, 16.0, 7.0, 250.0];
        let c = codec(XStorage::U8, 5, &x).unwrap();
        assert_eq!((c.lo, c.step), (0.0, 1.0));
        assert_eq!(c.decode(&x), x.to_vec());
        let mut words = Vec::new();
        c.encode(&x, &mut words);
        assert_eq!(words, vec![3 | 16 << 16 | 7 << 24, 250]);
    }

    #[test]
    fn u8_rounds_to_within_half_a_step() {
        let x: Vec<f32> = (0..1000).map(|i| -1.5 + (i as f32 * 0.37).sin()).collect();
        let c = codec(XStorage::U8, 10, &x).unwrap();
        let (lo, hi) = x
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert_eq!(c.lo, lo);
        assert!((c.step - (hi - lo) / 255.0).abs() < 1e-7);
        for (v, d) in x.iter().zip(c.decode(&x)) {
            assert!((v - d).abs() <= 0.5 * c.step * 1.0001, "{v} decoded as {d}");
        }
        let codes: Vec<u32> = x.iter().map(|&v| c.code(v)).collect();
        assert!(codes.contains(&0) && codes.contains(&255));
    }

    #[test]
    fn f16_packs_pairs_low_half_first() {
        let x = [1.0, -2.0, 0.5];
        let c = codec(XStorage::F16, 3, &x).unwrap();
        let mut words = Vec::new();
        c.encode(&x, &mut words);
        assert_eq!(words, vec![0x3c00 | 0xc000 << 16, 0x3800]);
        let y = [0.1f32];
        assert!((c.decode(&y)[0] - 0.1).abs() < 1e-4 && c.decode(&y)[0] != 0.1);
    }

    #[test]
    fn f16_names_the_value_beyond_its_range() {
        let x = [1.0, 2.0, 3.0, -70000.0, 5.0, 6.0];
        let err = codec(XStorage::F16, 3, &x).unwrap_err().to_string();
        assert!(
            err.contains("row 2, column 1") && err.contains("-70000"),
            "{err}"
        );
        assert!(codec(XStorage::U8, 3, &x).is_ok());
    }

    #[test]
    fn encoding_on_several_threads_matches_one() {
        // Long enough for several threads, with a length that ends inside a word.
        let x: Vec<f32> = (0..3 * ENCODE_VALUES_PER_THREAD + 3)
            .map(|i| ((i % 1013) as f32 * 0.37).sin() * 40.0)
            .collect();
        for storage in [XStorage::F32, XStorage::F16, XStorage::U8] {
            let c = codec(storage, 1, &x).unwrap();
            let mut words = Vec::new();
            c.encode(&x, &mut words);
            let mut one = vec![0; storage.words(x.len())];
            c.pack(&x, &mut one);
            assert_eq!(words, one, "{storage:?}");
        }
    }

    #[test]
    fn names_parse_back() {
        for s in [XStorage::F32, XStorage::F16, XStorage::U8] {
            assert_eq!(XStorage::parse(s.name()).unwrap(), s);
        }
        assert!(XStorage::parse("f64").is_err());
        // Whole groups of four words: 2, 3, 9 and 5 words round up to 4, 4, 12 and 8.
        assert_eq!(XStorage::U8.bytes(5), 16);
        assert_eq!(XStorage::F16.bytes(5), 16);
        assert_eq!(XStorage::F16.bytes(17), 48);
        assert_eq!(XStorage::F32.bytes(5), 32);
        assert_eq!(XStorage::F32.bytes(4), 16);
    }
}
