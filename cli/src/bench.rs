//! `gradcam-bench`: Grad-CAM timed on this machine, per model, device and float type, for a
//! GPU check from a release binary (scripts/gpu_check.sh) or a CPU row.
//!
//! ```sh
//! cargo run --release -p gradcam-cli --features vulkan --bin gradcam-bench -- \
//!     --device vulkan --dtype f16 --model resnet50 --batch 64
//! ```
//!
//! One process measures one device and float type (a device's float type is fixed before its
//! first tensor), in this order: the first forward (kernel compilation and autotuning in a fresh
//! process), the first explain ([`Explainer::warm_up`]), then `--iters` timed calls each of the
//! forward alone, the capture (forward to the layer, backward from the scores), the explain with
//! its maps left on the device, and the whole explain with the heatmap read back; then the stream of `--stream` batches against the same
//! number of plain `explain` calls, and with `--photos` the photos decoded on worker threads.
//! Every timed call ends with its result read back to the host (which waits for the device).
//! Rows print as markdown; `--json FILE` appends one JSON object per measurement.

mod backend;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Distribution, Tensor};
use clap::{Parser, ValueEnum};
use gradcam::image::Preprocess;
use gradcam::models::{EfficientNetLite0, ResNet, SqueezeNet, load_weights};
use gradcam::{Explainer, ExplainerConfig, GradCam, Probe, Targets};

use crate::backend::{Backend, Precision};

/// Time Grad-CAM on this machine.
#[derive(Debug, Parser)]
#[command(name = "gradcam-bench", version)]
struct Args {
    /// Where it runs.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    device: Backend,
    /// The device's float type, set before any tensor exists.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// The models (SqueezeNet and EfficientNet-Lite0 with their bundled weights, ResNet-50 with
    /// random weights: timing only).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Model::Squeezenet])]
    model: Vec<Model>,
    /// Images per batch.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Timed calls per measurement (the median is reported, and the minimum).
    #[arg(long, default_value_t = 10)]
    iters: usize,
    /// Warm-up calls after the first, untimed.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Batches in the stream measurement (0: none).
    #[arg(long, default_value_t = 0)]
    stream: usize,
    /// Batches the stream keeps submitted ahead of its reads (`Stream::with_in_flight`).
    #[arg(long, default_value_t = 1)]
    in_flight: usize,
    /// With --stream: photos (files) cycled to `--stream * --batch` images, decoded on worker
    /// threads for the stream and on the calling thread for the plain loop (SqueezeNet only).
    #[arg(long, num_args = 1..)]
    photos: Vec<PathBuf>,
    /// Decoding threads for --photos (default: the CPUs, less one).
    #[arg(long)]
    threads: Option<usize>,
    /// The folder with the bundled weights.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))]
    assets: PathBuf,
    /// Instead of the models: time the weighted channel sum alone, one kernel against split-K
    /// (`weighted_sum` vs `weighted_sum_split`), at the layers of the three models.
    #[arg(long)]
    kernels: bool,
    /// Append one JSON object per measurement to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Model {
    Squeezenet,
    Lite0,
    Resnet50,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gradcam-bench: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let device = args.device.device_in(args.dtype)?;
    if args.kernels {
        return kernels(args, &device);
    }
    println!(
        "| model | device | dtype | batch | first forward s | first explain s | forward ms | capture ms | explain, maps on device ms | explain ms | explain / forward |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut json = |line: String| -> Result<(), String> {
        let Some(path) = &args.json else {
            return Ok(());
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(file, "{line}").map_err(|e| format!("{}: {e}", path.display()))
    };
    for &model in &args.model {
        let text = |e: gradcam::GradCamError| e.to_string();
        let weights = |name: &str| args.assets.join(name);
        match model {
            Model::Squeezenet => {
                let net = load_weights(
                    SqueezeNet::new(&device),
                    weights("squeezenet1_1.safetensors"),
                )
                .map_err(text)?;
                let prep = SqueezeNet::preprocess();
                measure(args, model, &net, 227, &prep, &device, &mut json)?;
            }
            Model::Lite0 => {
                let net = load_weights(
                    EfficientNetLite0::new(&device),
                    weights("efficientnet_lite0.safetensors"),
                )
                .map_err(text)?
                .fold_batchnorm();
                let prep = EfficientNetLite0::preprocess();
                measure(args, model, &net, 224, &prep, &device, &mut json)?;
            }
            Model::Resnet50 => {
                let net = ResNet::resnet50(1000, &device).fold_batchnorm();
                measure(
                    args,
                    model,
                    &net,
                    224,
                    &ResNet::preprocess(),
                    &device,
                    &mut json,
                )?;
            }
        }
    }
    Ok(())
}

/// Every measurement of one model; returns its JSON object.
fn measure<M: GradCam>(
    args: &Args,
    model: Model,
    net: &M,
    size: usize,
    prep: &Preprocess,
    device: &Device,
    json: &mut dyn FnMut(String) -> Result<(), String>,
) -> Result<(), String> {
    let text = |e: gradcam::GradCamError| e.to_string();
    let batch = args.batch.max(1);
    let shape = [batch, 3, size, size];
    let input = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let targets = Targets::top(1);
    let explainer = ExplainerConfig::new().init(net).map_err(text)?;
    let forward = || {
        let logits = explainer
            .model()
            .forward_probed(input.clone(), &mut Probe::passthrough());
        touch(
            logits
                .into_data()
                .convert::<f32>()
                .as_slice::<f32>()
                .map(<[f32]>::len),
        );
    };

    let first_forward = timed(forward);
    let first_explain = explainer.warm_up(shape).map_err(text)?;
    let forward_ms = median(args, forward);
    let capture_ms = median(args, || {
        let capture = explainer.capture(input.clone(), &targets);
        touch(capture.map(|c| c.targets.len()).map_err(text));
    });
    // The call alone: `explain` waits for its own values (scores, checks), so for every kernel,
    // but leaves the heatmap on the device.
    let on_device_ms = median(args, || {
        let explanation = explainer.explain(input.clone(), &targets);
        touch(explanation.map(|e| e.targets.len()).map_err(text));
    });
    let explain_ms = median(args, || {
        let explanation = explainer.explain(input.clone(), &targets);
        touch(explanation.map_err(text).and_then(|e| heatmap_len(&e)));
    });

    let (fwd, cap, exp) = (forward_ms, capture_ms, explain_ms);
    println!(
        "| {model:?} | {:?} | {:?} | {batch} | {:.1} | {:.1} | {:.2} (min {:.2}) | {:.2} (min {:.2}) | {:.2} (min {:.2}) | {:.2} (min {:.2}) | {:.2} |",
        args.device,
        args.dtype,
        first_forward.as_secs_f64(),
        first_explain.as_secs_f64(),
        fwd.0,
        fwd.1,
        cap.0,
        cap.1,
        on_device_ms.0,
        on_device_ms.1,
        exp.0,
        exp.1,
        exp.0 / fwd.0,
    );
    let _ = std::io::stdout().flush();
    let head = format!(
        "\"model\":\"{model:?}\",\"device\":\"{:?}\",\"dtype\":\"{:?}\",\"batch\":{batch}",
        args.device, args.dtype
    );
    json(format!(
        "{{{head},\"kind\":\"explain\",\"first_forward_s\":{:.3},\"first_explain_s\":{:.3},\
         \"forward_ms\":{:.3},\"forward_min_ms\":{:.3},\"capture_ms\":{:.3},\
         \"explain_on_device_ms\":{:.3},\"explain_ms\":{:.3},\"explain_min_ms\":{:.3}}}",
        first_forward.as_secs_f64(),
        first_explain.as_secs_f64(),
        fwd.0,
        fwd.1,
        cap.0,
        on_device_ms.0,
        exp.0,
        exp.1,
    ))?;

    if args.stream == 0 || (!args.photos.is_empty() && model != Model::Squeezenet) {
        return Ok(());
    }
    let (stream, plain) = if args.photos.is_empty() {
        let images = (args.stream * batch) as f64;
        let start = Instant::now();
        let batches = (0..args.stream).map(|_| input.clone());
        for item in explainer
            .stream(batches, &targets)
            .with_in_flight(args.in_flight)
        {
            touch(item.map(|i| i.heatmaps.len()).map_err(text));
        }
        let stream = images / start.elapsed().as_secs_f64();
        let start = Instant::now();
        for _ in 0..args.stream {
            let explanation = explainer.explain(input.clone(), &targets);
            touch(explanation.map_err(text).and_then(|e| heatmap_len(&e)));
        }
        (stream, images / start.elapsed().as_secs_f64())
    } else {
        photo_stream(args, &explainer, prep, device)?
    };
    let from = if args.photos.is_empty() {
        "tensors"
    } else {
        "photos"
    };
    println!(
        "| {model:?} | {:?} | {:?} | {batch} | stream of {} batches from {from}, {} in flight: {stream:.0} img/s; one explain per batch: {plain:.0} img/s |",
        args.device, args.dtype, args.stream, args.in_flight
    );
    json(format!(
        "{{{head},\"kind\":\"stream\",\"from\":\"{from}\",\"batches\":{},\"in_flight\":{},\
         \"stream_img_s\":{stream:.1},\"loop_img_s\":{plain:.1}}}",
        args.stream, args.in_flight
    ))
}

/// The weighted channel sum alone at each model's layer (batch `--batch`, one target): one
/// thread per output against split-K with 4 to 32 parts; median ms per call of `--iters` runs of
/// 20 calls, each ending with one read.
fn kernels(args: &Args, device: &Device) -> Result<(), String> {
    let text = |e: gradcam::GradCamError| e.to_string();
    let splits = [4, 8, 16, 32];
    println!(
        "| weighted sum [b, k, h, w] | device | dtype | direct ms | {} |",
        splits.map(|s| format!("split {s} ms")).join(" | ")
    );
    println!("|---|---|---|---|{}", "---|".repeat(splits.len()));
    for [k, side] in [[2048, 7], [512, 13], [1280, 7]] {
        let b = args.batch.max(1);
        let acts = Tensor::<4>::random([b, k, side, side], Distribution::Normal(0.0, 1.0), device);
        let weights = Tensor::<3>::random([b, 1, k], Distribution::Normal(0.0, 1.0), device);
        let time = |split: usize| -> Result<f64, String> {
            let run = || -> Result<(), String> {
                let mut total = Tensor::<1>::zeros([1], device);
                for _ in 0..20 {
                    let out = if split == 1 {
                        gradcam::kernels::weighted_sum(acts.clone(), weights.clone())
                    } else {
                        gradcam::kernels::weighted_sum_split(acts.clone(), weights.clone(), split)
                    }
                    .map_err(text)?;
                    total = total + out.sum();
                }
                let data = total.into_data().convert::<f32>();
                touch(data.as_slice::<f32>().map(<[f32]>::len));
                Ok(())
            };
            run()?;
            let (median, _) = median(args, || touch(run()));
            Ok(median / 20.0)
        };
        let direct = time(1)?;
        let split = splits
            .iter()
            .map(|&s| time(s).map(|t| format!("{t:.3}")))
            .collect::<Result<Vec<_>, _>>()?;
        println!(
            "| [{b}, {k}, {side}, {side}] | {:?} | {:?} | {direct:.3} | {} |",
            args.device,
            args.dtype,
            split.join(" | ")
        );
    }
    Ok(())
}

/// Photos per second: the stream with worker-thread decoding, then the plain loop (decode on
/// this thread, explain, read back), over the same `--stream` batches.
fn photo_stream<M: GradCam>(
    args: &Args,
    explainer: &Explainer<M>,
    prep: &Preprocess,
    device: &Device,
) -> Result<(f64, f64), String> {
    let text = |e: gradcam::GradCamError| e.to_string();
    let batch = args.batch.max(1);
    let paths: Vec<PathBuf> = args
        .photos
        .iter()
        .cycle()
        .take(args.stream * batch)
        .cloned()
        .collect();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
    });
    let targets = Targets::top(1);

    let start = Instant::now();
    let batches = prep
        .batches(paths.clone(), batch, threads, device)
        .filter_map(|b| b.input);
    let mut images = 0;
    for item in explainer
        .stream(batches, &targets)
        .with_in_flight(args.in_flight)
    {
        let item = item.map_err(text)?;
        images += item.explanation.targets.len();
        touch(Ok::<_, String>(item.heatmaps.len()));
    }
    let stream = images as f64 / start.elapsed().as_secs_f64();

    let start = Instant::now();
    let mut images = 0;
    for chunk in paths.chunks(batch) {
        let photos = chunk
            .iter()
            .map(gradcam::image::load_image)
            .collect::<Result<Vec<_>, _>>()
            .map_err(text)?;
        let input = prep.to_tensor(&photos, device).map_err(text)?;
        let explanation = explainer.explain(input, &targets).map_err(text)?;
        images += explanation.targets.len();
        touch(heatmap_len(&explanation));
    }
    let plain = images as f64 / start.elapsed().as_secs_f64();
    Ok((stream, plain))
}

/// The heatmap read back to the host, every value touched: its length.
fn heatmap_len(explanation: &gradcam::Explanation) -> Result<usize, String> {
    let data = explanation.heatmap.clone().into_data().convert::<f32>();
    let values = data.as_slice::<f32>().map_err(|e| format!("{e:?}"))?;
    Ok(values.iter().filter(|v| v.is_finite()).count())
}

/// Fail loudly on a failed call: a benchmark of errors means nothing.
fn touch<T, E: std::fmt::Debug>(result: Result<T, E>) {
    if let Err(error) = result {
        panic!("a timed call failed: {error:?}");
    }
}

fn timed(mut call: impl FnMut()) -> Duration {
    let start = Instant::now();
    call();
    start.elapsed()
}

/// `(median, min)` in ms of `--iters` calls after `--warmup` untimed ones.
fn median(args: &Args, mut call: impl FnMut()) -> (f64, f64) {
    for _ in 0..args.warmup {
        call();
    }
    let mut times: Vec<f64> = (0..args.iters.max(1))
        .map(|_| timed(&mut call).as_secs_f64() * 1e3)
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}
