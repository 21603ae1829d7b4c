use softmax_regression::formats::{LoadOptions, load_sparse};
use softmax_regression::{AdapterRequest, Dataset, GpuContext, GpuOracle};
fn main() {
    let p = std::path::Path::new("/work/shared/data/sparse/text.svm.gz");
    let l = load_sparse(p, &LoadOptions::default()).unwrap();
    let csr = softmax_regression::data::Csr::try_from(l.x).unwrap();
    let y: Vec<u32> = match l.labels {
        Some(softmax_regression::formats::RawLabels::Ints(v)) => {
            v.iter().map(|&x| x as u32).collect()
        }
        _ => panic!(),
    };
    let data = Dataset::from_csr(csr, &y, 20).unwrap();
    let ctx = GpuContext::new(&AdapterRequest::default()).unwrap();
    let mut o = GpuOracle::new(&ctx, &data, None).unwrap();
    let theta = ndarray::Array2::<f32>::zeros((data.n_features(), 20));
    let bias = ndarray::Array1::<f32>::zeros(20);
    let (t, stamps) = o.profile(theta.view(), bias.view(), 1e-4).unwrap();
    println!("{t:?} {stamps}");
    for _ in 0..3 {
        let (_, tm) = o.timed_step(theta.view(), bias.view(), 1e-4).unwrap();
        println!("{tm:?}");
    }
}
