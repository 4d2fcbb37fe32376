//! Grad-CAM end to end, forward only, and the map reduction alone, per model, batch and backend.
//!
//! ```sh
//! cargo bench --profile dev --features flex,ndarray,wgpu --bench gradcam -- flex ndarray  # CPU rows
//! cargo bench --profile dev --features flex,ndarray,wgpu --bench gradcam       # + wgpu
//! cargo bench --profile dev --features flex,ndarray,wgpu --bench gradcam -- flex/8   # a filter
//! ```
//!
//! `--profile dev` reuses the test build (dependencies at `opt-level = 3`): the release profile
//! would compile Burn a second time. Every iteration starts from an input tensor already on the
//! device and ends with the normalised heatmap (or the logits) read back to the host, which
//! synchronises the device. On a machine without a GPU, `wgpu` runs on Mesa's lavapipe: a
//! software Vulkan device on the CPU, labelled as such below, never a GPU figure.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use gradcam::kernels::weighted_sum;
use gradcam::models::{EfficientNetLite0, ResNet, SqueezeNet, Vit, VitConfig, load_weights};
use gradcam::{
    CamMethod, ExplainerConfig, FactorizationConfig, GradCam, Method, Probe, SessConfig, Target,
    Targets,
};

fn main() {
    // `GRADCAM_BENCH_RSS=grad_cam/resnet50/flex/8`: run that one row three times in this fresh
    // process and print its peak resident memory (Linux `VmHWM`), then exit.
    if let Ok(row) = std::env::var("GRADCAM_BENCH_RSS") {
        peak_rss(&row);
        return;
    }
    for name in BACKENDS {
        if let Some(device) = device(name) {
            println!("backend {name}: {}", describe(name, &device));
        }
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    println!("| bench | median ms | min ms | samples |\n|---|---|---|---|");
    for case in CASES {
        for (model, ..) in MODELS.iter().chain(&TRANSFORMERS) {
            for what in ["grad_cam", "forward"] {
                let name = format!("{what}/{model}/{case}");
                // The ViT and batch 64 only when a filter names them.
                let named = !filters.is_empty() || !(case.ends_with("/64") || transformer(model));
                if named && wanted(&name) && case_of(case).is_some() {
                    report(&name, row(what, model, case), 5);
                }
            }
        }
    }
    // Every method: only when a filter names them (`-- method/`), since the many-forward
    // methods take minutes per call on a CPU. Those run at small batches only: Score-CAM on
    // ResNet-50 at batch 32 would be 65,536 forwards a call.
    if !filters.is_empty() {
        for (model, cases, many) in METHOD_CASES {
            for method in Method::ALL {
                // LeGrad explains a transformer's attention: the ViT's rows only.
                if method.reads_attention() && !transformer(model) {
                    continue;
                }
                let forwards = method.runs_many_forwards();
                for case in if forwards { many } else { cases }.iter() {
                    let name = format!("method/{method}/{model}/{case}");
                    if wanted(&name) && case_of(case).is_some() {
                        let samples = if forwards { 2 } else { 5 };
                        report(&name, method_row(method, model, case), samples);
                    }
                }
            }
        }
    }
    // Grad-CAM's options, guided backpropagation and Deep Feature Factorization (`-- option/`):
    // eigen smoothing, augmentation smoothing (six explanations), the guided input gradient
    // (pytorch-grad-cam's GuidedBackpropReLUModel explains one image a call: batch 1), 16 concepts,
    // ShapleyCAM with the ReST score (with a logit its second-order term is 0), and SESS over
    // Grad-CAM with its defaults.
    if !filters.is_empty() {
        for (model, ..) in MODELS {
            for option in Variant::ALL {
                for case in option.cases() {
                    let name = format!("option/{}/{model}/{case}", option.name());
                    if wanted(&name) && case_of(case).is_some() {
                        // A SESS call explains 244 patches: fewer samples.
                        let samples = if matches!(option, Variant::Sess) {
                            3
                        } else {
                            5
                        };
                        report(&name, option_row(option, model, case), samples);
                    }
                }
            }
        }
    }
    // SqueezeNet's forward, op by op on flex at batch 8 (`-- profile/`), beside
    // scripts/profile_squeezenet_pt.py: which convolutions lose to PyTorch's (issue 23).
    if !filters.is_empty() {
        for (name, call) in squeezenet_ops() {
            let name = format!("profile/squeezenet/flex/8/{name}");
            if wanted(&name) {
                report(&name, call, 5);
            }
        }
    }
    for backend in BACKENDS {
        for (k, side) in [(2048, 7), (256, 28)] {
            let name = format!("reduction/[32,{k},{side},{side}]->224/{backend}");
            if wanted(&name) {
                report(&name, reduction(backend, k, side), 5);
            }
        }
    }
    // Resizing a photo to 224 x 224 bilinear: ours (Pillow's algorithm, equal to PIL), the
    // `fast_image_resize` crate (SIMD, not Pillow-equal) and the `image` crate's Triangle.
    for (w, h) in [(451, 300), (4032, 3024)] {
        for path in ["ours", "fast_image_resize", "image"] {
            let name = format!("resize/{w}x{h}->224/{path}");
            if wanted(&name) {
                report(&name, resize_row(path, w, h), 5);
            }
        }
    }
    // The weighted sum alone: the backend-extension op (the CubeCL kernel on wgpu) against the
    // tensor-op reference (a batched matmul), with the bytes each call must move at least.
    println!(
        "\n| weighted sum | path | median ms | min ms | queued ms/call | bytes moved | GB/s |\n|---|---|---|---|---|---|---|"
    );
    for backend in BACKENDS {
        for (k, side) in [(2048, 7), (256, 28), (512, 13)] {
            for path in ["kernel", "tensor-op"] {
                let name = format!("weighted_sum/[32,{k},{side},{side}]/{backend}");
                if wanted(&name) {
                    weighted_sum_row(&name, backend, path, k, side);
                }
            }
        }
    }
}

fn weighted_sum_row(name: &str, backend: &str, path: &str, k: usize, side: usize) {
    let device = device(backend).expect("a backend of this build");
    let weights = Tensor::<3>::random([32, 1, k], Distribution::Default, &device);
    let op = |a: Tensor<4>| match path {
        "kernel" => weighted_sum(a, weights.clone()).expect("matching shapes"),
        _ => weights
            .clone()
            .matmul(a.reshape([32, k, side * side]))
            .reshape([32, 1, side, side]),
    };
    // 16 distinct inputs, materialised and synchronised before any clock starts: a loop over one
    // unchanged input timed faster than its bytes allow on lavapipe.
    let inputs: Vec<Tensor<4>> = (0..16)
        .map(|_| Tensor::random([32, k, side, side], Distribution::Default, &device))
        .collect();
    for a in &inputs {
        fetch(a.clone().narrow(0, 0, 1).narrow(1, 0, 1));
    }
    for a in inputs.iter().take(3) {
        fetch(op(a.clone())); // warm-up: compilation, autotune
    }
    let _ = device.sync();
    // Latency: one call, its map read back.
    let mut times: Vec<f64> = inputs
        .iter()
        .map(|a| {
            let start = Instant::now();
            fetch(op(a.clone()));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = (times[7] + times[8]) / 2.0;
    // Throughput: all 16 calls queued, then every map read back.
    let start = Instant::now();
    let outs: Vec<Tensor<4>> = inputs.iter().map(|a| op(a.clone())).collect();
    for out in outs {
        fetch(out);
    }
    let _ = device.sync();
    let queued = start.elapsed().as_secs_f64() * 1e3 / 16.0;
    // Read A and the weights once, write the map: 4 bytes each.
    let bytes = 4 * (32 * k * side * side + 32 * k + 32 * side * side);
    let gbps = |ms: f64| bytes as f64 / (ms / 1e3) / 1e9;
    println!(
        "| {name} | {path} | {median:.2} | {:.2} | {queued:.2} | {:.1} MB | {:.2} |",
        times[0],
        bytes as f64 / 1e6,
        gbps(queued.min(median))
    );
}

/// Read `tensor` back to the host and touch its values. In Burn 0.22 `into_data` may return
/// before the device has finished (the bytes materialise on first access): a bench that only
/// calls `into_data` times the launch, not the work (0.04 ms for a 13 MB op on lavapipe).
fn fetch<const D: usize>(tensor: Tensor<D>) {
    let data = tensor.into_data();
    let values = data.as_slice::<f32>().expect("f32 values");
    std::hint::black_box(values.iter().sum::<f32>());
}

/// Warm up (twice; once for rows of at most two samples, which take minutes a call), then time
/// `samples` calls one by one: sorted milliseconds.
fn timed(call: &mut dyn FnMut(), samples: usize) -> Vec<f64> {
    call();
    if samples > 2 {
        call();
    }
    let mut times: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// Print the median and minimum of `samples` timed calls.
/// One resize of a synthetic `w x h` photo (detail everywhere) to 224 x 224, bilinear.
fn resize_row(path: &'static str, w: u32, h: u32) -> Box<dyn FnMut()> {
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images};
    let photo = gradcam::image::RgbImage::from_fn(w, h, |x, y| {
        ::image::Rgb([(x * 7 + y) as u8, ((y * 5) ^ x) as u8, (x * y) as u8])
    });
    let mut resizer = Resizer::new();
    Box::new(move || {
        let out: Vec<u8> = match path {
            "ours" => gradcam::image::Resize::Bilinear
                .apply(&photo, [224, 224])
                .unwrap()
                .into_raw(),
            "fast_image_resize" => {
                let src = images::ImageRef::new(w, h, photo.as_raw(), PixelType::U8x3).unwrap();
                let mut dst = images::Image::new(224, 224, PixelType::U8x3);
                let options =
                    ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
                resizer.resize(&src, &mut dst, &options).unwrap();
                dst.into_vec()
            }
            _ => {
                ::image::imageops::resize(&photo, 224, 224, ::image::imageops::FilterType::Triangle)
                    .into_raw()
            }
        };
        std::hint::black_box(out);
    })
}

fn report(name: &str, mut call: Box<dyn FnMut()>, samples: usize) {
    let times = timed(&mut call, samples);
    let median = if samples % 2 == 1 {
        times[samples / 2]
    } else {
        (times[samples / 2 - 1] + times[samples / 2]) / 2.0
    };
    println!("| {name} | {median:.1} | {:.1} | {samples} |", times[0]);
}

/// The method rows: SqueezeNet `fire9` and ResNet-50 `layer4` at batches 8 and 32; Score-CAM
/// and Ablation-CAM at the batches after the second list.
const METHOD_CASES: [(&str, &[&str], &[&str]); 3] = [
    ("squeezenet", &["flex/8", "flex/32"], &["flex/1", "flex/8"]),
    ("resnet50", &["flex/8", "flex/32"], &["flex/1"]),
    ("vit_b16", &["flex/1", "flex/8"], &[]),
];

/// One timed call of `method`: explain each image's top-1 class at the model's layer of
/// [`MODELS`] and read the normalised heatmap back.
fn method_row(method: Method, model: &str, case: &str) -> Box<dyn FnMut()> {
    explainer_row(
        ExplainerConfig::new().with_method(method),
        Call::Explain,
        model,
        case,
    )
}

/// One timed call of an explainer of `config` at the model's layer of [`MODELS`] on each image's
/// top-1 class: its heatmap read back, its guided backpropagation's gradients, or its Deep
/// Feature Factorization's concepts and normalised maps at the input's size.
fn explainer_row(config: ExplainerConfig, call: Call, model: &str, case: &str) -> Box<dyn FnMut()> {
    let (size, layer) = model_spec(model);
    let config = config.with_layer(layer);
    fn boxed<M: GradCam + 'static>(
        config: ExplainerConfig,
        call: Call,
        model: M,
        size: usize,
        case: &str,
    ) -> Box<dyn FnMut()> {
        let (device, batch) = case_of(case).expect("a backend of this build");
        let model = model.to_device(&device);
        let x = input(batch, size, &device);
        let explainer = config.init(&model).unwrap();
        let [_, _, height, width] = x.dims();
        let rest_targets = matches!(call, Call::ExplainRest).then(|| {
            let logits = explainer
                .model()
                .forward_probed(x.clone(), &mut Probe::passthrough()); // [n, classes]
            let top = logits.argmax(1); // [n, 1]
            let classes = top
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap();
            Targets::one_per_image(classes.into_iter().map(|c| Target::rest(c as usize)))
        });
        Box::new(move || match call {
            Call::Explain => fetch(
                explainer
                    .explain(x.clone(), &Targets::top(1))
                    .unwrap()
                    .heatmap,
            ),
            Call::Guided => fetch(
                explainer
                    .guided_backprop(x.clone(), &Targets::top(1))
                    .unwrap()
                    .gradients,
            ),
            Call::ExplainRest => {
                // Each image's top class as a ReST score, found before the clock starts.
                let targets = rest_targets.clone().expect("found at setup");
                fetch(explainer.explain(x.clone(), &targets).unwrap().heatmap);
            }
            Call::Factorize => {
                let dff = explainer
                    .factorize(x.clone(), &FactorizationConfig::new(DFF_CONCEPTS))
                    .unwrap();
                fetch(dff.concepts.clone());
                fetch(dff.maps([height, width]));
            }
        })
    }
    match model {
        "squeezenet" => boxed(config, call, squeezenet(), size, case),
        "lite0" => boxed(config, call, lite0(), size, case),
        "vit_b16" => boxed(config, call, vit_b16(), size, case),
        _ => boxed(config, call, resnet50(), size, case),
    }
}

/// What an explainer row times.
#[derive(Debug, Clone, Copy)]
enum Call {
    Explain,
    /// Explain each image's top class as the ReST score (ShapleyCAM's).
    ExplainRest,
    Guided,
    Factorize,
}

/// pytorch-grad-cam's default number of concepts (`DeepFeatureFactorization.__call__`).
const DFF_CONCEPTS: usize = 16;

/// An option of Grad-CAM, guided backpropagation, or Deep Feature Factorization.
#[derive(Debug, Clone, Copy)]
enum Variant {
    EigenSmooth,
    AugSmooth,
    Guided,
    Dff,
    ShapleyRest,
    Sess,
}

impl Variant {
    const ALL: [Variant; 6] = [
        Variant::EigenSmooth,
        Variant::AugSmooth,
        Variant::Guided,
        Variant::Dff,
        Variant::ShapleyRest,
        Variant::Sess,
    ];

    fn name(self) -> &'static str {
        match self {
            Variant::EigenSmooth => "eigen-smooth",
            Variant::AugSmooth => "aug-smooth",
            Variant::Guided => "guided",
            Variant::Dff => "dff",
            Variant::ShapleyRest => "shapley-cam+rest",
            Variant::Sess => "grad-cam+sess",
        }
    }

    fn cases(self) -> &'static [&'static str] {
        match self {
            // SESS explains 122 patches of a 224 x 224 image: one image is a long call.
            Variant::Guided | Variant::Sess => &["flex/1"],
            _ => &["flex/8"],
        }
    }
}

/// One timed call of Grad-CAM with `option` (each image's top class, the heatmap read back),
/// or of guided backpropagation (its gradients read back).
fn option_row(option: Variant, model: &str, case: &str) -> Box<dyn FnMut()> {
    let config = ExplainerConfig::new()
        .with_eigen_smooth(matches!(option, Variant::EigenSmooth))
        .with_aug_smooth(matches!(option, Variant::AugSmooth));
    let (config, call) = match option {
        Variant::Guided => (config, Call::Guided),
        Variant::Dff => (config, Call::Factorize),
        Variant::ShapleyRest => (config.with_method(Method::ShapleyCam), Call::ExplainRest),
        Variant::Sess => (config.with_sess(SessConfig::new()), Call::Explain),
        Variant::EigenSmooth | Variant::AugSmooth => (config, Call::Explain),
    };
    explainer_row(config, call, model, case)
}

/// Each op of SqueezeNet 1.1's forward at batch 8 on flex, on a random input of its shape (a
/// convolution's time does not depend on the values): the convolutions with their ReLU, the
/// max-pools, the Fire concatenations. Each call reads back one sum of the output.
fn squeezenet_ops() -> Vec<(String, Box<dyn FnMut()>)> {
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::activation::relu;
    let device = Device::flex();
    let model = burn::module::Module::to_device(squeezenet(), &device);
    let random =
        |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let mut ops: Vec<(String, Box<dyn FnMut()>)> = Vec::new();
    let x = random([8, 3, 227, 227]);
    let conv1 = model.conv1.clone();
    ops.push((
        "conv1".into(),
        Box::new(move || fetch(relu(conv1.forward(x.clone())).sum())),
    ));
    let pool = MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init();
    for (side, c) in [(113, 64), (56, 128), (27, 256)] {
        let x = random([8, c, side, side]);
        let pool = pool.clone();
        ops.push((
            format!("pool{side}"),
            Box::new(move || fetch(pool.forward(x.clone()).sum())),
        ));
    }
    let fires = [
        ("fire2", &model.fire2, 64, 56),
        ("fire3", &model.fire3, 128, 56),
        ("fire4", &model.fire4, 128, 27),
        ("fire5", &model.fire5, 256, 27),
        ("fire6", &model.fire6, 256, 13),
        ("fire7", &model.fire7, 384, 13),
        ("fire8", &model.fire8, 384, 13),
        ("fire9", &model.fire9, 512, 13),
    ];
    for (name, fire, c, side) in fires {
        let x = random([8, c, side, side]);
        let [squeezed, ..] = fire.squeeze.weight.dims();
        let s = random([8, squeezed, side, side]);
        let (squeeze, e1, e3) = (
            fire.squeeze.clone(),
            fire.expand1x1.clone(),
            fire.expand3x3.clone(),
        );
        let input = x.clone();
        ops.push((
            format!("{name}.squeeze"),
            Box::new(move || fetch(relu(squeeze.forward(input.clone())).sum())),
        ));
        let input = s.clone();
        ops.push((
            format!("{name}.expand1x1"),
            Box::new(move || fetch(relu(e1.forward(input.clone())).sum())),
        ));
        let input = s.clone();
        ops.push((
            format!("{name}.expand3x3"),
            Box::new(move || fetch(relu(e3.forward(input.clone())).sum())),
        ));
        // The same 3x3 convolution as an unfold (im2col) and one matrix product (issue 23).
        let e3 = fire.expand3x3.clone();
        let input = s.clone();
        ops.push((
            format!("{name}.expand3x3.im2col"),
            Box::new(move || {
                let [n, c, h, w] = input.dims();
                let [o, ..] = e3.weight.dims();
                let columns = burn::tensor::module::unfold4d(
                    input.clone(),
                    [3, 3],
                    burn::tensor::ops::UnfoldOptions::new([1, 1], [1, 1], [1, 1]),
                ); // [n, c 9, h w]
                let weight = e3.weight.val().reshape([1, o, c * 9]);
                let y = weight.matmul(columns) + e3.bias.as_ref().unwrap().val().reshape([1, o, 1]);
                fetch(relu(y.reshape([n, o, h, w])).sum())
            }),
        ));
        let [expanded, ..] = fire.expand1x1.weight.dims();
        let halves = (
            random([8, expanded, side, side]),
            random([8, expanded, side, side]),
        );
        ops.push((
            format!("{name}.concat"),
            Box::new(move || fetch(Tensor::cat(vec![halves.0.clone(), halves.1.clone()], 1).sum())),
        ));
    }
    let x = random([8, 512, 13, 13]);
    let conv10 = model.conv10.clone();
    ops.push((
        "conv10".into(),
        Box::new(move || fetch(relu(conv10.forward(x.clone())).sum())),
    ));
    ops
}

/// `(name, input size, explained layer)` of the benchmarked models.
const MODELS: [(&str, usize, &str); 3] = [
    ("squeezenet", 227, "fire9"),
    ("lite0", 224, "head"),
    ("resnet50", 224, "layer4"),
];

/// The benchmarked transformers, as [`MODELS`]: only when a filter names them.
const TRANSFORMERS: [(&str, usize, &str); 1] = [("vit_b16", 224, "blocks.11.norm1")];

/// The input size and explained layer of a model of [`MODELS`] or [`TRANSFORMERS`].
fn model_spec(model: &str) -> (usize, &'static str) {
    let (_, size, layer) = *MODELS
        .iter()
        .chain(&TRANSFORMERS)
        .find(|(name, ..)| *name == model)
        .expect("a model of MODELS or TRANSFORMERS");
    (size, layer)
}

/// Whether `model` is one of [`TRANSFORMERS`].
fn transformer(model: &str) -> bool {
    TRANSFORMERS.iter().any(|(name, ..)| *name == model)
}

#[cfg(feature = "wgpu")]
const BACKENDS: &[&str] = &["flex", "ndarray", "wgpu"];
#[cfg(not(feature = "wgpu"))]
const BACKENDS: &[&str] = &["flex", "ndarray"];

const CASES: &[&str] = &[
    "flex/1",
    "flex/8",
    "flex/32",
    "ndarray/1",
    "ndarray/8",
    "ndarray/32",
    "wgpu/1",
    "wgpu/8",
    "wgpu/32",
    // Only when a filter names it (`-- resnet50/wgpu/64`): the GPU comparison of issue 4. On
    // lavapipe a full run would take most of an hour.
    "wgpu/64",
];

fn device(name: &str) -> Option<Device> {
    match name {
        "flex" => Some(Device::flex()),
        #[allow(deprecated)] // burn-ndarray is deprecated upstream, still supported here
        "ndarray" => Some(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Some(Device::wgpu(Default::default())),
        _ => None,
    }
}

#[cfg(feature = "wgpu")]
fn describe(name: &str, device: &Device) -> String {
    match (name, device.identity()) {
        ("wgpu", Some(identity)) if identity.name.contains("llvmpipe") => {
            format!(
                "{} (lavapipe: SOFTWARE Vulkan on the CPU, not a GPU figure)",
                identity.name
            )
        }
        (_, Some(identity)) => identity.name,
        _ => "CPU".to_string(),
    }
}

#[cfg(not(feature = "wgpu"))]
fn describe(_: &str, _: &Device) -> String {
    "CPU".to_string()
}

fn peak_rss(name: &str) {
    let parts: Vec<&str> = name.split('/').collect();
    let [what, model, backend, batch] = parts[..] else {
        panic!("GRADCAM_BENCH_RSS=grad_cam|forward/squeezenet|lite0|resnet50/BACKEND/BATCH");
    };
    let mut call = match what.strip_prefix("method:") {
        Some(method) => method_row(
            method.parse().expect("a method"),
            model,
            &format!("{backend}/{batch}"),
        ),
        None => row(what, model, &format!("{backend}/{batch}")),
    };
    for _ in 0..3 {
        call();
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN);
    println!("{name}: peak RSS {:.0} MiB", kib / 1024.0);
}

/// `(device, batch)` for a case, or `None` where this build has no such backend.
fn case_of(case: &str) -> Option<(Device, usize)> {
    let (backend, batch) = case.split_once('/')?;
    Some((device(backend)?, batch.parse().ok()?))
}

fn asset(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

fn input(batch: usize, size: usize, device: &Device) -> Tensor<4> {
    Tensor::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        device,
    )
}

/// One timed call of `what` (`grad_cam`: explain the top-1 class at the model's layer in
/// [`MODELS`] and read the normalised heatmap back; `forward`: the logits read back) on an
/// input already on the device.
fn row(what: &str, model: &str, case: &str) -> Box<dyn FnMut()> {
    if what == "grad_cam" {
        return method_row(Method::GradCam, model, case);
    }
    let (size, _) = model_spec(model);
    fn boxed<M: GradCam + 'static>(model: M, size: usize, case: &str) -> Box<dyn FnMut()> {
        let (device, batch) = case_of(case).expect("a backend of this build");
        let model = model.to_device(&device);
        let x = input(batch, size, &device);
        Box::new(move || fetch(model.forward_probed(x.clone(), &mut Probe::passthrough())))
    }
    match model {
        "squeezenet" => boxed(squeezenet(), size, case),
        "lite0" => boxed(lite0(), size, case),
        "vit_b16" => boxed(vit_b16(), size, case),
        _ => boxed(resnet50(), size, case),
    }
}

fn squeezenet() -> SqueezeNet {
    load_weights(
        SqueezeNet::new(&Device::flex()),
        asset("squeezenet1_1.safetensors"),
    )
    .unwrap()
}

/// BatchNorm is folded into the convolutions, as a user explaining with these models should;
/// `GRADCAM_BENCH_UNFOLDED=1` keeps it, to measure what folding saves.
fn folded() -> bool {
    std::env::var_os("GRADCAM_BENCH_UNFOLDED").is_none()
}

fn lite0() -> EfficientNetLite0 {
    let model = load_weights(
        EfficientNetLite0::new(&Device::flex()),
        asset("efficientnet_lite0.safetensors"),
    )
    .unwrap();
    if folded() {
        model.fold_batchnorm()
    } else {
        model
    }
}

/// ViT-B/16 (torchvision's `vit_b_16` shape), random weights from seed 0: time does not
/// depend on the weights, and pytorch-grad-cam's side (`bench_pgc.py`) is random too.
fn vit_b16() -> Vit {
    let device = Device::flex();
    device.seed(0);
    VitConfig::new(224, 16, 768, 12, 12, 3072, 1000).init(&device)
}

fn resnet50() -> ResNet {
    let device = Device::flex();
    device.seed(0);
    let model = ResNet::resnet50(1000, &device);
    if folded() {
        model.fold_batchnorm()
    } else {
        model
    }
}

/// The input is the explained layer, global average pooling and a linear layer follow: a model
/// whose forward and backward are negligible, so that [`gradcam::Explainer::explain_capture`]
/// on its capture times the method and the post-processing alone.
#[derive(burn::module::Module, Debug)]
struct Gap {
    fc: burn::nn::Linear,
}

impl GradCam for Gap {
    fn layers(&self) -> Vec<String> {
        vec!["input".into()]
    }
    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("input", x); // [n, k, h, w]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, 1000]
    }
}

/// The reduction alone at realistic shapes: Grad-CAM's weights from the captured gradients,
/// the weighted sum (the kernel path), ReLU, normalisation, upsampling to 224x224, read back.
/// `[32, 2048, 7, 7]` is ResNet-50's layer4 at batch 32; `[32, 256, 28, 28]` a mid-level layer.
fn reduction(backend: &str, k: usize, side: usize) -> Box<dyn FnMut()> {
    let device = device(backend).expect("a backend of this build");
    let model = Gap {
        fc: burn::nn::LinearConfig::new(k, 1000).init(&device),
    };
    let explainer = ExplainerConfig::new()
        .with_method(Method::GradCam)
        .init(&model)
        .unwrap();
    let acts = Tensor::<4>::random([32, k, side, side], Distribution::Default, &device);
    let capture = explainer.capture(acts, &Targets::top(1)).unwrap();
    Box::new(move || {
        let e = explainer.explain_capture(&capture).unwrap();
        fetch(gradcam_upsampled(e.layers[0].heatmap.clone()));
    })
}

/// The layer's map upsampled to 224x224 (the Gap model's input is the layer itself, so its
/// heatmap is at the layer's resolution).
fn gradcam_upsampled(map: Tensor<4>) -> Tensor<4> {
    burn::tensor::module::interpolate(
        map,
        burn::tensor::ops::InterpolateOptions::new(burn::tensor::ops::InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size([224, 224]),
    )
}
