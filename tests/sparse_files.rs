//! Sparse files read in place: a directory of CSR arrays (`data.npy`, `indices.npy`,
//! `indptr.npy`, optionally `shape.npy`) and an uncompressed `.npz` whose arrays already
//! have the layout of the rows (float32, int32/uint32, int64/uint64, little-endian,
//! aligned) are memory-mapped rather than read; other types are converted; the rows are
//! the same either way, and bad directories are refused in one sentence naming the file.

mod common;

use std::path::Path;

use common::{npy_member, write_npy};
use softmax_regression::SplitMix64;
use softmax_regression::data::Csr;
use softmax_regression::formats::{self, LoadOptions, SparseRows, load_sparse};

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

/// One array of a directory: (name, NumPy type, raw data).
type Member = (&'static str, &'static str, Vec<u8>);

fn bytes<T: bytemuck::Pod>(v: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(v).to_vec()
}

/// Writes `dir/NAME.npy` for each (name, descr, data), 1-D of the data's length in
/// elements of `descr`'s size.
fn write_dir(dir: &Path, members: &[Member]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, descr, data) in members {
        let size: usize = descr[2..].parse().unwrap();
        write_npy(
            &dir.join(format!("{name}.npy")),
            descr,
            &[data.len() / size],
            data,
        );
    }
}

/// The matrix's directory in the layout of the rows: float32, int32, int64, shape int64.
fn native_members() -> Vec<Member> {
    let (indptr, indices, values) = matrix();
    let indptr: Vec<i64> = indptr.iter().map(|&v| v as i64).collect();
    let indices: Vec<i32> = indices.iter().map(|&v| v as i32).collect();
    vec![
        ("data", "<f4", bytes(&values)),
        ("indices", "<i4", bytes(&indices)),
        ("indptr", "<i8", bytes(&indptr)),
        ("shape", "<i8", bytes(&[7i64, 11])),
    ]
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

#[test]
fn a_directory_in_the_layout_of_the_rows_is_mapped_and_reads_as_the_matrix() {
    let dir = common::scratch("csr-dir-native").join("x");
    write_dir(&dir, &native_members());
    let x = read(&dir);
    assert!(x.values.is_mapped() && x.indices.is_mapped() && x.indptr.is_mapped());
    let csr = Csr::try_from(x).unwrap();
    assert!(csr.is_mapped());
    assert_eq!(csr, expected());
    // The dense reader takes the directory too, expanding it.
    let dense = formats::load(&dir, &LoadOptions::default()).unwrap().x;
    assert_eq!(dense, expected().to_dense());
}

/// Every other element type is converted to the same rows, array by array: the arrays
/// whose type matches stay mapped.
#[test]
fn other_types_are_converted_to_the_same_rows() {
    let root = common::scratch("csr-dir-converted");
    let (indptr, indices, values) = matrix();
    let f64s: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let big: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let i64s: Vec<i64> = indices.iter().map(|&v| i64::from(v)).collect();
    let i16s: Vec<i16> = indices.iter().map(|&v| v as i16).collect();
    let i32_offsets: Vec<i32> = indptr.iter().map(|&v| v as i32).collect();
    let cases: [(&str, usize, Member); 7] = [
        ("data-f8", 0, ("data", "<f8", bytes(&f64s))),
        ("data-big-endian", 0, ("data", ">f4", big)),
        ("indices-i8", 1, ("indices", "<i8", bytes(&i64s))),
        ("indices-i2", 1, ("indices", "<i2", bytes(&i16s))),
        ("indices-u4", 1, ("indices", "<u4", bytes(&indices))),
        ("indptr-i4", 2, ("indptr", "<i4", bytes(&i32_offsets))),
        ("indptr-u8", 2, ("indptr", "<u8", bytes(&indptr))),
    ];
    for (name, at, member) in cases {
        let mut members = native_members();
        members[at] = member;
        let dir = root.join(name);
        write_dir(&dir, &members);
        let x = read(&dir);
        let mapped = [
            x.values.is_mapped(),
            x.indices.is_mapped(),
            x.indptr.is_mapped(),
        ];
        let viewed = name == "indices-u4" || name == "indptr-u8";
        assert_eq!(mapped[at], viewed, "{name}: {mapped:?}");
        assert!(
            mapped.iter().enumerate().all(|(i, &m)| m || i == at),
            "{name}: {mapped:?}"
        );
        assert_eq!(Csr::try_from(x).unwrap(), expected(), "{name}");
    }
}

/// Without `shape.npy`, n is the largest index plus one, or the width the caller expects
/// (a model's n features).
#[test]
fn a_directory_without_shape_takes_n_from_its_largest_index_or_the_caller() {
    let dir = common::scratch("csr-dir-no-shape").join("x");
    let mut members = native_members();
    members.pop();
    write_dir(&dir, &members);
    let x = read(&dir);
    assert_eq!(
        (x.n_rows, x.n_cols),
        (7, 11),
        "column 10 is the largest stored"
    );
    let options = LoadOptions {
        n_features: Some(20),
        ..LoadOptions::default()
    };
    let wide = load_sparse(&dir, &options).unwrap().x;
    assert_eq!((wide.n_rows, wide.n_cols), (7, 20));
    assert!(wide.values.is_mapped());
    let options = LoadOptions {
        n_features: Some(5),
        ..LoadOptions::default()
    };
    let err = load_sparse(&dir, &options).unwrap_err().message;
    assert!(
        err.contains("indices.npy entry") && err.contains("not a column from 0 to 4"),
        "{err}"
    );
}

/// Columns out of order or repeated are sorted and summed, as for an `.npz` (SciPy's
/// `sum_duplicates`): such arrays cannot be viewed as rows, so they are read.
#[test]
fn unsorted_or_repeated_columns_are_sorted_and_summed() {
    let dir = common::scratch("csr-dir-unsorted").join("x");
    write_dir(
        &dir,
        &[
            ("data", "<f4", bytes(&[1.0f32, 2.0, 0.5, 4.0])),
            ("indices", "<i4", bytes(&[3i32, 1, 3, 0])),
            ("indptr", "<i8", bytes(&[0i64, 3, 4])),
            ("shape", "<i8", bytes(&[2i64, 5])),
        ],
    );
    let x = read(&dir);
    assert!(!x.values.is_mapped());
    assert_eq!(x.indptr.to_vec(), [0, 2, 3]);
    assert_eq!(x.indices.to_vec(), [1, 3, 0]);
    assert_eq!(x.values.to_vec(), [2.0, 1.5, 4.0]);
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

#[test]
fn bad_directories_are_refused_naming_the_file_and_the_fault() {
    let root = common::scratch("csr-dir-bad");
    let refused = |name: &str, edit: &dyn Fn(&mut Vec<Member>)| {
        let dir = root.join(name);
        let mut members = native_members();
        edit(&mut members);
        write_dir(&dir, &members);
        let err = load_sparse(&dir, &LoadOptions::default()).unwrap_err();
        assert_eq!(err.path, dir);
        let shown = dir.display().to_string();
        assert!(err.message.starts_with(&format!("{shown}: ")), "{err}");
        err.message[shown.len() + 2..].to_string()
    };
    let without = |member: &'static str| move |m: &mut Vec<Member>| m.retain(|e| e.0 != member);
    let set = |at: usize, descr: &'static str, data: Vec<u8>| {
        move |m: &mut Vec<Member>| {
            m[at].1 = descr;
            m[at].2 = data.clone();
        }
    };
    let (indptr, indices, values) = matrix();
    let nnz = values.len();
    let i32s = |v: &[u32]| bytes(&v.iter().map(|&c| c as i32).collect::<Vec<_>>());
    let lengths = format!(
        "indices.npy holds {} entries but data.npy holds {nnz}",
        nnz - 1
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no-indptr",
            refused("no-indptr", &without("indptr")),
            "has no indptr.npy; a directory of sparse rows holds data.npy, indices.npy and indptr.npy",
        ),
        (
            "no-data",
            refused("no-data", &without("data")),
            "has no data.npy",
        ),
        (
            "float-indices",
            refused(
                "float-indices",
                &set(
                    1,
                    "<f8",
                    bytes(&indices.iter().map(|&c| f64::from(c)).collect::<Vec<_>>()),
                ),
            ),
            "indices.npy has dtype '<f8' (float64); its entries must be integers",
        ),
        (
            "lengths",
            refused("lengths", &set(1, "<i4", i32s(&indices[1..]))),
            &lengths,
        ),
        (
            "negative-index",
            refused("negative-index", &{
                let mut bad: Vec<i32> = indices.iter().map(|&c| c as i32).collect();
                bad[0] = -1;
                set(1, "<i4", bytes(&bad))
            }),
            "indices.npy entry 1 is -1, not a column from 0 to 10",
        ),
        (
            "decreasing",
            refused("decreasing", &{
                let mut bad: Vec<i64> = indptr.iter().map(|&v| v as i64).collect();
                bad[2] = bad[3] + 1;
                set(2, "<i8", bytes(&bad))
            }),
            "indptr.npy decreases at entry 4",
        ),
        (
            "rows",
            refused("rows", &set(3, "<i8", bytes(&[9i64, 11]))),
            "indptr.npy holds 8 offsets; a shape of (9, 11) needs 10",
        ),
        (
            "nan",
            refused("nan", &{
                let mut bad = values.clone();
                bad[1] = f32::NAN;
                set(0, "<f4", bytes(&bad))
            }),
            "value NaN is not finite",
        ),
        (
            "shape",
            refused("shape", &set(3, "<i8", bytes(&[7i64]))),
            "shape.npy does not hold two numbers (m, n)",
        ),
    ];
    for (name, err, needle) in cases {
        assert!(err.contains(needle), "{name}: {err}");
        assert!(!err.contains('\n'), "{name}: one sentence: {err}");
    }
    let empty = root.join("empty");
    write_dir(
        &empty,
        &[
            ("data", "<f4", Vec::new()),
            ("indices", "<i4", Vec::new()),
            ("indptr", "<i8", bytes(&[0i64, 0])),
        ],
    );
    let err = load_sparse(&empty, &LoadOptions::default())
        .unwrap_err()
        .message;
    assert!(
        err.contains("no shape.npy, so its number of columns is unknown"),
        "{err}"
    );
}

/// Needs python3 with numpy and scipy; CI installs them and runs it with `--ignored`.
/// A matrix saved by NumPy as a directory (SciPy's int32 offsets, then int64 ones) and by
/// `scipy.sparse.save_npz(..., compressed=False)` reads as the same rows, with the arrays
/// of the rows' layout mapped.
#[test]
#[ignore = "needs python3 with numpy and scipy; run with --ignored"]
fn a_directory_and_an_uncompressed_npz_written_by_scipy_read_as_one_matrix() {
    let root = common::scratch("csr-dir-scipy");
    let script = r#"
import sys, os
import numpy as np, scipy.sparse as sp
root = sys.argv[1]
x = sp.random(300, 1000, density=0.02, format='csr', dtype=np.float32, random_state=7)
x.data += 0.5
for name, indptr in [('dir32', x.indptr), ('dir64', x.indptr.astype(np.int64))]:
    os.makedirs(os.path.join(root, name))
    np.save(os.path.join(root, name, 'data.npy'), x.data)
    np.save(os.path.join(root, name, 'indices.npy'), x.indices)
    np.save(os.path.join(root, name, 'indptr.npy'), indptr)
    np.save(os.path.join(root, name, 'shape.npy'), np.array(x.shape, dtype=np.int64))
sp.save_npz(os.path.join(root, 'x.npz'), x, compressed=False)
print(x.nnz, x.indptr.dtype, x.indices.dtype, float(x.data.astype(np.float64).sum()))
"#;
    let out = common::python(script, &[root.to_str().unwrap()]);
    let fields: Vec<&str> = out.split_whitespace().collect();
    let (nnz, sum): (usize, f64) = (fields[0].parse().unwrap(), fields[3].parse().unwrap());
    assert_eq!(&fields[1..3], ["int32", "int32"], "{out}");
    let dir32 = read(&root.join("dir32"));
    assert!(dir32.values.is_mapped() && dir32.indices.is_mapped());
    assert!(!dir32.indptr.is_mapped(), "int32 offsets are converted");
    let dir64 = read(&root.join("dir64"));
    assert!(dir64.indptr.is_mapped());
    let npz = read(&root.join("x.npz"));
    assert_eq!(
        (dir32.n_rows, dir32.n_cols, dir32.values.len()),
        (300, 1000, nnz)
    );
    let total: f64 = dir32.values.iter().map(|&v| f64::from(v)).sum();
    assert!((total - sum).abs() <= 1e-9 * sum.abs(), "{total} vs {sum}");
    let csr = Csr::try_from(dir32).unwrap();
    assert_eq!(Csr::try_from(dir64).unwrap(), csr);
    assert_eq!(Csr::try_from(npz).unwrap(), csr);
}

/// The binary takes a directory wherever it takes sparse files: train, predict, evaluate.
#[test]
fn train_predict_and_evaluate_take_a_directory() {
    use common::{run, s, stderr, stdout};
    let root = common::scratch("csr-dir-cli");
    let dir = root.join("x");
    write_dir(&dir, &native_members());
    let labels = root.join("y.txt");
    std::fs::write(&labels, "0\n1\n2\n0\n1\n2\n0\n").unwrap();
    let model = root.join("m.safetensors");
    let o = run(&[
        "train",
        "--data",
        s(&dir),
        "--labels",
        s(&labels),
        "--backend",
        "cpu",
        "--epochs",
        "5",
        "--out",
        s(&model),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let predictions = root.join("p.txt");
    let o = run(&[
        "predict",
        "--model",
        s(&model),
        "--data",
        s(&dir),
        "--backend",
        "cpu",
        "--out",
        s(&predictions),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let predicted = std::fs::read_to_string(&predictions).unwrap();
    assert_eq!(predicted.lines().count(), 7, "{predicted}");
    let o = run(&[
        "evaluate",
        "--model",
        s(&model),
        "--data",
        s(&dir),
        "--labels",
        s(&labels),
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("accuracy"), "{}", stdout(&o));
}

/// Needs python3 with numpy and scipy; CI runs it with `--ignored`. What `synth --density`
/// writes loads as the README says, with SciPy's own CSR checks passing.
#[test]
#[ignore = "needs python3 with numpy and scipy; run with --ignored"]
fn synth_density_output_loads_with_scipy() {
    use common::{run, s, stderr};
    let root = common::scratch("csr-dir-synth-scipy");
    let (dir, y) = (root.join("x"), root.join("y.npy"));
    let o = run(&[
        "synth",
        "--rows",
        "500",
        "--features",
        "2000",
        "--classes",
        "4",
        "--density",
        "0.01",
        "--out",
        s(&dir),
        "--labels",
        s(&y),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let script = r#"
import sys, os
import numpy as np, scipy.sparse as sp
d, y = sys.argv[1], sys.argv[2]
load = lambda f: np.load(os.path.join(d, f))
x = sp.csr_matrix((load('data.npy'), load('indices.npy'), load('indptr.npy')), shape=tuple(load('shape.npy')))
x.check_format(full_check=True)
labels = np.load(y)
print(x.shape[0], x.shape[1], x.nnz, x.dtype, x.indices.dtype, load('indptr.npy').dtype, x.has_canonical_format, labels.dtype, labels.shape[0], repr(float(x.data.astype(np.float64).sum())))
"#;
    let out = common::python(script, &[s(&dir), s(&y)]);
    let fields: Vec<&str> = out.split_whitespace().collect();
    let x = Csr::try_from(read(&dir)).unwrap();
    let total: f64 = x.values().iter().map(|&v| f64::from(v)).sum();
    let nnz = x.nnz().to_string();
    assert_eq!(
        &fields[..9],
        [
            "500", "2000", &nnz, "float32", "int32", "int64", "True", "int32", "500"
        ],
        "{out}"
    );
    let sum: f64 = fields[9].parse().unwrap();
    assert!((sum - total).abs() <= 1e-9 * total, "{sum} vs {total}");
}
