//! Memory over many failing calls. Its own test binary: resident memory is a property of the
//! process, and tests running beside it in the same process would move it.
#![cfg(feature = "flex")]

mod common;

use burn::tensor::{Device, Tensor};
use common::models::TinyNet;
use common::tensor;
use gradcam::{ExplainerConfig, GradCamError, Target, Targets};

/// Resident memory in KiB (Linux `VmRSS`), `None` elsewhere.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn failing_calls_do_not_grow_memory() {
    // 200 calls that fail after the forward (a class out of range; NaN scores after the
    // backward graph is built), then valid ones; resident memory is read from /proc after a
    // warm-up round and again at the end. A leak of the graph of a failed call (a few hundred
    // KiB here) would add tens of MiB; allocator noise is a few MiB.
    let Some(_) = resident_kib() else { return };
    let device = Device::flex();
    let model = TinyNet::new(&device);
    let explainer = ExplainerConfig::new().init(&model).unwrap();
    let x = tensor(9, [4, 3, 24, 24], 1.0, &device);
    let nan = Target::score(|l: Tensor<2>| l.narrow(1, 0, 1).flatten(0, 1) * f32::NAN);
    let round = |calls: usize| {
        for i in 0..calls {
            let err = if i % 2 == 0 {
                explainer
                    .explain(x.clone(), &Targets::class(99))
                    .unwrap_err()
            } else {
                explainer
                    .explain(x.clone(), &Targets::all(nan.clone()))
                    .unwrap_err()
            };
            assert!(matches!(
                err,
                GradCamError::ClassOutOfRange { .. } | GradCamError::NonFinite { .. }
            ));
        }
        let _ = explainer.explain(x.clone(), &Targets::top1()).unwrap();
    };
    round(40);
    let before = resident_kib().unwrap();
    round(200);
    let after = resident_kib().unwrap();
    eprintln!("resident memory: {before} KiB after warm-up, {after} KiB after 200 failing calls");
    assert!(
        after < before + 16 * 1024,
        "grew by {} KiB",
        after.saturating_sub(before)
    );
}
