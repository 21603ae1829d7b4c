#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| softmax_regression::fuzzing::npz(data));
