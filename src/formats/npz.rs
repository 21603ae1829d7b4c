//! SciPy's sparse `.npz` (`scipy.sparse.save_npz`, compressed or not): a zip archive of
//! `.npy` arrays. `format` names the layout (`csr`, `csc` or `coo`), `shape` is (m, n),
//! `data` holds the stored values, and `indices` with `indptr` (CSR, CSC) or `row` with
//! `col` (COO) place them. Every layout becomes CSR rows; within a row the columns are
//! sorted and a column given more than once gets the sum of its values, as SciPy's
//! `sum_duplicates` does.
//!
//! Read from a file, an archive is memory-mapped: the members it stores uncompressed
//! (`save_npz(..., compressed=False)`) are parsed where they lie, so a large CSR matrix
//! saved with the layout the rows hold is viewed in place, not copied (see
//! `sparse_arrays`). Such a member's CRC-32 is not checked, as that would read it all;
//! its values are checked as any input's are.

use std::borrow::Cow;
use std::io::{Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use super::mapped::offset_in;
use super::memory::available_memory;
use super::npy::{NpyType, parse_npy};
use super::sparse_arrays::{
    Column, compressed_entries, coo_entries, csr_rows, rows_of, shape_pair, strip,
};
use super::{FormatError, SparseRows, fail};

/// The arrays of one archive, read out of their members, or found where they lie when
/// the archive is a mapped file that stores them uncompressed.
struct Archive<'p> {
    path: &'p Path,
    bytes: &'p [u8],
    /// The mapping that `bytes` is, when it is one.
    map: Option<&'p Arc<Mmap>>,
    zip: zip::ZipArchive<Cursor<&'p [u8]>>,
}

impl<'p> Archive<'p> {
    fn open(path: &'p Path, bytes: &'p [u8]) -> Result<Self, FormatError> {
        let zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            fail(
                path,
                format_args!("is not an .npz archive ({e}); save it with scipy.sparse.save_npz"),
            )
        })?;
        Ok(Archive {
            path,
            bytes,
            map: None,
            zip,
        })
    }

    /// The bytes of member `name.npy`: where they lie when the archive is mapped and
    /// stores the member uncompressed, else read out of it.
    fn array(&mut self, name: &str) -> Result<Option<Cow<'p, [u8]>>, FormatError> {
        if self.map.is_some()
            && let Ok(file) = self.zip.by_name(&format!("{name}.npy"))
            && file.compression() == zip::CompressionMethod::Stored
            && !file.encrypted()
            && file.compressed_size() == file.size()
            && let Some(start) = file.data_start()
        {
            let bytes = self.bytes;
            let stored = usize::try_from(start).ok().and_then(|start| {
                let end = start.checked_add(usize::try_from(file.size()).ok()?)?;
                bytes.get(start..end)
            });
            if let Some(stored) = stored {
                return Ok(Some(Cow::Borrowed(stored)));
            }
        }
        Ok(self.member(name)?.map(Cow::Owned))
    }

    /// [`Archive::array`] of a member the archive must have.
    fn required_array(&mut self, name: &str) -> Result<Cow<'p, [u8]>, FormatError> {
        self.array(name)?.ok_or_else(|| self.missing(name))
    }

    /// A member's array, viewed in the mapping when its bytes lie there.
    fn column<'a>(&self, name: &'static str, bytes: &'a [u8]) -> Result<Column<'a>, FormatError>
    where
        'p: 'a,
    {
        let column = Column::parse(self.path, name, bytes)?;
        Ok(match self.map {
            Some(map) if offset_in(map, bytes).is_some() => column.in_map(map),
            _ => column,
        })
    }

    fn missing(&self, name: &str) -> FormatError {
        fail(
            self.path,
            format_args!("has no {name}.npy; save it with scipy.sparse.save_npz"),
        )
    }

    /// The bytes of member `name.npy`, no more than it declares, or `None` when the
    /// archive has no such member.
    fn member(&mut self, name: &str) -> Result<Option<Vec<u8>>, FormatError> {
        let path = self.path;
        let mut file = match self.zip.by_name(&format!("{name}.npy")) {
            Ok(file) => file,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(fail(path, format_args!("cannot read {name}.npy: {e}"))),
        };
        let size = file.size();
        if let Some(memory) = available_memory()
            && size > memory
        {
            return Err(fail(
                path,
                format_args!(
                    "{name}.npy holds {}, more than the {} of memory available",
                    crate::util::human_bytes(size),
                    crate::util::human_bytes(memory)
                ),
            ));
        }
        // The declared size is a claim of the archive: memory grows with what the member
        // really holds, never allocated up front from the claim.
        let mut out = Vec::with_capacity(size.min(1 << 20) as usize);
        // One byte beyond the declared size shows a member that holds more than it says.
        (&mut file)
            .take(size.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| fail(path, format_args!("cannot read {name}.npy: {e}")))?;
        if out.len() as u64 != size {
            return Err(fail(
                path,
                format_args!("{name}.npy does not hold the {size} bytes its entry declares"),
            ));
        }
        Ok(Some(out))
    }

    fn required(&mut self, name: &str) -> Result<Vec<u8>, FormatError> {
        self.member(name)?.ok_or_else(|| self.missing(name))
    }
}

/// The archive's layout: `csr`, `csc` or `coo`.
fn layout(path: &Path, bytes: &[u8]) -> Result<String, FormatError> {
    let npy = parse_npy(path, bytes).map_err(|e| {
        fail(
            path,
            format_args!("format.npy: {}", strip(path, &e.message)),
        )
    })?;
    let text = match npy.dtype {
        Some(NpyType::Bytes(_)) => String::from_utf8_lossy(npy.data).into_owned(),
        Some(NpyType::Unicode(..)) => npy
            .data
            .chunks(4)
            .filter_map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => String::new(),
    };
    Ok(text.trim_end_matches('\0').to_string())
}

/// The rows of a SciPy sparse `.npz`, as CSR arrays.
pub(super) fn load_npz_sparse(path: &Path, bytes: &[u8]) -> Result<SparseRows, FormatError> {
    npz_rows_in(Archive::open(path, bytes)?)
}

/// [`load_npz_sparse`] on a mapped file: members stored uncompressed are parsed where
/// they lie, and a CSR matrix's arrays are viewed there when their types allow.
pub(super) fn load_npz_mapped(path: &Path, map: &Arc<Mmap>) -> Result<SparseRows, FormatError> {
    let mut archive = Archive::open(path, map)?;
    archive.map = Some(map);
    npz_rows_in(archive)
}

fn npz_rows_in(mut archive: Archive<'_>) -> Result<SparseRows, FormatError> {
    let path = archive.path;
    let format_bytes = archive.required("format")?;
    let layout = layout(path, &format_bytes)?;
    let shape_bytes = archive.required("shape")?;
    let (m, n) = shape_pair(path, &Column::parse(path, "shape", &shape_bytes)?)?;
    let data_bytes = archive.required_array("data")?;
    let data = archive.column("data", &data_bytes)?;
    let entries = match layout.as_str() {
        "csr" | "csc" => {
            let (indices_bytes, indptr_bytes) = (
                archive.required_array("indices")?,
                archive.required_array("indptr")?,
            );
            let indices = archive.column("indices", &indices_bytes)?;
            let indptr = archive.column("indptr", &indptr_bytes)?;
            if layout == "csr" {
                return csr_rows(path, Some((m, n)), &data, &indices, &indptr);
            }
            compressed_entries(path, &data, &indices, &indptr, n, (m, n), false)?
        }
        "coo" => {
            let (row_bytes, col_bytes) = (
                archive.required_array("row")?,
                archive.required_array("col")?,
            );
            let rows = archive.column("row", &row_bytes)?;
            let cols = archive.column("col", &col_bytes)?;
            coo_entries(path, &data, &rows, &cols, (m, n))?
        }
        other => {
            return Err(fail(
                path,
                format_args!(
                    "holds a sparse matrix in format {other:?}; save it as csr, csc or coo (x.tocsr())"
                ),
            ));
        }
    };
    rows_of(path, (m, n), entries)
}
