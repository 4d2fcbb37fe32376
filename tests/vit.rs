//! A transformer explained through `Probe::tokens`, against pytorch-grad-cam with its
//! `reshape_transform` on the same tiny ViT (`scripts/make_vit_fixture.py`: random weights, seed
//! 0, in `tiny_vit.safetensors`; `tiny_vit_oracle.safetensors` holds the input, the float64
//! network's activations and gradients at the layer, and pytorch-grad-cam's maps).
#![cfg(all(feature = "flex", feature = "models"))]

mod common;

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use common::DELTA;
use gradcam::methods::LeGrad;
use gradcam::models::{Vit, VitConfig, load_torchvision_vit, load_weights};
use gradcam::{ExplainerConfig, GradCam, GradCamError, Method, Probe, Targets};

const DIM: usize = 32;
const GRID: usize = 4;

/// The fixture's network (`scripts/make_vit_fixture.py`): 32 x 32 images in 8 x 8 patches, 32
/// dims, 2 heads, 2 blocks, an MLP of 64, 10 classes; the weights of `tiny_vit.safetensors`.
fn tiny_vit(device: &Device) -> Vit {
    // PyTorch's `nn.LayerNorm` epsilon, where torchvision's ViTs (the default) use 1e-6.
    let model = VitConfig::new(32, 8, DIM, 2, 2, 64, 10)
        .with_eps(1e-5)
        .init(device);
    load_weights(model, root("tests/fixtures/tiny_vit.safetensors")).unwrap()
}

fn root(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The oracle fixture's tensors, by key.
fn fixture() -> common::Tensors {
    common::read_fixture(&root("tests/fixtures/tiny_vit_oracle.safetensors")).0
}

/// The model's logits on `input`: their largest difference from `reference` and the bound,
/// `DELTA` times the reference's largest magnitude (`common::DELTA`).
fn logits_apart(model: &impl GradCam, input: Tensor<4>, reference: &[f64]) -> (f64, f64) {
    let logits: Vec<f32> = model
        .forward_probed(input, &mut Probe::passthrough())
        .into_data()
        .try_into_vec()
        .unwrap();
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    (max_diff(&logits, reference), DELTA * scale)
}

fn max_diff(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - y).abs())
        .fold(0.0, f64::max)
}

/// Our Grad-CAM and LayerCAM of the ViT's last `norm1` against pytorch-grad-cam's on the
/// float64 network.
///
/// Bound: our float32 network is within `DELTA` of the float64 one in every activation `A` and
/// gradient `G`, relative to each tensor's largest magnitude (the argument of `common::DELTA`);
/// a raw-map value `sum_k w_k A_kp` (Grad-CAM, `w_k = mean G_k`) then moves by at most
/// `E = DELTA (max|A| sum_k |w_k| + max|G| max_p sum_k |A_kp|)` (LayerCAM, `sum_k ReLU(G_kp)
/// A_kp`: `DELTA (max|G| max_p sum_k |A_kp| + max|A| max_p sum_k |G_kp|)`), the ReLU'd, min-max
/// normalised map by `2 E / max(raw)`, and upsampling (a convex combination) adds nothing; plus
/// 1e-6 for pytorch-grad-cam's final float32 cast. A map on a transposed grid (what a wrong
/// token layout gives) fails the same bound.
#[test]
fn a_vit_layer_explained_through_its_tokens_matches_pytorch_grad_cam() {
    let device = Device::flex();
    let fx = fixture();
    let model = tiny_vit(&device);
    let input = vit_input(&device);
    let class = fx["class"].1[0] as usize;

    let (d, bound) = logits_apart(&model, input.clone(), &fx["logits"].1);
    assert!(
        d <= bound,
        "the logits are {d} from the reference's (bound {bound})"
    );

    // The bounds from the float64 reference at the layer ([1, 32, 4, 4]).
    let a = &fx["ref/activations"].1;
    let g = &fx["ref/gradients"].1;
    let p = GRID * GRID;
    let largest = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let (max_a, max_g) = (largest(a), largest(g));
    let column = |v: &[f64], f: &dyn Fn(f64) -> f64| {
        (0..p)
            .map(|q| (0..DIM).map(|k| f(v[k * p + q])).sum::<f64>())
            .fold(0.0f64, f64::max)
    };
    let sum_a = column(a, &|x| x.abs());
    let sum_g = column(g, &|x| x.abs());
    let w: Vec<f64> = (0..DIM)
        .map(|k| g[k * p..(k + 1) * p].iter().sum::<f64>() / p as f64)
        .collect();
    let grad_cam: Vec<f64> = (0..p)
        .map(|q| (0..DIM).map(|k| w[k] * a[k * p + q]).sum())
        .collect();
    let layer_cam: Vec<f64> = (0..p)
        .map(|q| (0..DIM).map(|k| g[k * p + q].max(0.0) * a[k * p + q]).sum())
        .collect();
    let cases = [
        (
            Method::GradCam,
            "pgc/grad-cam",
            DELTA * (max_a * w.iter().map(|x| x.abs()).sum::<f64>() + max_g * sum_a),
            largest(&grad_cam),
        ),
        (
            Method::LayerCam,
            "pgc/layer-cam",
            DELTA * (max_g * sum_a + max_a * sum_g),
            largest(&layer_cam),
        ),
    ];
    let mut grad_cam_bound = 0.0;
    for (method, key, e, top) in cases {
        let bound = 2.0 * e / top + 1e-6;
        assert!(
            bound < 0.05,
            "{method}: the bound ({bound}) would not tell maps apart"
        );
        let explanation = ExplainerConfig::new()
            .with_method(method)
            .with_layer("blocks.1.norm1")
            .init(&model)
            .unwrap()
            .explain(input.clone(), &Targets::class(class))
            .unwrap();
        assert_eq!(explanation.layers[0].raw.dims(), [1, 1, GRID, GRID]);
        let ours = explanation.heatmap_values(0, 0).unwrap(); // [32, 32]
        let theirs = &fx[key].1;
        let d = max_diff(&ours, theirs);
        eprintln!("{method}: {d:.2e} from pytorch-grad-cam (bound {bound:.2e})");
        assert!(
            d <= bound,
            "{method}: {d} from pytorch-grad-cam (bound {bound})"
        );
        let transposed: Vec<f32> = (0..32 * 32).map(|i| ours[(i % 32) * 32 + i / 32]).collect();
        let wrong = max_diff(&transposed, theirs);
        assert!(
            wrong > bound,
            "{method}: a transposed map passes ({wrong} <= {bound})"
        );
        if method == Method::GradCam {
            grad_cam_bound = bound;
        }
    }

    // Several targets per image (rows repeated after the cut, the residual carried along) and
    // every other method run on the token layer too.
    let both = ExplainerConfig::new()
        .with_layer("blocks.1.norm1")
        .init(&model)
        .unwrap()
        .explain(
            input.clone(),
            &Targets::every_image([class, (class + 1) % 10]),
        )
        .unwrap();
    let first = both.heatmap_values(0, 0).unwrap();
    assert!(max_diff(&first, &fx["pgc/grad-cam"].1) <= grad_cam_bound);
    for method in Method::ALL {
        let e = ExplainerConfig::new()
            .with_method(method)
            .with_layers(["blocks.0.norm1", "blocks.1.norm1"])
            .init(&model)
            .unwrap()
            .explain(input.clone(), &Targets::top(1))
            .unwrap();
        let heat = e.heatmap_values(0, 0).unwrap();
        assert!(
            heat.iter()
                .all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
            "{method}"
        );
    }
}

/// LeGrad's fixture (`make_vit_fixture.py --legrad`): torchcam 0.5.0 on the float64 twin.
fn legrad_fixture() -> common::Tensors {
    common::read_fixture(&root("tests/fixtures/tiny_vit_legrad.safetensors")).0
}

/// The fixture's input, on `device`.
fn vit_input(device: &Device) -> Tensor<4> {
    let fx = fixture();
    let (shape, input) = &fx["input"];
    let input: Vec<f32> = input.iter().map(|v| *v as f32).collect();
    let shape: [usize; 4] = shape.as_slice().try_into().unwrap();
    Tensor::<4>::from_data(TensorData::new(input, shape), device)
}

/// One block's relevance from the float64 reference gradients `[1, heads, 17, 17]`: the ReLU's
/// mean over heads and queries, grid keys only.
fn reference_relevance(g: &[f64]) -> Vec<f64> {
    let t = 1 + GRID * GRID;
    let rows = g.len() / (t * t) * t; // heads x queries
    (1..t)
        .map(|key| (0..rows).map(|r| g[r * t + key].max(0.0)).sum::<f64>() / rows as f64)
        .collect()
}

/// The range `max - min`.
fn range(v: &[f64]) -> f64 {
    let lo = v.iter().fold(f64::INFINITY, |a, x| a.min(*x));
    let hi = v.iter().fold(f64::NEG_INFINITY, |a, x| a.max(*x));
    hi - lo
}

/// Our LeGrad of the tiny ViT against torchcam 0.5.0's on its float64 twin, on `device`: both
/// blocks (raw and normalised) and the last block alone, for the top-1 and top-2 classes
/// explained in one call (the input's rows repeated once per target). Returns the largest
/// difference over its bound.
///
/// Bound: our float32 gradients `G^l = ds^l/dA^l` are within `DELTA max|G^l|` of the float64
/// ones (`common::DELTA`, relative to each tensor's largest magnitude); the ReLU is 1-Lipschitz
/// and the means are convex combinations, so a raw-map value moves by at most `E = DELTA
/// mean_l max|G^l|` over the blocks averaged; min-max normalisation `(x - min) / (max - min)`,
/// with `x`, `min` and `max` each within `E`, by at most `4 E / (R - 2 E)`, `R` the reference
/// map's range; plus `1e-7 / R` for the normalisers' epsilons (torchcam's 1e-8, ours 1e-7) and
/// 1e-6 for float32 rounding of ours. Four wrong maps fail it: ours transposed, the gradients
/// without their ReLU, the class token kept among the keys (the last patch dropped), and the
/// last block's map against both blocks'.
fn legrad_check(device: &Device) -> f64 {
    let fx = legrad_fixture();
    let model = tiny_vit(device);
    let input = vit_input(device);
    let classes: Vec<usize> = fx["classes"].1.iter().map(|c| *c as usize).collect();
    let targets = Targets::every_image(classes.clone());
    let explain = |method: LeGrad| {
        ExplainerConfig::new()
            .with_method(method)
            .with_layer("blocks.1.norm1")
            .init(&model)
            .unwrap()
            .explain(input.clone(), &targets)
            .unwrap()
    };
    let both = explain(LeGrad::new());
    let last = explain(LeGrad::new().with_blocks(["blocks.1"]));
    assert_eq!(both.layers[0].raw.dims(), [1, 2, GRID, GRID]);
    let values = |t: &Tensor<4>, rank: usize| -> Vec<f32> {
        t.clone()
            .narrow(1, rank, 1)
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap()
    };
    let largest = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut worst = 0.0f64;
    for rank in 0..classes.len() {
        let grads = [0, 1].map(|l| fx[&format!("ref/{rank}/grad{l}")].1.clone());
        let e_both = DELTA * (largest(&grads[0]) + largest(&grads[1])) / 2.0;
        let e_last = DELTA * largest(&grads[1]);
        let reference_raw = &fx[&format!("torchcam/{rank}/raw")].1;
        let r_both = range(reference_raw);
        let r_last = range(&reference_relevance(&grads[1]));
        let normalised = |e: f64, r: f64| 4.0 * e / (r - 2.0 * e) + 1e-7 / r + 1e-6;
        let raw = values(&both.layers[0].raw, rank);
        let cam = values(&both.layers[0].cam, rank);
        let cam_last = values(&last.layers[0].cam, rank);
        let cases = [
            ("raw", &raw, reference_raw, e_both),
            (
                "normalised",
                &cam,
                &fx[&format!("torchcam/{rank}/cam")].1,
                normalised(e_both, r_both),
            ),
            (
                "last block",
                &cam_last,
                &fx[&format!("torchcam/{rank}/last")].1,
                normalised(e_last, r_last),
            ),
        ];
        for (what, ours, theirs, bound) in cases {
            assert!(
                bound < 0.01,
                "{what}: the bound ({bound}) would not tell maps apart"
            );
            let d = max_diff(ours, theirs);
            eprintln!(
                "LeGrad {what}, class rank {rank}: {d:.2e} from torchcam (bound {bound:.2e})"
            );
            assert!(
                d <= bound,
                "LeGrad {what}, class rank {rank}: {d} (bound {bound})"
            );
            worst = worst.max(d / bound);
        }
        let bound = normalised(e_both, r_both);
        let transposed: Vec<f32> = (0..GRID * GRID)
            .map(|i| cam[(i % GRID) * GRID + i / GRID])
            .collect();
        let wrong = [
            (
                "transposed",
                max_diff(&transposed, &fx[&format!("torchcam/{rank}/cam")].1),
            ),
            (
                "no ReLU",
                max_diff(&cam, &fx[&format!("wrong/{rank}/no-relu")].1),
            ),
            (
                "class token kept",
                max_diff(&cam, &fx[&format!("wrong/{rank}/prefix-kept")].1),
            ),
            (
                "last block only",
                max_diff(&cam, &fx[&format!("torchcam/{rank}/last")].1),
            ),
        ];
        for (what, d) in wrong {
            assert!(
                d > bound,
                "a wrong LeGrad map ({what}) passes: {d} <= {bound}"
            );
        }
    }
    worst
}

#[test]
fn legrad_matches_torchcam_on_flex_and_ndarray() {
    let worst = legrad_check(&Device::flex());
    eprintln!("flex: worst difference / bound {worst:.1e}");
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)] // burn-ndarray is deprecated upstream, still supported here
    {
        let worst = legrad_check(&Device::ndarray());
        eprintln!("ndarray: worst difference / bound {worst:.1e}");
    }
}

#[cfg(feature = "wgpu")]
#[test]
#[ignore = "needs a Vulkan driver (CI: lavapipe): cargo test --features flex,ndarray,wgpu -- --ignored wgpu"]
fn wgpu_legrad_matches_torchcam() {
    let device = common::wgpu_device();
    let worst = legrad_check(&device);
    eprintln!("wgpu: worst difference / bound {worst:.1e}");
}

/// A block LeGrad is asked for and the model lacks is an error naming the blocks there are;
/// asking for none is an error too.
#[test]
fn legrad_names_the_blocks_there_are() {
    let device = Device::flex();
    let model = tiny_vit(&device);
    let err = ExplainerConfig::new()
        .with_method(LeGrad::new().with_blocks(["blocks.7"]))
        .init(&model)
        .unwrap()
        .explain(vit_input(&device), &Targets::top(1))
        .unwrap_err();
    assert!(matches!(err, GradCamError::Input(_)), "{err}");
    assert!(err.to_string().contains("blocks.0, blocks.1"), "{err}");
    let err = ExplainerConfig::new()
        .with_method(LeGrad::new().with_blocks(Vec::<String>::new()))
        .init(&model)
        .unwrap()
        .explain(vit_input(&device), &Targets::top(1))
        .unwrap_err();
    assert!(err.to_string().contains("no block chosen"), "{err}");
}

/// The tiny ViT with its input announced as a layer too: a layer off the blocks' grid.
#[derive(burn::module::Module, Debug)]
struct WithInput {
    vit: Vit,
}

impl GradCam for WithInput {
    fn layers(&self) -> Vec<String> {
        let mut layers = vec!["input".to_string()];
        layers.extend(self.vit.layers());
        layers
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("input", x);
        self.vit.forward_probed(x, probe)
    }
}

/// Explained at a layer off the blocks' grid (the 32 x 32 input), LeGrad's map is its grid map
/// upsampled to the input (bilinear, as the explainer upsamples every map): the same tensor
/// operation on the same values, so equal to the last float32 bit; a map left on the grid would
/// not be 32 x 32.
#[test]
fn legrad_at_a_layer_off_the_grid_is_the_grid_map_upsampled() {
    use burn::tensor::module::interpolate;
    use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
    let device = Device::flex();
    let model = WithInput {
        vit: tiny_vit(&device),
    };
    let input = vit_input(&device);
    let raw = |layer: &str| {
        ExplainerConfig::new()
            .with_method(Method::LeGrad)
            .with_layer(layer)
            .init(&model)
            .unwrap()
            .explain(input.clone(), &Targets::top(1))
            .unwrap()
            .layers[0]
            .raw
            .clone()
    };
    let on_grid = raw("blocks.1.norm1"); // [1, 1, 4, 4]
    let off_grid = raw("input"); // [1, 1, 32, 32]
    assert_eq!(off_grid.dims(), [1, 1, 32, 32]);
    let upsampled = interpolate(
        on_grid,
        InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size([32, 32]),
    );
    let [a, b] = [off_grid, upsampled].map(|t| t.into_data().try_into_vec::<f32>().unwrap());
    assert_eq!(a, b);
}

/// A torchvision `VisionTransformer` (`make_vit_fixture.py --torchvision`: its `.pth` state_dict)
/// loaded with `load_torchvision_vit`: its logits are torchvision's, and LeGrad equals torchcam's
/// with torchcam's own projection for torchvision ViTs (`heads(encoder.ln(mean of the tokens))`,
/// no `score_projection` given), every block.
///
/// Bound: the logits within `DELTA` of the float64 ones relative to their largest magnitude
/// (`common::DELTA`; a name not mapped fails the load, a square `Linear` left transposed moves
/// them by far more); the normalised map as in `legrad_check`, `4 E / (R - 2 E) + 1e-7
/// / R + 1e-6` with `E = DELTA mean_l max|G^l|`. The map transposed fails it.
#[test]
fn a_torchvision_vit_loads_and_its_legrad_is_torchcams() {
    let device = Device::flex();
    let fx = common::read_fixture(&root(
        "tests/fixtures/tiny_torchvision_vit_legrad.safetensors",
    ))
    .0;
    let model = load_torchvision_vit(
        VitConfig::new(32, 8, DIM, 2, 2, 64, 10).init(&device),
        root("tests/fixtures/tiny_torchvision_vit.pth"),
    )
    .unwrap();
    let input = vit_input(&device);
    let (d, bound) = logits_apart(&model, input.clone(), &fx["logits"].1);
    eprintln!("torchvision ViT logits: {d:.2e} from float64 (bound {bound:.2e})");
    assert!(
        d <= bound,
        "the logits are {d} from float64's (bound {bound})"
    );

    let class = fx["class"].1[0] as usize;
    let e = ExplainerConfig::new()
        .with_method(Method::LeGrad)
        .init(&model)
        .unwrap()
        .explain(input, &Targets::class(class))
        .unwrap();
    let cam: Vec<f32> = e.layers[0].cam.clone().into_data().try_into_vec().unwrap();
    let largest = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let e_both = DELTA * (largest(&fx["ref/grad0"].1) + largest(&fx["ref/grad1"].1)) / 2.0;
    let r = range(&fx["torchcam/raw"].1);
    let bound = 4.0 * e_both / (r - 2.0 * e_both) + 1e-7 / r + 1e-6;
    assert!(
        bound < 0.01,
        "the bound ({bound}) would not tell maps apart"
    );
    let theirs = &fx["torchcam/cam"].1;
    let d = max_diff(&cam, theirs);
    eprintln!("torchvision ViT LeGrad: {d:.2e} from torchcam (bound {bound:.2e})");
    assert!(d <= bound, "{d} (bound {bound})");
    let transposed: Vec<f32> = (0..GRID * GRID)
        .map(|i| cam[(i % GRID) * GRID + i / GRID])
        .collect();
    let wrong = max_diff(&transposed, theirs);
    assert!(wrong > bound, "a transposed map passes: {wrong} <= {bound}");
}
