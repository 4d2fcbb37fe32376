//! Memory over many failing calls, each kind of failure on its own. Its own test binary:
//! resident memory is a property of the process, and tests running beside it in the same process
//! would move it.
#![cfg(feature = "flex")]

mod common;

use burn::tensor::{Device, Tensor};
use common::models::TinyNet;
use common::tensor;
use gradcam::{ExplainerConfig, GradCamError, InputError, NumericalError, Target, Targets};

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

/// Whether an error is the kind a case expects.
type Expected = fn(&GradCamError) -> bool;

/// Each kind of failure, 200 calls of it alone after a warm-up of 40, at [4, 3, 96, 96], layer
/// `block1`. A call that leaves the autodiff graph of its failed call behind (as calls failing
/// between the forward and the backward did: only a later backward frees a graph) keeps the
/// tensors of the layers after the cut, megabytes here, so 200 add hundreds of MiB; the bound,
/// 16 MiB, is allocator noise with room to spare. The kinds run in one
/// process in turn, each measured from its own warm-up: a backward of another kind in between
/// would free the leak (which is how a mixed loop once hid it).
#[test]
fn each_kind_of_failing_call_leaves_memory_where_it_was() {
    let Some(_) = resident_kib() else { return };
    let device = Device::flex();
    let model = TinyNet::new(&device);
    // The first layer: the graph after the cut then holds two convolutions' worth of tensors.
    let explainer = ExplainerConfig::new()
        .with_layer("block1")
        .init(&model)
        .unwrap();
    let x = tensor(9, [4, 3, 96, 96], 1.0, &device);
    let nan = Target::score(|l: Tensor<2>| l.narrow(1, 0, 1).flatten(0, 1) * f32::NAN);
    let wrong_shape = Target::score(|l: Tensor<2>| l.flatten(0, 1));
    let panics = Target::score(|_: Tensor<2>| -> Tensor<1> { panic!("a score that panics") });
    let kinds: [(&str, Targets, Expected); 4] = [
        ("class out of range", Targets::class(99), |e| {
            matches!(e, GradCamError::Input(InputError::ClassOutOfRange { .. }))
        }),
        (
            "score of the wrong shape",
            Targets::every_image([wrong_shape]),
            |e| matches!(e, GradCamError::Input(InputError::ScoreShape { .. })),
        ),
        ("score that panics", Targets::every_image([panics]), |e| {
            matches!(e, GradCamError::Input(InputError::ScorePanicked { .. }))
        }),
        (
            "NaN scores (after the backward)",
            Targets::every_image([nan]),
            |e| matches!(e, GradCamError::Numerical(NumericalError::NonFinite { .. })),
        ),
    ];
    for (kind, targets, expected) in kinds {
        let round = |calls: usize| {
            for _ in 0..calls {
                let err = explainer.explain(x.clone(), &targets).unwrap_err();
                assert!(expected(&err), "{kind}: {err}");
            }
        };
        round(40);
        let before = resident_kib().unwrap();
        round(200);
        let after = resident_kib().unwrap();
        eprintln!("{kind}: {before} KiB after warm-up, {after} KiB after 200 failing calls");
        assert!(
            after < before + 16 * 1024,
            "{kind}: grew by {} KiB",
            after.saturating_sub(before)
        );
    }
}
