//! The arrays of sparse rows as they are held: owned, or viewed in place in a memory-mapped
//! file, so that a large CSR matrix saved with the layout the device reads (float32
//! values, 32-bit column indices, 64-bit row offsets, little-endian, aligned) costs no
//! copy and no more resident memory than the pages being read.

use std::fmt;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use bytemuck::Pod;
use memmap2::Mmap;

use super::{FormatError, fail};

/// One array of a CSR matrix (its row offsets, column indices or values): a `Vec`, or a
/// view of `len` elements at byte `offset` of a memory-mapped file. Either way it reads
/// as a slice. A mapped file must not change while it is mapped (as with any reader of a
/// file being written).
#[derive(Clone)]
pub struct CsrArray<T: Pod>(Storage<T>);

#[derive(Clone)]
enum Storage<T> {
    Owned(Vec<T>),
    /// `offset` is a multiple of `T`'s alignment and `offset + len · size_of::<T>()` lies
    /// within the map: checked once by [`CsrArray::mapped`].
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
}

impl<T: Pod> CsrArray<T> {
    /// A view of `len` elements of `T` at byte `offset` of `map`, read as they lie (so
    /// little-endian on a little-endian machine); `None` when they do not lie within the
    /// map or are not aligned for `T`.
    pub(crate) fn mapped(map: Arc<Mmap>, offset: usize, len: usize) -> Option<Self> {
        let bytes = len
            .checked_mul(size_of::<T>())
            .and_then(|b| b.checked_add(offset))
            .and_then(|end| map.get(offset..end))?;
        bytemuck::try_cast_slice::<u8, T>(bytes).ok()?;
        Some(CsrArray(Storage::Mapped { map, offset, len }))
    }

    /// Whether the array is a view into a memory-mapped file rather than owned.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Storage::Mapped { .. })
    }
}

impl<T: Pod> Deref for CsrArray<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match &self.0 {
            Storage::Owned(v) => v,
            // In range and aligned: `mapped` checked both, and a map's length never changes.
            Storage::Mapped { map, offset, len } => {
                bytemuck::cast_slice(&map[*offset..*offset + *len * size_of::<T>()])
            }
        }
    }
}

impl<T: Pod> From<Vec<T>> for CsrArray<T> {
    fn from(v: Vec<T>) -> Self {
        CsrArray(Storage::Owned(v))
    }
}

impl<'a, T: Pod> IntoIterator for &'a CsrArray<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: Pod + PartialEq> PartialEq for CsrArray<T> {
    /// Equal when the elements are, however each is held.
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for CsrArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_mapped() {
            f.write_str("mapped ")?;
        }
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The file at `path` mapped read-only; `name` is how errors call it (the path itself, or
/// a member of a directory named by `path`'s parent).
pub(super) fn map_file(path: &Path, shown: &Path, name: &str) -> Result<Arc<Mmap>, FormatError> {
    let cannot = |e: std::io::Error| fail(shown, format_args!("cannot read {name}: {e}"));
    let file = File::open(path).map_err(cannot)?;
    // SAFETY: the map is read-only, and the documented contract (see `CsrArray`) is that
    // the file does not change while it is mapped.
    let map = unsafe { Mmap::map(&file) }.map_err(cannot)?;
    Ok(Arc::new(map))
}

/// Where `part` lies in `whole`, when it is a subslice of it.
pub(super) fn offset_in(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = part.as_ptr().addr().checked_sub(whole.as_ptr().addr())?;
    (start + part.len() <= whole.len()).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_array_reads_as_the_owned_one_and_refuses_misalignment() {
        let dir = std::env::temp_dir().join(format!("csr-array-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("values.bin");
        let values: Vec<u32> = (0..100).map(|i| i * 7 + 1).collect();
        let mut bytes = vec![0u8; 8];
        bytes.extend(bytemuck::cast_slice::<u32, u8>(&values));
        std::fs::write(&path, &bytes).unwrap();
        let map = map_file(&path, &path, "the file").unwrap();
        let mapped = CsrArray::<u32>::mapped(map.clone(), 8, 100).unwrap();
        assert!(mapped.is_mapped());
        let owned = CsrArray::from(values.clone());
        assert!(!owned.is_mapped());
        assert_eq!(mapped, owned);
        assert_eq!(&mapped[..], &values[..]);
        assert!(
            CsrArray::<u32>::mapped(map.clone(), 6, 10).is_none(),
            "misaligned"
        );
        assert!(
            CsrArray::<u32>::mapped(map.clone(), 8, 101).is_none(),
            "past the end"
        );
        assert!(
            CsrArray::<u64>::mapped(map, 4, 1).is_none(),
            "misaligned for u64"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
