//! The bad-input matrix. Every case runs the binary twice, once with the output file absent
//! and once with an older file in its place, and checks: exit code 2, exactly one sentence
//! on stderr naming the file, row, column or flag, no output file created and the older one
//! left as it was. The library-level half checks that the same files and values give typed
//! errors (never a panic) through `formats::load`, `Dataset::new` and `Model::load`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::write_npy;
use ndarray::Array2;
use softmax_regression::formats::{self, LoadOptions};
use softmax_regression::{Dataset, Error, Model};

const BIN: &str = env!("CARGO_BIN_EXE_softmax-regression");

/// The fixture files, written once per test binary.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!(
            "softmax-regression-bad-input-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = |name: &str, body: &str| std::fs::write(dir.join(name), body).unwrap();
        text("nan.csv", "1,2,0\n3,nan,1\n");
        text("inf.csv", "1,-inf,0\n2,3,1\n");
        text("empty.csv", "");
        text("header_only.csv", "a,b,label\n");
        text("ragged.csv", "1,2,0\n3,4,1\n5,1\n");
        text("word.csv", "1,2,0\n3,abc,1\n");
        text("two_columns.csv", "1,2\n3,4\n");
        text("one_class.csv", "1,2,0\n3,4,0\n");
        text("label_5.csv", "1,2,0\n3,4,5\n");
        text("three_labels.txt", "0\n1\n2\n");
        text("labels_only.csv", "0\n1\n");
        text("bad_index.libsvm", "1 1:0.5\n0 x:1\n");
        text("index_0.libsvm", "1 1:0.5\n0 0:1\n");
        text("huge_index.libsvm", "1 1:0.5\n0 888888831:1\n");
        text("good.csv", "1,2,0\n3,4,1\n0,1,1\n");
        text("folds_negative.txt", "0\n-1\n1\n");
        text("folds_two.txt", "0\n1\n");
        text("folds_gap.txt", "0\n2\n2\n");
        text("names.csv", "1,2,cat\n3,4,dog\n");
        text("four_columns.csv", "1,2,3,4\n5,6,7,8\n");
        text("fraction_label.csv", "1,2,0\n3,4,1\n5,6,1.5\n");
        text("word_label.csv", "1,2,0\n3,4,cat\n5,6,1\n");
        text("nan_label.csv", "1,2,0\n3,4,nan\n5,6,1\n");
        text("million_label.csv", "1,2,0\n3,4,1\n5,6,2\n7,8,1000000\n");
        text("4e9_label.csv", "1,2,0\n3,4,1\n5,6,2\n7,8,4000000000\n");
        text("word_header.csv", "a,b,label\n1,2,0\n3,4,1\n");
        text("decimal_commas.csv", "1,5;2,0;0\n3,1;4,2;1\n");
        text("semicolons.csv", "1;2;0\n3;4;1\n");
        let four = |v: f32| -> Vec<u8> { v.to_le_bytes().repeat(4) };
        let d = |name: &str| dir.join(name);
        write_npy(&d("complex.npy"), "<c8", &[2, 2], &[0u8; 32]);
        write_npy(&d("object.npy"), "|O", &[2], &[0x80, 0x02, b'N', b'.']);
        write_npy(&d("truncated.npy"), "<f4", &[4, 4], &[0u8; 60]);
        write_npy(&d("features.npy"), "<f4", &[2, 2], &four(1.0));
        write_npy(
            &d("labels.npy"),
            "<i8",
            &[2],
            &[0i64.to_le_bytes(), 1i64.to_le_bytes()].concat(),
        );
        let idx = |dims: &[u32], data: &[u8]| -> Vec<u8> {
            let mut b = vec![0, 0, 0x08, dims.len() as u8];
            dims.iter().for_each(|x| b.extend(x.to_be_bytes()));
            b.extend(data);
            b
        };
        std::fs::write(d("truncated.idx"), idx(&[2, 2, 2], &[7; 5])).unwrap();
        std::fs::write(d("sizes.idx"), idx(&[2, 2], &[7; 9])).unwrap();
        let mut magic = idx(&[2, 2], &[7; 4]);
        magic[0] = 0x12;
        std::fs::write(d("magic.idx"), magic).unwrap();
        // Reads bounded by the format, and values read as meant.
        write_npy(&d("cube.npy"), "<f4", &[2, 2, 2], &four(1.0).repeat(2));
        let f8: Vec<u8> = [0.5f64, 2.0, 1e300, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        write_npy(&d("wide_f8.npy"), "<f8", &[2, 2], &f8);
        let nan: Vec<u8> = [0.5f32, 2.0, f32::NAN, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        write_npy(&d("nan_f4.npy"), "<f4", &[2, 2], &nan);
        text("beyond.csv", "1,2,0\n1e300,3,1\n");
        text("beyond.libsvm", "1 1:0.5\n0 2:1e300\n");
        text("nan.libsvm", "1 1:0.5\n0 2:nan\n");
        text("unsorted.libsvm", "1 1:0.5\n0 3:1 2:1\n");
        text("two_labels.txt", "0\n1\n");
        // SciPy sparse .npz files (2 × 3 CSR) with one fault each.
        let csr = |name: &str, layout: &str, indptr: &[i32], indices: &[i32], data: &[f32]| {
            let ints = |v: &[i32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
            let floats: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
            let shape: Vec<u8> = [2i64, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
            let members = [
                ("shape", common::npy_member("<i8", &[2], &shape)),
                ("data", common::npy_member("<f4", &[data.len()], &floats)),
                (
                    "indices",
                    common::npy_member("<i4", &[indices.len()], &ints(indices)),
                ),
                (
                    "indptr",
                    common::npy_member("<i4", &[indptr.len()], &ints(indptr)),
                ),
            ];
            common::npz(&d(name), layout, &members, false);
        };
        csr("decreasing.npz", "csr", &[0, 2, 1], &[0, 1], &[1.0, 1.0]);
        csr("nnz.npz", "csr", &[0, 1, 2], &[0], &[1.0, 1.0]);
        csr("beyond.npz", "csr", &[0, 1, 1], &[3], &[1.0]);
        csr("nan.npz", "csr", &[0, 0, 1], &[2], &[f32::NAN]);
        csr("bsr.npz", "bsr", &[0, 0, 1], &[2], &[1.0]);
        csr("good.npz", "csr", &[0, 1, 2], &[0, 2], &[1.0, 2.0]);
        // Directories of CSR arrays (2 × 3) with one fault each.
        let csr_dir = |name: &str, members: &[(&str, &str, Vec<u8>)]| {
            std::fs::create_dir_all(d(name)).unwrap();
            for (member, descr, data) in members {
                let size: usize = descr[2..].parse().unwrap();
                let len = data.len() / size;
                write_npy(&d(name).join(format!("{member}.npy")), descr, &[len], data);
            }
        };
        let le = |v: &[i64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let f4: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let i4: Vec<u8> = [0i32, 2].iter().flat_map(|x| x.to_le_bytes()).collect();
        let f8: Vec<u8> = [0.0f64, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        csr_dir(
            "csr_no_indptr",
            &[("data", "<f4", f4.clone()), ("indices", "<i4", i4.clone())],
        );
        csr_dir(
            "csr_float_indices",
            &[
                ("data", "<f4", f4.clone()),
                ("indices", "<f8", f8),
                ("indptr", "<i8", le(&[0, 1, 2])),
            ],
        );
        csr_dir(
            "csr_lengths",
            &[
                ("data", "<f4", f4),
                ("indices", "<i4", i4[..4].to_vec()),
                ("indptr", "<i8", le(&[0, 1, 2])),
                ("shape", "<i8", le(&[2, 3])),
            ],
        );
        text("beyond_weights.txt", "1\n1e300\n1\n");
        // 16 MiB of zeros after a header that declares 1000 bytes, in a 16 KiB file.
        let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut bomb, &idx(&[10, 10, 10], &vec![0; 1 << 24])).unwrap();
        std::fs::write(d("bomb-idx3-ubyte.gz"), bomb.finish().unwrap()).unwrap();
        // Model files: a good one (3 classes, 2 features) and damaged variants.
        let model = |weight: &[f32], wshape: Vec<usize>, bias: &[f32], bshape: Vec<usize>| {
            let meta = std::collections::HashMap::from([(
                "format".to_string(),
                softmax_regression::model_file::FORMAT.to_string(),
            )]);
            let (wb, bb): (&[u8], &[u8]) =
                (bytemuck::cast_slice(weight), bytemuck::cast_slice(bias));
            let views = vec![
                (
                    "weight",
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, wshape, wb)
                        .unwrap(),
                ),
                (
                    "bias",
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, bshape, bb)
                        .unwrap(),
                ),
            ];
            safetensors::serialize(views, Some(meta)).unwrap()
        };
        let good = model(&[0.5; 6], vec![3, 2], &[0.0; 3], vec![3]);
        std::fs::write(d("good.safetensors"), &good).unwrap();
        std::fs::write(d("truncated.safetensors"), &good[..good.len() - 7]).unwrap();
        std::fs::write(d("not_a_model.safetensors"), b"hello, not a model").unwrap();
        std::fs::write(
            d("wrong_shape.safetensors"),
            model(&[0.5; 6], vec![3, 2], &[0.0; 2], vec![2]),
        )
        .unwrap();
        let mut nan = [0.5f32; 6];
        nan[3] = f32::NAN;
        std::fs::write(
            d("nan.safetensors"),
            model(&nan, vec![3, 2], &[0.0; 3], vec![3]),
        )
        .unwrap();
        // A model of 5 features: the wrong dataset for the 2-feature files.
        std::fs::write(
            d("five_features.safetensors"),
            model(&[0.5; 15], vec![3, 5], &[0.0; 3], vec![3]),
        )
        .unwrap();
        // Standardized models (2 features) with a damaged `feature_mean` / `feature_scale`.
        let standardized = |extra: &[(&str, Vec<usize>, Vec<f32>)]| {
            let mut tensors = vec![
                ("weight", vec![3, 2], vec![0.5f32; 6]),
                ("bias", vec![3], vec![0.0f32; 3]),
            ];
            tensors.extend(extra.iter().cloned());
            let bytes: Vec<Vec<u8>> = tensors
                .iter()
                .map(|t| bytemuck::cast_slice(&t.2).to_vec())
                .collect();
            let views: Vec<_> = tensors
                .iter()
                .zip(&bytes)
                .map(|((name, shape, _), b)| {
                    let view = safetensors::tensor::TensorView::new(
                        safetensors::Dtype::F32,
                        shape.clone(),
                        b,
                    )
                    .unwrap();
                    (*name, view)
                })
                .collect();
            let meta = std::collections::HashMap::from([(
                "format".to_string(),
                softmax_regression::model_file::FORMAT.to_string(),
            )]);
            safetensors::serialize(views, Some(meta)).unwrap()
        };
        let mean = ("feature_mean", vec![2], vec![1.0f32, 2.0]);
        for (name, extra) in [
            (
                "zero_scale.safetensors",
                vec![mean.clone(), ("feature_scale", vec![2], vec![1.0, 0.0])],
            ),
            ("mean_only.safetensors", vec![mean.clone()]),
            (
                "scale_shape.safetensors",
                vec![mean.clone(), ("feature_scale", vec![3], vec![1.0; 3])],
            ),
        ] {
            std::fs::write(d(name), standardized(&extra)).unwrap();
        }
        dir
    })
}

/// Runs `args` (with `{d}` standing for the fixture directory and `--out` added) with the
/// output absent and then present, and checks the contract.
fn bad(args: &str, needle: &str) {
    let dir = fixtures();
    let d = dir.display().to_string();
    let scratch = dir.join(format!("out-{:016x}", fnv(args)));
    std::fs::create_dir_all(&scratch).unwrap();
    let out = scratch.join("output");
    let mut argv: Vec<String> = args
        .split_whitespace()
        .map(|a| a.replace("{d}", &d))
        .collect();
    // `evaluate` writes no model or predictions; its output file is the --plot.
    let flag = if args.starts_with("evaluate") {
        "--plot"
    } else {
        "--out"
    };
    argv.extend([flag.to_string(), out.display().to_string()]);
    for existing in [false, true] {
        if existing {
            std::fs::write(&out, b"an older file").unwrap();
        } else {
            let _ = std::fs::remove_file(&out);
        }
        let o = Command::new(BIN).args(&argv).output().unwrap();
        common::assert_bad_input(args, &o, needle);
        if existing {
            assert_eq!(
                std::fs::read(&out).unwrap(),
                b"an older file",
                "{args}: overwrote the output"
            );
        } else {
            assert!(!out.exists(), "{args}: created an output file");
        }
        let leftovers: Vec<_> = std::fs::read_dir(&scratch)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "output")
            .collect();
        assert!(leftovers.is_empty(), "{args}: left {leftovers:?} behind");
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

macro_rules! bad_input {
    ($($name:ident: $args:expr => $needle:expr;)*) => {
        $(
            #[test]
            fn $name() {
                bad($args, $needle);
            }
        )*
    };
}

bad_input! {
    missing_flags_are_named: "synth --rows 10 --features 5" => "not provided: --classes <K>, --labels <PATH> (see --help)";
    nan_feature: "train --data {d}/nan.csv" => "nan.csv: row 2, column 2";
    infinite_feature: "train --data {d}/inf.csv" => "inf.csv: row 1, column 2";
    empty_file: "train --data {d}/empty.csv" => "empty.csv: no data rows";
    header_only: "train --data {d}/header_only.csv" => "header_only.csv: no data rows";
    ragged_rows: "train --data {d}/ragged.csv" => "ragged.csv: row 3";
    non_numeric_cell: "train --data {d}/word.csv" => "word.csv: row 2, column 2";
    label_column_missing: "train --data {d}/two_columns.csv --label-column 2" => "label column 2";
    single_class: "train --data {d}/one_class.csv" => "at least 2 classes";
    label_outside_classes: "train --data {d}/label_5.csv --classes 3" => "sample 2";
    labels_file_length: "train --data {d}/one_class.csv --labels {d}/three_labels.txt" => "three_labels.txt has 3 labels";
    no_feature_columns: "train --data {d}/labels_only.csv" => "labels_only.csv: no feature columns";
    npy_unsupported_dtype: "train --data {d}/complex.npy --labels {d}/labels.npy" => "complex.npy: has dtype '<c8'";
    npy_pickled_objects: "train --data {d}/object.npy --labels {d}/labels.npy" => "object.npy: holds Python objects";
    npy_truncated: "train --data {d}/truncated.npy --labels {d}/labels.npy" => "truncated.npy: is truncated";
    idx_truncated: "train --data {d}/truncated.idx --labels {d}/labels.npy" => "truncated.idx: is truncated";
    idx_wrong_magic: "train --data {d}/magic.idx --labels {d}/labels.npy" => "magic.idx: not an IDX file";
    idx_sizes_disagree: "train --data {d}/sizes.idx --labels {d}/labels.npy" => "sizes.idx: has 9 bytes";
    csv_from_dev_zero: "train --data /dev/zero --format csv --backend cpu" => "/dev/zero: is not a text file (byte 1 is NUL)";
    libsvm_from_dev_zero: "train --data /dev/zero --format libsvm --backend cpu" => "/dev/zero: is not a text file";
    labels_from_dev_zero: "train --data {d}/features.npy --labels /dev/zero --backend cpu" => "/dev/zero: is not a text file";
    model_from_dev_zero: "predict --model /dev/zero --data {d}/features.npy" => "/dev/zero: not a safetensors model file";
    idx_gzip_expands_beyond_header: "train --data {d}/bomb-idx3-ubyte.gz --labels {d}/labels.npy --backend cpu" => "bomb-idx3-ubyte.gz: expands beyond the 1000 bytes of data its header declares";
    npy_three_dimensions: "train --data {d}/cube.npy --labels {d}/labels.npy --backend cpu" => "cube.npy: has shape (2, 2, 2) but X must be 2-D (m, n)";
    npy_three_dimensions_streamed: "train --data {d}/cube.npy --labels {d}/labels.npy --backend vulkan" => "cube.npy: has shape (2, 2, 2) but X must be 2-D (m, n)";
    npy_beyond_float32: "train --data {d}/wide_f8.npy --labels {d}/labels.npy --backend cpu" => "wide_f8.npy: row 2, column 1: value 1e300 exceeds the float32 range (±3.4e38)";
    npy_beyond_float32_streamed: "train --data {d}/wide_f8.npy --labels {d}/labels.npy --backend vulkan" => "wide_f8.npy: feature value 1e300 at row 2, column 1 exceeds the float32 range (±3.4e38)";
    npy_nan_streamed: "train --data {d}/nan_f4.npy --labels {d}/labels.npy --backend vulkan" => "nan_f4.npy: feature value at row 2, column 1 is NaN";
    csv_beyond_float32: "train --data {d}/beyond.csv --backend cpu" => "beyond.csv: row 2, column 1: value 1e300 exceeds the float32 range (±3.4e38)";
    libsvm_beyond_float32: "train --data {d}/beyond.libsvm --backend cpu" => "beyond.libsvm: line 2: value 1e300 in \"2:1e300\" exceeds the float32 range";
    sample_weight_beyond_float32: "train --data {d}/good.csv --sample-weights {d}/beyond_weights.txt --backend cpu" => "beyond_weights.txt: row 2, column 1: value 1e300 exceeds the float32 range";
    libsvm_bad_index: "train --data {d}/bad_index.libsvm" => "bad_index.libsvm: line 2";
    libsvm_index_zero: "train --data {d}/index_0.libsvm" => "index_0.libsvm";
    libsvm_huge_index: "train --data {d}/huge_index.libsvm" => "huge_index.libsvm: the largest feature index, 888888831";
    libsvm_nan_value: "train --data {d}/nan.libsvm --backend cpu" => "nan.libsvm: line 2: value NaN in \"2:nan\" is not finite";
    libsvm_unsorted_indices: "train --data {d}/unsorted.libsvm --backend cpu" => "unsorted.libsvm: line 2: feature index 2 comes after 3";
    npz_offsets_decrease: "train --data {d}/decreasing.npz --labels {d}/two_labels.txt --backend cpu" => "decreasing.npz: indptr.npy decreases at entry 3";
    npz_nnz_disagrees: "train --data {d}/nnz.npz --labels {d}/two_labels.txt --backend cpu" => "nnz.npz: indices.npy holds 1 entries but data.npy holds 2";
    npz_index_beyond_shape: "train --data {d}/beyond.npz --labels {d}/two_labels.txt --backend cpu" => "beyond.npz: indices.npy entry 1 is 3, not a column from 0 to 2";
    npz_nan_value: "train --data {d}/nan.npz --labels {d}/two_labels.txt --backend cpu" => "nan.npz: row 2, column 3: value NaN is not finite";
    npz_unknown_layout: "train --data {d}/bsr.npz --labels {d}/two_labels.txt --backend cpu" => "bsr.npz: holds a sparse matrix in format \"bsr\"";
    npz_without_labels: "train --data {d}/good.npz --backend cpu" => "good.npz has no labels; pass --labels";
    csr_dir_without_indptr: "train --data {d}/csr_no_indptr --labels {d}/two_labels.txt --backend cpu" => "csr_no_indptr: has no indptr.npy";
    csr_dir_float_indices: "train --data {d}/csr_float_indices --labels {d}/two_labels.txt --backend cpu" => "csr_float_indices: indices.npy has dtype '<f8' (float64); its entries must be integers";
    csr_dir_lengths_disagree: "train --data {d}/csr_lengths --labels {d}/two_labels.txt --backend cpu" => "csr_lengths: indices.npy holds 1 entries but data.npy holds 2";
    csr_dir_without_indptr_predict: "predict --model {d}/good.safetensors --data {d}/csr_no_indptr" => "csr_no_indptr: has no indptr.npy";
    model_truncated: "predict --model {d}/truncated.safetensors --data {d}/features.npy" => "truncated.safetensors";
    model_not_safetensors: "predict --model {d}/not_a_model.safetensors --data {d}/features.npy" => "not_a_model.safetensors: not a safetensors";
    model_wrong_shapes: "predict --model {d}/wrong_shape.safetensors --data {d}/features.npy" => "tensor `bias` has shape [2]";
    model_non_finite: "predict --model {d}/nan.safetensors --data {d}/features.npy" => "weight[1, 1] is NaN";
    model_from_another_dataset: "predict --model {d}/five_features.safetensors --data {d}/features.npy" => "5";
    init_from_another_dataset: "train --data {d}/good.csv --init {d}/five_features.safetensors --epochs 1" => "--init";
    model_scale_zero: "predict --model {d}/zero_scale.safetensors --data {d}/features.npy" => "zero_scale.safetensors: feature_scale[1] is 0";
    model_mean_without_scale: "evaluate --model {d}/mean_only.safetensors --data {d}/good.csv" => "mean_only.safetensors: has a `feature_mean` tensor but no `feature_scale`";
    model_scale_wrong_shape: "predict --model {d}/scale_shape.safetensors --data {d}/features.npy" => "scale_shape.safetensors: tensor `feature_scale` has shape [3]";
    evaluate_bad_model: "evaluate --model {d}/nan.safetensors --data {d}/good.csv" => "nan.safetensors";
    negative_learning_rate: "train --lr -1" => "--lr -1";
    infinite_learning_rate: "train --lr inf" => "--lr inf";
    negative_l2: "train --l2 -0.5" => "--l2 -0.5";
    nan_l2: "train --l2 nan" => "--l2 NaN";
    negative_tol: "train --tol -1" => "--tol -1";
    negative_epochs: "train --epochs -3" => "--epochs";
    zero_epochs: "train --epochs 0" => "--epochs 0";
    batch_size_zero: "train --batch-size 0" => "--batch-size 0";
    validation_out_of_range: "train --validation 1.5" => "--validation 1.5";
    checkpoint_every_zero: "train --checkpoint {d}/never.ckpt --checkpoint-every 0" => "--checkpoint-every 0";
    resume_from_a_model_file: "train --resume {d}/good.safetensors" => "good.safetensors";
    resume_missing_checkpoint: "train --resume {d}/absent.ckpt" => "absent.ckpt";
    step_factor_above_one: "train --schedule step --step-factor 2" => "--step-factor 2";
    negative_class_weight: "train --data {d}/good.csv --class-weight=-1,1" => "--class-weight";
    max_gpu_memory_unparsable: "train --max-gpu-memory 12XB" => "--max-gpu-memory";
    // --quiet: the "training on …" line comes before the device plan is made.
    max_gpu_memory_below_the_model: "train --data {d}/features.npy --labels {d}/labels.npy --max-gpu-memory 100 --quiet" => "--max-gpu-memory";
    streamed_npy_labels_length: "train --data {d}/features.npy --labels {d}/three_labels.txt" => "three_labels.txt has 3 labels";
    path_negative_l2: "train --l2 1e-3,-1 --cv 3" => "--l2 -1 is invalid: each value must be a finite number > 0";
    path_empty_l2: "train --l2 , --cv 3" => "'' for '--l2";
    path_zero_c: "train --C 0,1 --cv 3" => "--C 0 is invalid: each value must be a finite number > 0";
    path_l2_and_c: "train --l2 1e-3 --C 1 --cv 3" => "'--l2 <F[,F…]>' cannot be used with '--C <C[,C…]>'";
    path_malformed_l2_path: "train --l2-path 1e-1:1e-3 --cv 3" => "--l2-path 1e-1:1e-3 is invalid: give HIGH:LOW:COUNT";
    path_l2_path_of_one: "train --l2-path 1e-1:1e-3:1 --cv 3" => "--l2-path 1e-1:1e-3:1 is invalid: COUNT must be at least 2";
    cv_one_fold: "train --cv 1" => "--cv 1 is invalid: cross-validation needs at least 2 folds";
    cv_more_folds_than_rows_of_a_class: "train --cv 200" => "--cv 200 is invalid: class 0 has only 178 rows, fewer than the folds";
    cv_with_validation: "train --cv 3 --validation 0.2" => "'--cv <K>' cannot be used with '--validation <F>'";
    path_without_a_choice: "train --data {d}/good.csv --l2 1e-2,1e-3" => "--l2 with 2 values trains a regularisation path: add --cv K, --folds PATH or --validation F";
    path_with_adam: "train --l2 1e-2,1e-3 --cv 3 --optimizer adam" => "which only --optimizer lbfgs does";
    devices_unknown_number: "train --devices 7" => "there is no adapter 7";
    devices_named_twice: "train --devices 0,0" => "is named twice";
    devices_empty_entry: "train --devices ,0" => "an entry is empty";
    devices_unknown_name: "train --devices no-such-gpu" => "no adapter's name or backend contains";
    devices_on_the_cpu: "train --devices all --backend cpu" => "--backend cpu trains on none";
    devices_with_mini_batches: "train --devices all --optimizer adam --batch-size 32" => "takes mini-batches";
    folds_negative: "train --data {d}/good.csv --folds {d}/folds_negative.txt" => "folds_negative.txt: row 2 holds fold -1";
    folds_too_few: "train --data {d}/good.csv --folds {d}/folds_two.txt" => "folds_two.txt holds 2 fold numbers but the data has 3 rows; give one per row";
    folds_with_a_gap: "train --data {d}/good.csv --folds {d}/folds_gap.txt" => "folds_gap.txt: fold 1 has no rows";
    synth_one_class: "synth --rows 10 --features 2 --classes 1 --labels {d}/synth_y.npy" => "--classes 1";
    synth_zero_rows: "synth --rows 0 --features 2 --classes 3 --labels {d}/synth_y.npy" => "--rows 0";
    synth_density_zero: "synth --rows 10 --features 20 --classes 2 --density 0 --labels {d}/synth_y.npy" => "--density 0 is invalid: must be a number in (0, 1]";
    synth_density_above_one: "synth --rows 10 --features 20 --classes 2 --density 1.5 --labels {d}/synth_y.npy" => "--density 1.5";
    synth_means_too_large: "synth --rows 10 --features 100000 --classes 100000 --labels {d}/synth_y.npy" => "--classes 100000";
    fractional_label: "train --data {d}/fraction_label.csv" => "fraction_label.csv: row 3";
    word_among_integer_labels: "train --data {d}/word_label.csv" => "row 2 has the name \"cat\" but row 1 has the integer 0";
    missing_label_as_nan: "train --data {d}/nan_label.csv" => "nan_label.csv: row 2";
    label_far_above_the_others: "train --data {d}/million_label.csv" => "--classes 1000001";
    label_4e9: "train --data {d}/4e9_label.csv" => "label 4000000000 of sample 4";
    classes_4e9: "train --data {d}/good.csv --classes 4000000000" => "--classes 4000000000";
    classes_4e9_embedded_digits: "train --classes 4000000000" => "--classes 4000000000";
    header_no_on_a_named_header: "train --data {d}/word_header.csv --header no" => "--header no";
    header_unknown_value: "train --data {d}/good.csv --header maybe" => "'maybe' for '--header";
    delimiter_unknown: "train --data {d}/good.csv --delimiter xy" => "'xy' for '--delimiter";
    semicolons_read_with_commas: "train --data {d}/decimal_commas.csv" => "--delimiter";
    one_column_with_semicolons: "train --data {d}/semicolons.csv --delimiter ," => "--delimiter ';'";
    data_and_labels_both_stdin: "train --data - --labels -" => "stdin";
    plot_in_a_missing_directory: "train --data {d}/good.csv --plot {d}/absent/curve.svg" => "--plot";
    checkpoint_in_a_missing_directory: "train --data {d}/good.csv --checkpoint {d}/absent/run.ckpt" => "--checkpoint";
    plot_over_the_data: "train --data {d}/good.csv --plot {d}/good.csv" => "--plot";
    checkpoint_over_the_labels: "train --data {d}/good.csv --labels {d}/three_labels.txt --checkpoint {d}/three_labels.txt" => "same file as --labels";
    synth_labels_is_a_directory: "synth --rows 10 --features 2 --classes 2 --labels {d}" => "is a directory";
    evaluate_names_against_class_numbers: "evaluate --model {d}/good.safetensors --data {d}/names.csv" => "\"cat\"";
    predict_too_wide_for_the_model: "predict --model {d}/good.safetensors --data {d}/four_columns.csv" => "or 3 with the label column";
}

/// Every fixture the binary refuses is refused by the library too, as a typed error that
/// names the file.
#[test]
fn the_library_returns_errors_for_the_same_files() {
    let d = fixtures();
    let load = |name: &str, labels: Option<&str>| {
        formats::load(
            &d.join(name),
            &LoadOptions {
                labels: labels.map(|l| d.join(l)),
                csv_has_labels: true,
                require_labels: true,
                ..LoadOptions::default()
            },
        )
    };
    for (name, labels) in [
        ("nan.csv", None),
        ("inf.csv", None),
        ("empty.csv", None),
        ("header_only.csv", None),
        ("ragged.csv", None),
        ("word.csv", None),
        ("labels_only.csv", None),
        ("one_class.csv", Some("three_labels.txt")),
        ("complex.npy", Some("labels.npy")),
        ("object.npy", Some("labels.npy")),
        ("truncated.npy", Some("labels.npy")),
        ("truncated.idx", Some("labels.npy")),
        ("magic.idx", Some("labels.npy")),
        ("sizes.idx", Some("labels.npy")),
        ("bad_index.libsvm", None),
        ("index_0.libsvm", None),
        ("cube.npy", Some("labels.npy")),
        ("wide_f8.npy", Some("labels.npy")),
        ("beyond.csv", None),
        ("beyond.libsvm", None),
        ("bomb-idx3-ubyte.gz", Some("labels.npy")),
        ("csr_no_indptr", Some("two_labels.txt")),
        ("csr_float_indices", Some("two_labels.txt")),
        ("csr_lengths", Some("two_labels.txt")),
    ] {
        match load(name, labels) {
            Err(e) => {
                let named = labels.filter(|_| name == "one_class.csv").unwrap_or(name);
                assert!(e.message.contains(named), "{name}: {}", e.message)
            }
            Ok(_) => panic!("{name} was accepted"),
        }
    }
    for name in [
        "truncated.safetensors",
        "not_a_model.safetensors",
        "wrong_shape.safetensors",
        "nan.safetensors",
        "zero_scale.safetensors",
        "mean_only.safetensors",
        "scale_shape.safetensors",
    ] {
        match Model::load(&d.join(name)) {
            Err(Error::ModelFile { path, .. }) => assert!(path.ends_with(name)),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn the_library_refuses_bad_arrays_with_typed_errors() {
    let mut x = Array2::<f32>::ones((3, 2));
    x[[2, 1]] = f32::NAN;
    assert!(matches!(
        Dataset::new(x, &[0, 1, 0], 2),
        Err(Error::NonFinite {
            row: 2,
            column: 1,
            ..
        })
    ));
    let x = Array2::<f32>::ones((3, 2));
    assert!(matches!(
        Dataset::new(x.clone(), &[0, 1, 2], 2),
        Err(Error::LabelOutOfRange {
            row: 2,
            label: 2,
            ..
        })
    ));
    assert!(matches!(
        Dataset::new(x.clone(), &[0, 1], 2),
        Err(Error::LengthMismatch { rows: 3, labels: 2 })
    ));
    assert!(matches!(
        Dataset::new(x.clone(), &[0, 0, 0], 1),
        Err(Error::TooFewClasses { n_classes: 1 })
    ));
    assert!(matches!(
        Dataset::new(Array2::<f32>::zeros((3, 0)), &[0, 1, 0], 2),
        Err(Error::NoFeatures)
    ));
    assert!(matches!(
        Dataset::new(Array2::<f32>::zeros((0, 2)), &[], 2),
        Err(Error::NoRows)
    ));
    let data = Dataset::new(x, &[0, 1, 0], 2).unwrap();
    assert!(matches!(
        data.clone().with_sample_weights(&[1.0, -1.0, 1.0]),
        Err(Error::InvalidWeight { row: 1, .. })
    ));
    assert!(matches!(
        data.with_sample_weights(&[1.0, f32::INFINITY, 1.0]),
        Err(Error::InvalidWeight { row: 1, .. })
    ));
}
