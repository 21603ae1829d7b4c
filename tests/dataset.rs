//! Dataset validation: each bad input gets its own error naming the row and column.

use ndarray::{Array2, array};
use softmax_regression::{Dataset, Error};

#[test]
fn non_finite_feature_names_row_and_column() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = Array2::<f32>::ones((4, 3));
        x[(2, 1)] = bad;
        match Dataset::new(x, &[0, 1, 0, 1], 2) {
            Err(Error::NonFinite {
                row: 2, column: 1, ..
            }) => {}
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn label_out_of_range_names_row() {
    let err = Dataset::new(Array2::<f32>::ones((3, 2)), &[0, 3, 1], 3).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                row: 1,
                label: 3,
                n_classes: 3
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "label 3 at row 2 is outside 0..3 (K = 3)");
}

#[test]
fn shape_errors() {
    assert!(matches!(
        Dataset::new(Array2::<f32>::ones((3, 2)), &[0, 1], 2),
        Err(Error::LengthMismatch { rows: 3, labels: 2 })
    ));
    assert!(matches!(
        Dataset::new(Array2::<f32>::ones((0, 2)), &[], 2),
        Err(Error::NoRows)
    ));
    assert!(matches!(
        Dataset::new(Array2::<f32>::ones((2, 0)), &[0, 1], 2),
        Err(Error::NoFeatures)
    ));
    assert!(matches!(
        Dataset::new(Array2::<f32>::ones((2, 2)), &[0, 0], 1),
        Err(Error::TooFewClasses { n_classes: 1 })
    ));
}

#[test]
fn views_and_column_major_arrays_are_accepted() {
    let x = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]];
    let t = x.t().to_owned();
    let from_view = Dataset::new(t.t(), &[0, 1, 1], 2).unwrap();
    assert_eq!(from_view.x().unwrap(), x.view());
    let owned = Dataset::new(x.clone(), &[0, 1, 1], 2).unwrap();
    assert_eq!(owned.x().unwrap(), x.view());
}

#[test]
fn split_is_seeded_and_disjoint() {
    let x = Array2::from_shape_fn((100, 1), |(i, _)| i as f32);
    let y: Vec<u32> = (0..100).map(|i| i % 2).collect();
    let data = Dataset::new(x, &y, 2).unwrap();
    let (a, b) = data.split(0.2, 1).unwrap();
    let (a2, b2) = data.split(0.2, 1).unwrap();
    assert_eq!((a.n_rows(), b.n_rows()), (80, 20));
    assert_eq!(b.x().unwrap(), b2.x().unwrap());
    assert_eq!(a.x().unwrap(), a2.x().unwrap());
    let mut all: Vec<f32> = a
        .x()
        .unwrap()
        .iter()
        .chain(b.x().unwrap().iter())
        .copied()
        .collect();
    all.sort_by(f32::total_cmp);
    assert_eq!(all, (0..100).map(|i| i as f32).collect::<Vec<_>>());
    assert!(matches!(
        data.split(1.0, 1),
        Err(Error::InvalidSetting {
            name: "validation",
            ..
        })
    ));
}

#[test]
fn shared_values_are_used_in_place_and_checked_like_an_owned_array() {
    use std::sync::Arc;
    let values: Vec<f32> = (0..12).map(|v| v as f32 * 0.25).collect();
    let shared = Arc::new(values.clone());
    let address = shared.as_ptr();
    let data = Dataset::from_shared(shared, 4, 3, &[0, 1, 2, 1], 3).unwrap();
    let x = data.x().unwrap();
    assert_eq!(x.as_ptr(), address, "the values were copied");
    assert_eq!(x, Array2::from_shape_vec((4, 3), values.clone()).unwrap());
    // Row reads serve the same values (the GPU's uploads go through them).
    let mut row = [0f32; 3];
    data.source().read_rows(2, &mut row).unwrap();
    assert_eq!(row, [1.5, 1.75, 2.0]);

    let mut bad = values.clone();
    bad[7] = f32::NAN;
    assert!(matches!(
        Dataset::from_shared(Arc::new(bad), 4, 3, &[0, 1, 2, 1], 3),
        Err(Error::NonFinite {
            row: 2,
            column: 1,
            ..
        })
    ));
    assert!(matches!(
        Dataset::from_shared(Arc::new(values.clone()), 5, 3, &[0, 1, 2, 1, 0], 3),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        Dataset::from_shared(Arc::new(values), 4, 3, &[0, 1, 3, 1], 3),
        Err(Error::LabelOutOfRange { row: 2, .. })
    ));
}
