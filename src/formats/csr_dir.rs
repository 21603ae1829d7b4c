//! A directory of SciPy's CSR arrays as `.npy` files: `data.npy` (the stored values),
//! `indices.npy` (their columns), `indptr.npy` (the row offsets) and optionally
//! `shape.npy` ((m, n); without it, n is the number of features the caller expects, else
//! the largest column index plus one). It is what
//! `synth --density` writes, and what NumPy saves of a `scipy.sparse.csr_matrix` x with
//! `np.save('dir/data.npy', x.data)` and so on for `x.indices`, `x.indptr` and
//! `np.array(x.shape)`. Each file is memory-mapped, and an array whose type is the one
//! the rows hold is viewed in place rather than read (see `sparse_arrays`).

use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use super::mapped::map_file;
use super::sparse_arrays::{Column, csr_rows, shape_pair};
use super::{FormatError, SparseRows, fail};

/// The rows of the CSR arrays in the directory `path`; `n_features` is n when the
/// directory has no `shape.npy`.
pub(super) fn load_csr_dir(
    path: &Path,
    n_features: Option<usize>,
) -> Result<SparseRows, FormatError> {
    let member = |name: &str| -> Result<Option<Arc<Mmap>>, FormatError> {
        let file = path.join(format!("{name}.npy"));
        match std::fs::symlink_metadata(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            _ => map_file(&file, path, &format!("{name}.npy")).map(Some),
        }
    };
    let required = |name: &str| {
        member(name)?.ok_or_else(|| {
            fail(
                path,
                format_args!(
                    "has no {name}.npy; a directory of sparse rows holds data.npy, indices.npy and indptr.npy (and optionally shape.npy)"
                ),
            )
        })
    };
    let (data_map, indices_map, indptr_map) =
        (required("data")?, required("indices")?, required("indptr")?);
    let shape = match member("shape")? {
        Some(map) => Some(shape_pair(path, &Column::parse(path, "shape", &map)?)?),
        None => None,
    };
    let data = Column::parse(path, "data", &data_map)?.in_map(&data_map);
    let indices = Column::parse(path, "indices", &indices_map)?.in_map(&indices_map);
    let indptr = Column::parse(path, "indptr", &indptr_map)?.in_map(&indptr_map);
    let rows = indptr.len().checked_sub(1).filter(|&m| m > 0);
    let shape = shape.or(rows.zip(n_features));
    csr_rows(path, shape, &data, &indices, &indptr)
}
