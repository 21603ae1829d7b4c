//! CSV files read as their writers meant them: header rows (pandas' numeric column names
//! included) told from data, `--header`, `--labels` keeping every column, tab and
//! semicolon delimiters, stdin, and the label kind and K the first line reports.

mod common;

use common::{BIN, blobs, run, s, stderr, stdout};

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use softmax_regression::Model;

/// Runs `args` with `input` piped to stdin.
fn run_piped(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from another thread so that a child that stops reading cannot block us.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().unwrap();
    writer.join().unwrap();
    o
}

/// `m` rows of [`blobs`], the cells joined by `sep`, each row's label written by `label`.
fn rows(m: usize, sep: &str, label: impl Fn(usize) -> String) -> String {
    let mut text = String::new();
    for (x, c) in blobs(m, 5) {
        let cells: Vec<String> = x.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!("{}{sep}{}\n", cells.join(sep), label(c)));
    }
    text
}

/// Trains on `data` (plus `extra` flags) on the CPU for a few epochs; returns the output
/// and the model written, if any.
fn train(data: &Path, extra: &[&str]) -> (Output, Option<Model>) {
    let out = data.with_extension("safetensors");
    let _ = std::fs::remove_file(&out);
    let mut args = vec![
        "train",
        "--data",
        s(data),
        "--epochs",
        "3",
        "--backend",
        "cpu",
        "--out",
        s(&out),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    let model = o
        .status
        .success()
        .then(|| Model::load(&out).expect("the model loads").0);
    (o, model)
}

/// The "training on …" line.
fn first_line(o: &Output) -> String {
    stderr(o).lines().next().unwrap_or_default().to_string()
}

#[test]
fn pandas_numeric_header_is_a_header_not_a_fourth_class() {
    let dir = common::scratch("csv-pandas-header");
    // pd.DataFrame(X).assign(y=y).to_csv(index=False)
    let named = dir.join("named.csv");
    std::fs::write(
        &named,
        format!("0,1,2,3,y\n{}", rows(60, ",", |c| c.to_string())),
    )
    .unwrap();
    // pd.DataFrame(np.c_[X, y]).to_csv(index=False): the label column is called 4 and
    // its values are written as floats.
    let numbered = dir.join("numbered.csv");
    std::fs::write(
        &numbered,
        format!("0,1,2,3,4\n{}", rows(60, ",", |c| format!("{c}.0"))),
    )
    .unwrap();
    for path in [&named, &numbered] {
        let (o, model) = train(path, &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        let model = model.unwrap();
        assert_eq!(model.n_classes(), 3, "{}", stderr(&o));
        assert_eq!(model.n_features(), 4);
        assert!(model.labels().is_none(), "integer labels kept as names");
        let line = first_line(&o);
        assert!(line.contains("60 rows"), "{line}");
        assert!(line.contains("K = 3 (integer labels 0…2)"), "{line}");
    }
}

#[test]
fn header_no_reads_a_first_row_of_column_numbers_as_data() {
    let dir = common::scratch("csv-header-no");
    let data = dir.join("data.csv");
    std::fs::write(
        &data,
        format!("0,1,2,3,2\n{}", rows(60, ",", |c| c.to_string())),
    )
    .unwrap();
    let (o, model) = train(&data, &["--header", "no"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model.unwrap().n_classes(), 3);
    assert!(first_line(&o).contains("61 rows"), "{}", first_line(&o));
    // Detected, the same row is pandas' header.
    let (o, _) = train(&data, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(first_line(&o).contains("60 rows"), "{}", first_line(&o));
    // And --header yes drops a first row that is plainly data.
    let plain = dir.join("plain.csv");
    std::fs::write(&plain, rows(60, ",", |c| c.to_string())).unwrap();
    let (o, _) = train(&plain, &["--header", "yes"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(first_line(&o).contains("59 rows"), "{}", first_line(&o));
}

#[test]
fn a_word_heading_a_column_of_integer_labels_is_a_header() {
    let dir = common::scratch("csv-label-header");
    // Feature names that are numbers (years, wavelengths) and a label column named in words.
    let data = dir.join("years.csv");
    std::fs::write(
        &data,
        format!(
            "1990,1991,1992,1993,class\n{}",
            rows(60, ",", |c| c.to_string())
        ),
    )
    .unwrap();
    let (o, model) = train(&data, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model.unwrap().n_classes(), 3);
    assert!(first_line(&o).contains("60 rows"), "{}", first_line(&o));
}

#[test]
fn a_features_only_csv_with_a_labels_file_keeps_every_column() {
    let dir = common::scratch("csv-labels-file");
    let data = dir.join("x.csv");
    let labels = dir.join("y.txt");
    let mut x = String::new();
    let mut y = String::new();
    for (row, c) in blobs(60, 5) {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        x.push_str(&format!("{}\n", cells.join(",")));
        y.push_str(&format!("{c}\n"));
    }
    std::fs::write(&data, x).unwrap();
    std::fs::write(&labels, y).unwrap();
    let (o, model) = train(&data, &["--labels", s(&labels)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model.unwrap().n_features(), 4, "{}", stderr(&o));
    // With --label-column as well, that column is the file's own label column and is
    // dropped (the labels file still supplies the labels).
    let (o, model) = train(&data, &["--labels", s(&labels), "--label-column", "last"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model.unwrap().n_features(), 3);
}

#[test]
fn tab_and_semicolon_files_train_detected_or_named() {
    let dir = common::scratch("csv-delimiters");
    let names = ["cat", "dog", "eel"];
    for (name, sep, flag) in [
        ("tab.tsv", "\t", "tab"),
        ("semicolon.csv", ";", ";"),
        ("tab-escape.tsv", "\t", "\\t"),
    ] {
        let path = dir.join(name);
        // A quoted header cell may hold the delimiter of the other dialect.
        let header = ["\"a,1\"", "b", "c", "d", "animal"].join(sep);
        std::fs::write(
            &path,
            format!(
                "{header}\n{}",
                rows(60, sep, |c| format!("\"{}\"", names[c]))
            ),
        )
        .unwrap();
        for extra in [vec![], vec!["--delimiter", flag]] {
            let (o, model) = train(&path, &extra);
            assert!(o.status.success(), "{name} {extra:?}: {}", stderr(&o));
            let model = model.unwrap();
            assert_eq!(model.n_features(), 4, "{name}");
            assert_eq!(model.labels().unwrap(), names);
            let line = first_line(&o);
            assert!(line.contains("60 rows"), "{line}");
            assert!(
                line.contains("K = 3 (string labels: cat, dog, eel)"),
                "{line}"
            );
        }
    }
}

#[test]
fn train_and_predict_read_data_from_stdin() {
    let dir = common::scratch("csv-stdin");
    let text = rows(90, ",", |c| c.to_string());
    let model = dir.join("m.safetensors");
    let o = run_piped(
        &[
            "train",
            "--data",
            "-",
            "--epochs",
            "20",
            "--backend",
            "cpu",
            "--out",
            s(&model),
        ],
        text.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        first_line(&o).contains("training on stdin: 90 rows"),
        "{}",
        first_line(&o)
    );
    let (m, _) = Model::load(&model).unwrap();
    assert_eq!((m.n_features(), m.n_classes()), (4, 3));
    // predict takes the rows from a pipe, with or without the label column.
    let features: String = text
        .lines()
        .map(|l| format!("{}\n", l.rsplit_once(',').unwrap().0))
        .collect();
    for input in [&text, &features] {
        let o = run_piped(
            &[
                "predict",
                "--model",
                s(&model),
                "--data",
                "-",
                "--backend",
                "cpu",
            ],
            input.as_bytes(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let predicted: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
        assert_eq!(predicted.len(), 90, "{}", stderr(&o));
        let correct = predicted
            .iter()
            .zip(blobs(90, 5))
            .filter(|(p, (_, c))| **p == c.to_string())
            .count();
        assert!(correct >= 80, "{correct}/90");
    }
}

#[test]
fn the_first_line_names_the_label_kind_and_k() {
    let dir = common::scratch("csv-first-line");
    // Classes 0 and 2 only, with K asked for: the gap is said.
    let data = dir.join("gap.csv");
    std::fs::write(&data, rows(60, ",", |c| (c.min(1) * 2).to_string())).unwrap();
    let (o, model) = train(&data, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(model.unwrap().n_classes(), 3);
    let line = first_line(&o);
    assert!(
        line.contains("K = 3 (integer labels 0…2, 2 of them present)"),
        "{line}"
    );
    let (o, _) = train(&data, &["--classes", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = first_line(&o);
    assert!(
        line.contains("K = 5 (integer labels 0…4, 2 of them present)"),
        "{line}"
    );
    // The embedded digits.
    let o = run(&[
        "train",
        "--epochs",
        "1",
        "--backend",
        "cpu",
        "--out",
        s(&dir.join("digits.safetensors")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        first_line(&o).contains("K = 10 (integer labels 0…9)"),
        "{}",
        first_line(&o)
    );
}

/// The model a CPU run of L-BFGS to convergence writes for `data`, and its stderr.
fn fit_exactly(data: &Path) -> (Model, String) {
    let out = data.with_extension("safetensors");
    let o = run(&[
        "train",
        "--data",
        s(data),
        "--backend",
        "cpu",
        "--tol",
        "1e-7",
        "--max-iter",
        "500",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    (Model::load(&out).unwrap().0, stderr(&o))
}

#[test]
fn pandas_row_index_is_left_out_and_said() {
    let dir = common::scratch("csv-pandas-index");
    let plain = dir.join("plain.csv");
    std::fs::write(
        &plain,
        format!("a,b,c,d,y\n{}", rows(60, ",", |c| c.to_string())),
    )
    .unwrap();
    // df.to_csv("indexed.csv"): the row index first, under an empty name.
    let indexed = dir.join("indexed.csv");
    let mut text = String::from(",a,b,c,d,y\n");
    for (i, line) in rows(60, ",", |c| c.to_string()).lines().enumerate() {
        text.push_str(&format!("{i},{line}\n"));
    }
    std::fs::write(&indexed, text).unwrap();
    let (want, _) = fit_exactly(&plain);
    let (got, err) = fit_exactly(&indexed);
    assert_eq!(got.n_features(), 4, "the index was trained as a feature");
    assert_eq!(got.theta(), want.theta());
    assert!(err.contains("pandas row index"), "not said: {err}");
    // predict reads the same file the same way.
    let o = run(&[
        "predict",
        "--backend",
        "cpu",
        "--model",
        s(&indexed.with_extension("safetensors")),
        "--data",
        s(&indexed),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 60);
}

#[test]
fn semicolon_files_with_decimal_commas_read_as_numbers() {
    let dir = common::scratch("csv-decimal-comma");
    let plain = dir.join("plain.csv");
    let body = rows(60, ",", |c| c.to_string());
    std::fs::write(&plain, format!("a,b,c,d,y\n{body}")).unwrap();
    // A spreadsheet in a decimal-comma locale: 1.25 is written 1,25, cells split by ';'.
    let european = dir.join("european.csv");
    let mut text = String::from("a;b;c;d;y\n");
    for line in body.lines() {
        let cells: Vec<String> = line.split(',').map(|c| c.replacen('.', ",", 1)).collect();
        text.push_str(&cells.join(";"));
        text.push('\n');
    }
    assert!(text.contains(",5"), "the fixture has no decimal commas");
    std::fs::write(&european, text).unwrap();
    let (want, _) = fit_exactly(&plain);
    let (got, err) = fit_exactly(&european);
    assert_eq!(got.theta(), want.theta());
    assert!(
        err.contains("semicolons") && err.contains("decimal commas"),
        "{err}"
    );
}

/// The feature rows and string labels every dialect below must load to.
fn dialect_fixture(m: usize) -> (Vec<Vec<f32>>, Vec<String>) {
    // Names that hold each delimiter and a quote, so they must be quoted.
    let names = ["cat, \"tabby\"", "dog;\trex", "eel"];
    blobs(m, 5)
        .into_iter()
        .map(|(x, c)| (x, names[c].to_string()))
        .unzip()
}

/// The fixture as CSV: cells joined by `sep`, labels quoted (quotes doubled), lines
/// ended by `end`.
fn dialect_text(sep: &str, end: &str) -> String {
    let (x, labels) = dialect_fixture(40);
    let mut text = ["a", "b", "\"c, cm\"", "d", "animal"].join(sep) + end;
    for (row, label) in x.iter().zip(&labels) {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        let label = format!("\"{}\"", label.replace('"', "\"\""));
        text.push_str(&format!("{}{sep}{label}{end}", cells.join(sep)));
    }
    text
}

/// Loads `path` as labelled CSV (with `delimiter`, if given) through the library.
fn load_dialect(path: &Path, delimiter: Option<char>) -> (Vec<Vec<f32>>, Vec<String>, Vec<String>) {
    use softmax_regression::formats::{LoadOptions, RawLabels, load};
    let options = LoadOptions {
        csv_has_labels: true,
        delimiter,
        ..LoadOptions::default()
    };
    let loaded = load(path, &options).unwrap_or_else(|e| panic!("{e}"));
    let x = loaded.x.rows().into_iter().map(|r| r.to_vec()).collect();
    let Some(RawLabels::Strings(labels)) = loaded.labels else {
        panic!(
            "{}: string labels expected, got {:?}",
            path.display(),
            loaded.labels
        );
    };
    (x, labels, loaded.notes)
}

#[test]
fn quoted_crlf_bom_tab_semicolon_and_trailing_blank_lines_load_as_the_plain_file() {
    let dir = common::scratch("csv-dialects");
    let (want_x, want_labels) = dialect_fixture(40);
    let plain = dir.join("plain.csv");
    std::fs::write(&plain, dialect_text(",", "\n")).unwrap();
    let (x, labels, _) = load_dialect(&plain, None);
    assert_eq!((&x, &labels), (&want_x, &want_labels), "plain.csv");
    let bom = "\u{feff}";
    let blank_tail = "\n\n   \n\r\n\t\n";
    for (name, text, delimiter) in [
        ("crlf.csv", dialect_text(",", "\r\n"), ','),
        ("bom.csv", format!("{bom}{}", dialect_text(",", "\n")), ','),
        ("trailing.csv", dialect_text(",", "\n") + blank_tail, ','),
        ("tab.tsv", dialect_text("\t", "\n"), '\t'),
        ("semicolon.csv", dialect_text(";", "\n"), ';'),
        (
            "everything.tsv",
            format!("{bom}{}\r\n\r\n", dialect_text("\t", "\r\n")),
            '\t',
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, &text).unwrap();
        for given in [None, Some(delimiter)] {
            let (x, labels, notes) = load_dialect(&path, given);
            assert_eq!(x, want_x, "{name}, delimiter {given:?}");
            assert_eq!(labels, want_labels, "{name}, delimiter {given:?}");
            assert!(
                notes.iter().any(|n| n == "row 1 read as a header"),
                "{name}: {notes:?}"
            );
        }
    }
}

#[test]
fn errors_in_crlf_and_bom_files_name_the_editor_line_and_column() {
    let dir = common::scratch("csv-dialect-errors");
    let path = dir.join("bad.csv");
    // A BOM, CRLF line ends, blank lines and a quoted label holding the delimiter: the bad
    // cell is on line 6 as an editor numbers it.
    let text = "\u{feff}a,b,y\r\n1,2,\"cat\"\r\n\r\n3,4,\"two, three\"\r\n\r\n5,x,dog\r\n";
    std::fs::write(&path, text).unwrap();
    let o = run(&["train", "--data", s(&path), "--backend", "cpu"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}: row 6, column 2: \"x\" is not a number",
            path.display()
        )),
        "{err}"
    );
    let path = dir.join("ragged.tsv");
    std::fs::write(&path, "a\tb\ty\r\n1\t2\t0\r\n\r\n\r\n3\t4\r\n").unwrap();
    let o = run(&["train", "--data", s(&path), "--backend", "cpu"]);
    let err = stderr(&o);
    assert!(
        err.contains("ragged.tsv: row 5 has 2 columns, expected 3 (as in row 1)"),
        "{err}"
    );
}

#[test]
fn a_tab_file_with_bom_and_crlf_trains_the_plain_files_model() {
    let dir = common::scratch("csv-dialect-train");
    let body = rows(60, ",", |c| c.to_string());
    let plain = dir.join("plain.csv");
    std::fs::write(&plain, format!("a,b,c,d,y\n{body}")).unwrap();
    let tab = dir.join("windows.tsv");
    let mut text = String::from("\u{feff}a\tb\tc\td\ty\r\n");
    for line in body.lines() {
        text.push_str(&line.replace(',', "\t"));
        text.push_str("\r\n");
    }
    text.push_str("\r\n\r\n");
    std::fs::write(&tab, text).unwrap();
    let (want, _) = fit_exactly(&plain);
    let (got, err) = fit_exactly(&tab);
    assert_eq!(got.theta(), want.theta());
    assert!(err.contains("60 rows"), "{err}");
    // Named on the command line, the delimiter gives the same model.
    let out = dir.join("named.safetensors");
    let o = run(&[
        "train",
        "--data",
        s(&tab),
        "--delimiter",
        "tab",
        "--backend",
        "cpu",
        "--tol",
        "1e-7",
        "--max-iter",
        "500",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(Model::load(&out).unwrap().0.theta(), want.theta());
}
