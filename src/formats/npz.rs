//! SciPy's sparse `.npz` (`scipy.sparse.save_npz`, compressed or not): a zip archive of
//! `.npy` arrays. `format` names the layout (`csr`, `csc` or `coo`), `shape` is (m, n),
//! `data` holds the stored values, and `indices` with `indptr` (CSR, CSC) or `row` with
//! `col` (COO) place them. Every layout becomes CSR rows; within a row the columns are
//! sorted and a column given more than once gets the sum of its values, as SciPy's
//! `sum_duplicates` does.

use std::io::{Cursor, Read};
use std::path::Path;

use super::memory::available_memory;
use super::npy::{NpyType, parse_npy};
use super::sparse_arrays::{Column, compressed_entries, coo_entries, rows_of, strip};
use super::{FormatError, SparseRows, fail};

/// The arrays of one archive, read out of their members.
struct Archive<'p> {
    path: &'p Path,
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
        Ok(Archive { path, zip })
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
        self.member(name)?.ok_or_else(|| {
            fail(
                self.path,
                format_args!("has no {name}.npy; save it with scipy.sparse.save_npz"),
            )
        })
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
    let mut archive = Archive::open(path, bytes)?;
    let format_bytes = archive.required("format")?;
    let layout = layout(path, &format_bytes)?;
    let shape_bytes = archive.required("shape")?;
    let shape = Column::parse(path, "shape", &shape_bytes)?;
    if shape.len() != 2 {
        return Err(fail(path, "shape.npy does not hold two numbers (m, n)"));
    }
    let (m, n) = (
        shape.index(path, 0, u64::MAX, "a row count")? as usize,
        shape.index(path, 1, u64::MAX, "a column count")? as usize,
    );
    if m == 0 || n == 0 {
        return Err(fail(path, format_args!("has shape ({m}, {n}): no data")));
    }
    if n > u32::MAX as usize + 1 {
        return Err(fail(
            path,
            format_args!("has {n} columns, more than sparse rows can address (2³²)"),
        ));
    }
    let data_bytes = archive.required("data")?;
    let data = Column::parse(path, "data", &data_bytes)?;
    let entries = match layout.as_str() {
        "csr" | "csc" => {
            let (indices_bytes, indptr_bytes) =
                (archive.required("indices")?, archive.required("indptr")?);
            let indices = Column::parse(path, "indices", &indices_bytes)?;
            let indptr = Column::parse(path, "indptr", &indptr_bytes)?;
            let major = if layout == "csr" { m } else { n };
            compressed_entries(
                path,
                &data,
                &indices,
                &indptr,
                major,
                (m, n),
                layout == "csr",
            )?
        }
        "coo" => {
            let (row_bytes, col_bytes) = (archive.required("row")?, archive.required("col")?);
            let rows = Column::parse(path, "row", &row_bytes)?;
            let cols = Column::parse(path, "col", &col_bytes)?;
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
