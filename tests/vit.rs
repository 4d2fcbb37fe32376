//! A transformer explained through `Probe::tokens`, against pytorch-grad-cam with its
//! `reshape_transform` on the same tiny ViT (`scripts/make_vit_fixture.py`: random weights, seed
//! 0, in `tiny_vit.safetensors`; `tiny_vit_oracle.safetensors` holds the input, the float64
//! network's activations and gradients at the layer, and pytorch-grad-cam's maps).
#![cfg(all(feature = "flex", feature = "models"))]

mod common;

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Tensor, TensorData};
use common::DELTA;
use gradcam::models::load_weights;
use gradcam::{ExplainerConfig, GradCam, Method, Probe, Targets};

const DIM: usize = 32;
const HEADS: usize = 2;
const GRID: usize = 4;

#[derive(Module, Debug)]
struct Block {
    norm1: LayerNorm,
    norm2: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    proj: Linear,
    fc1: Linear,
    fc2: Linear,
}

impl Block {
    fn new(device: &Device) -> Self {
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        Self {
            norm1: LayerNormConfig::new(DIM).init(device),
            norm2: LayerNormConfig::new(DIM).init(device),
            q: linear(DIM, DIM),
            k: linear(DIM, DIM),
            v: linear(DIM, DIM),
            proj: linear(DIM, DIM),
            fc1: linear(DIM, 64),
            fc2: linear(64, DIM),
        }
    }

    /// A pre-norm block whose first norm is an explainable layer.
    ///
    /// # Shapes
    /// - `x`: `[n, 1 + GRID * GRID, DIM]`; returns `[n', 1 + GRID * GRID, DIM]`
    fn forward(&self, x: Tensor<3>, name: &str, probe: &mut Probe) -> Tensor<3> {
        let y = probe.tokens(name, self.norm1.forward(x.clone()), [GRID, GRID], 1);
        let [n, t, d] = y.dims();
        let x = Probe::carry(x, n); // the residual, to the rows the probe returned
        let split = |z: Tensor<3>| z.reshape([n, t, HEADS, d / HEADS]).swap_dims(1, 2); // [n, heads, t, hd]
        let q = split(self.q.forward(y.clone()));
        let k = split(self.k.forward(y.clone()));
        let v = split(self.v.forward(y));
        let scale = ((d / HEADS) as f64).powf(-0.5);
        let attention = softmax(q.matmul(k.swap_dims(2, 3)) * scale, 3); // [n, heads, t, t]
        let mixed = attention.matmul(v).swap_dims(1, 2).reshape([n, t, d]);
        let x = x + self.proj.forward(mixed);
        x.clone()
            + self
                .fc2
                .forward(gelu(self.fc1.forward(self.norm2.forward(x))))
    }
}

#[derive(Module, Debug)]
struct TinyVit {
    patch: Conv2d,
    cls: Param<Tensor<3>>,
    pos: Param<Tensor<3>>,
    blocks: Vec<Block>,
    norm: LayerNorm,
    head: Linear,
}

impl TinyVit {
    fn new(device: &Device) -> Self {
        Self {
            patch: Conv2dConfig::new([3, DIM], [8, 8])
                .with_stride([8, 8])
                .init(device),
            cls: Param::from_tensor(Tensor::zeros([1, 1, DIM], device)),
            pos: Param::from_tensor(Tensor::zeros([1, 1 + GRID * GRID, DIM], device)),
            blocks: vec![Block::new(device), Block::new(device)],
            norm: LayerNormConfig::new(DIM).init(device),
            head: LinearConfig::new(DIM, 10).init(device),
        }
    }
}

impl GradCam for TinyVit {
    fn layers(&self) -> Vec<String> {
        vec!["blocks.0.norm1".into(), "blocks.1.norm1".into()]
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        // The patch embedding's bias through the probe: FullGrad's one biased layer here, as
        // pytorch-grad-cam's (which takes every Conv2d) on a ViT.
        let x = self.patch.forward(x); // [n, DIM, 4, 4]
        let x = probe.bias("patch", x, || self.patch.bias.as_ref().map(|b| b.val()));
        let [n, d, h, w] = x.dims();
        let x = x.reshape([n, d, h * w]).swap_dims(1, 2); // [n, 16, DIM], row-major grid
        let cls = self.cls.val().repeat_dim(0, n); // [n, 1, DIM]
        let mut x = Tensor::cat(vec![cls, x], 1) + self.pos.val(); // [n, 17, DIM]
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, &format!("blocks.{i}.norm1"), probe);
        }
        let x = self.norm.forward(x);
        let rows = x.dims()[0];
        self.head.forward(x.narrow(1, 0, 1).reshape([rows, DIM])) // [n', 10]
    }

    fn input_shape(&self) -> [Option<usize>; 3] {
        [Some(3), Some(32), Some(32)]
    }
}

fn root(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The oracle fixture's tensors, by key.
fn fixture() -> common::Tensors {
    common::read_fixture(&root("tests/fixtures/tiny_vit_oracle.safetensors")).0
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
    let model = load_weights(
        TinyVit::new(&device),
        root("tests/fixtures/tiny_vit.safetensors"),
    )
    .unwrap();
    let (shape, input) = &fx["input"];
    let input: Vec<f32> = input.iter().map(|v| *v as f32).collect();
    let shape: [usize; 4] = shape.as_slice().try_into().unwrap();
    let input = Tensor::<4>::from_data(TensorData::new(input, shape), &device);
    let class = fx["class"].1[0] as usize;

    let logits: Vec<f32> = model
        .forward_probed(input.clone(), &mut Probe::passthrough())
        .into_data()
        .try_into_vec()
        .unwrap();
    let reference = &fx["logits"].1;
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max_diff(&logits, reference) <= DELTA * scale, "{logits:?}");

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
