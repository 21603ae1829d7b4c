//! Sparse files read in place: an uncompressed `.npz` whose arrays already have the
//! layout of the rows (float32, int32/uint32, int64/uint64, little-endian, aligned) is
//! memory-mapped rather than read; other types are converted; the rows are the same
//! either way.

mod common;

use std::path::Path;

use common::npy_member;
use softmax_regression::SplitMix64;
use softmax_regression::data::Csr;
use softmax_regression::formats::{LoadOptions, SparseRows, load_sparse};

/// A 7 × 11 matrix: an empty row (1), an empty column (4), a row holding most columns
/// (3), seeded values elsewhere, as (indptr, indices, values).
fn matrix() -> (Vec<u64>, Vec<u32>, Vec<f32>) {
    let mut rng = SplitMix64::new(19);
    let (mut indptr, mut indices, mut values) = (vec![0u64], Vec::new(), Vec::new());
    for r in 0..7 {
        for c in 0..11u32 {
            let keep = match r {
                1 => false,
                3 => c != 4,
                _ => c != 4 && rng.below(3) == 0,
            };
            if keep {
                indices.push(c);
                values.push((rng.normal() * 3.0) as f32);
            }
        }
        indptr.push(values.len() as u64);
    }
    (indptr, indices, values)
}

fn bytes<T: bytemuck::Pod>(v: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

fn read(path: &Path) -> SparseRows {
    load_sparse(path, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .x
}

fn expected() -> Csr {
    let (indptr, indices, values) = matrix();
    Csr::new(7, 11, indptr, indices, values).unwrap()
}

/// An `.npz` whose members are stored uncompressed at aligned offsets is mapped like a
/// directory; unaligned (as `save_npz(compressed=False)` writes them) or compressed
/// members are read; the rows are the same.
#[test]
fn an_aligned_uncompressed_npz_is_mapped_and_others_read() {
    use std::io::Write;
    let root = common::scratch("npz-mapped");
    let (indptr, indices, values) = matrix();
    let indptr: Vec<i64> = indptr.iter().map(|&v| v as i64).collect();
    let members = [
        ("format", npy_member("|S3", &[], b"csr")),
        ("shape", npy_member("<i8", &[2], &bytes(&[7i64, 11]))),
        ("data", npy_member("<f4", &[values.len()], &bytes(&values))),
        (
            "indices",
            npy_member("<u4", &[indices.len()], &bytes(&indices)),
        ),
        (
            "indptr",
            npy_member("<i8", &[indptr.len()], &bytes(&indptr)),
        ),
    ];
    let write = |name: &str, method, alignment| {
        let path = root.join(name);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .with_alignment(alignment);
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        // A one-byte member first, so that an unaligned archive is misaligned for sure.
        zip.start_file("pad.txt", options).unwrap();
        zip.write_all(b"x").unwrap();
        for (name, bytes) in &members {
            zip.start_file(format!("{name}.npy"), options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        read(&path)
    };
    let stored = zip::CompressionMethod::Stored;
    let aligned = write("aligned.npz", stored, 64);
    assert!(aligned.values.is_mapped() && aligned.indices.is_mapped());
    assert!(aligned.indptr.is_mapped());
    let unaligned = write("unaligned.npz", stored, 1);
    let compressed = write("compressed.npz", zip::CompressionMethod::Deflated, 64);
    for x in [&unaligned, &compressed] {
        assert!(!x.values.is_mapped() && !x.indices.is_mapped());
    }
    for x in [aligned, unaligned, compressed] {
        assert_eq!(Csr::try_from(x).unwrap(), expected());
    }
}
