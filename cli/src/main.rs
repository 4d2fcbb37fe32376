//! `gradcam`: class-activation maps for a file or a folder of photos.
//!
//! ```sh
//! cargo run --features flex,ndarray,wgpu --bin gradcam -- photos/ --out out/maps --top 3 --raw
//! ```
//!
//! Per photo and explained class it writes `<name>.<class>.png`, the overlay at the photo's own
//! resolution and aspect ratio, and with `--raw` `<name>.<class>.npy`, the map at the model's
//! input resolution (float32, `[H, W]`, readable by `numpy.load`), with `--guided`
//! `<name>.<class>.guided.png`, its Guided Grad-CAM; and once `summary.json`. A
//! file that cannot be read or decoded is reported and skipped; the exit code is 1 when any
//! failed. Nothing is written into an input folder.

mod backend;
mod inputs;
mod network;
mod outputs;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use burn::tensor::{Tensor, TensorData};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, ValueEnum};
use gradcam::image::{Colormap, Preprocess, Resize};
use gradcam::models::imagenet_classes;
use gradcam::{
    CamMethod, ExplainerConfig, GradCam, Method, SessConfig, Target, Targets, guided_grad_cam,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::backend::{Backend, Precision};
use crate::inputs::{Decoded, Found, decode_in_background, list_photos};
use crate::network::Network;
use crate::outputs::{MapEntry, Outputs, PhotoEntry, Summary};

/// Explain photos with a pretrained ImageNet model: overlays at each photo's resolution, raw
/// maps as .npy (with --raw) and a summary.json in --out.
#[derive(Debug, Parser)]
#[command(name = "gradcam", version, after_help = AFTER_HELP)]
pub struct Args {
    /// Photos, or folders of photos (searched recursively; every file is tried).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The model.
    #[arg(long, value_enum, default_value_t = Network::Squeezenet)]
    pub model: Network,
    /// Weights: safetensors (SqueezeNet, EfficientNet-Lite0: bundled in the repository's
    /// assets/ when omitted), or a torchvision `.pth` / `.safetensors` (ResNets: required).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The layer to explain (default: the model's last convolutional block).
    #[arg(long)]
    pub layer: Option<String>,
    /// The CAM method (every built-in one that explains a convolutional network: LeGrad, which
    /// explains a transformer's attention, is the library's).
    #[arg(
        long,
        default_value_t = Method::GradCam,
        value_parser = PossibleValuesParser::new(
            Method::ALL
                .into_iter()
                .filter(|m| !m.reads_attention())
                .map(Method::name)
        )
        .try_map(|name| name.parse::<Method>())
    )]
    pub method: Method,
    /// Explain this class for every photo (instead of the top predictions).
    #[arg(long, conflicts_with = "top")]
    pub class: Option<usize>,
    /// Explain each photo's K most probable classes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub top: u16,
    /// Keep the signed map (no ReLU before normalisation).
    #[arg(long)]
    pub no_relu: bool,
    /// Each map as the first principal component of its channel contributions (pytorch-grad-cam's
    /// eigen_smooth): less noise.
    #[arg(long)]
    pub eigen_smooth: bool,
    /// Average each heatmap over six augmented inputs, mirrored and at brightness 0.9, 1, 1.1
    /// (pytorch-grad-cam's aug_smooth): six times the work.
    #[arg(long)]
    pub aug_smooth: bool,
    /// Enhance each map with SESS (pytorch-grad-cam's meta-method, its defaults): the photo at 12
    /// scales, a window slid over each, every patch explained and the maps fused: 122 patches
    /// for a 224 x 224 input, a few hundred times the work.
    #[arg(long)]
    pub sess: bool,
    /// Where the maps run.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub device: Backend,
    /// The float type the network runs in (f16: faster on a GPU; the maps stay f32).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,
    /// Photos per forward.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch: u16,
    /// The output folder (created; must not be inside an input folder).
    #[arg(long, default_value = "gradcam-out")]
    pub out: PathBuf,
    /// Also write each map as <name>.<class>.npy.
    #[arg(long)]
    pub raw: bool,
    /// Also write each class's Guided Grad-CAM (guided backpropagation times the map, the
    /// Grad-CAM paper's pixel-level picture) as <name>.<class>.guided.png.
    #[arg(long)]
    pub guided: bool,
    /// How each photo becomes the model's input: PIL's bilinear or bicubic resize of the whole
    /// photo, or torchvision's Resize(256 for 224) + CenterCrop.
    #[arg(long, value_enum, default_value_t = Fit::Bilinear)]
    pub resize: Fit,
    /// The overlay's colormap.
    #[arg(long, value_enum, default_value_t = Palette::Jet)]
    pub colormap: Palette,
}

const AFTER_HELP: &str = "Files written in --out: <name>.<class>.png per photo and class (the \
overlay at the photo's resolution), <name>.<class>.npy with --raw (the map at the model's input \
resolution, float32), <name>.<class>.guided.png with --guided (at the model's input \
resolution, as pytorch-grad-cam's deprocess_image), and summary.json (per photo: file, size, and per class its name, logit \
and the files written; or the error). <name> is the photo's file stem, made unique. Exit code: \
0 when every photo was explained, 1 when any failed, 2 for bad arguments or a model that does \
not load.";

/// The resizes of `--resize`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Fit {
    /// PIL's `Image.resize(size, BILINEAR)`, as the bundled models' fixtures.
    Bilinear,
    /// PIL's `Image.resize(size, BICUBIC)`.
    Bicubic,
    /// torchvision's `Resize(s) + CenterCrop(size)`, `s = size * 8 / 7` (256 for 224).
    CenterCrop,
}

impl Fit {
    /// The resize for a model input of `[height, width]`.
    pub fn resize(self, [height, width]: [usize; 2]) -> Resize {
        match self {
            Self::Bilinear => Resize::Bilinear,
            Self::Bicubic => Resize::Bicubic,
            Self::CenterCrop => Resize::ShorterSideThenCenterCrop {
                shorter: (height.max(width) * 8 / 7) as u32,
            },
        }
    }
}

/// Colormaps for the overlay.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Palette {
    /// OpenCV's jet, as pytorch-grad-cam's `show_cam_on_image`.
    Jet,
    /// Google's turbo.
    Turbo,
    /// matplotlib's viridis.
    Viridis,
}

impl From<Palette> for Colormap {
    fn from(palette: Palette) -> Self {
        match palette {
            Palette::Jet => Colormap::Jet,
            Palette::Turbo => Colormap::Turbo,
            Palette::Viridis => Colormap::Viridis,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match network::load_and_run(&args) {
        Ok(summary) => {
            if summary.failed() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Explain every photo of `args.inputs` with `model`, writing as the help says.
///
/// # Errors
/// A message for what stops the whole run: an input that does not exist, an output folder that
/// cannot be made or lies in an input folder, a layer the model lacks, a class it does not have,
/// a failed write.
pub fn run<M: GradCam>(
    model: &M,
    prep: &Preprocess,
    args: &Args,
    device: &burn::tensor::Device,
) -> Result<Summary, String> {
    let prep = &prep.clone().with_resize(args.resize.resize(prep.size));
    let calls = target_calls(args, imagenet_classes().len())?;
    let found = list_photos(&args.inputs)?;
    let mut outputs = Outputs::create(&args.out, &args.inputs, args)?;
    let mut config = ExplainerConfig::new()
        .with_method(args.method)
        .with_relu(!args.no_relu)
        .with_eigen_smooth(args.eigen_smooth)
        .with_aug_smooth(args.aug_smooth);
    if args.sess {
        config = config.with_sess(SessConfig::new());
    }
    if let Some(layer) = &args.layer {
        config = config.with_layer(layer.clone());
    }
    let explainer = config.init(model).map_err(|e| e.to_string())?;
    outputs.summary.layer = explainer.config().layers.join(",");

    let bar = if std::io::stdout().is_terminal() {
        ProgressBar::new(found.len() as u64)
    } else {
        ProgressBar::with_draw_target(Some(found.len() as u64), ProgressDrawTarget::hidden())
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} photos, {per_sec}, eta {eta}")
            .map_err(|e| e.to_string())?,
    );
    let start = Instant::now();
    // Entries in the order found: skipped ones at once, files as their batch finishes.
    let mut entries: Vec<Option<PhotoEntry>> = found.iter().map(|_| None).collect();
    let mut files = Vec::new();
    for (index, item) in found.into_iter().enumerate() {
        match item {
            Found::File(path) => files.push((index, path)),
            Found::Skipped { path, why } => {
                bar.suspend(|| eprintln!("skipped {}: {why}", path.display()));
                entries[index] = Some(PhotoEntry::failed(&path, why));
                bar.inc(1);
            }
        }
    }
    let (indices, paths): (Vec<usize>, Vec<PathBuf>) = files.into_iter().unzip();
    let mut warned = false; // that the model has no guided ReLU (--guided)
    let mut index = indices.into_iter();
    let [h, w] = prep.size;
    for batch in decode_in_background(paths, usize::from(args.batch), prep.clone()) {
        let mut photos = Vec::new(); // (entry index, path, photo) of the photos that decoded
        let mut values = Vec::new();
        for Decoded { path, photo } in batch {
            let at = index.next().ok_or("more photos decoded than listed")?;
            match photo {
                Ok(photo) => {
                    values.extend_from_slice(&photo.input);
                    photos.push((at, path, photo));
                }
                Err(error) => {
                    bar.suspend(|| eprintln!("skipped {}: {error}", path.display()));
                    entries[at] = Some(PhotoEntry::failed(&path, error));
                    bar.inc(1);
                }
            }
        }
        if photos.is_empty() {
            continue;
        }
        let input =
            Tensor::<4>::from_data(TensorData::new(values, [photos.len(), 3, h, w]), device);
        let mut maps: Vec<Result<Vec<MapEntry>, String>> =
            photos.iter().map(|_| Ok(Vec::new())).collect();
        for targets in &calls {
            match explain(&explainer, input.clone(), targets, args.guided) {
                Ok((explanation, guided)) => {
                    if guided.as_ref().is_some_and(|g| g.relus == 0) && !warned {
                        bar.suspend(|| eprintln!("{NO_GUIDED_RELU}"));
                        warned = true;
                    }
                    for (i, (_, path, photo)) in photos.iter().enumerate() {
                        let pixels = guided.as_ref().map(|g| g.image(i));
                        if let Ok(written) = &mut maps[i] {
                            written.extend(outputs.write(
                                path,
                                photo,
                                &explanation,
                                i,
                                prep,
                                pixels,
                            )?);
                        }
                    }
                }
                Err(error) => maps.iter_mut().for_each(|m| *m = Err(error.clone())),
            }
        }
        for ((at, path, photo), maps) in photos.into_iter().zip(maps) {
            entries[at] = Some(match maps {
                Ok(maps) => PhotoEntry::explained(&path, photo.size, maps),
                Err(error) => {
                    bar.suspend(|| eprintln!("failed {}: {error}", path.display()));
                    PhotoEntry::failed(&path, error)
                }
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    outputs.summary.seconds = seconds;
    outputs.summary.photos = entries.into_iter().flatten().collect();
    outputs.finish()?;
    let summary = outputs.summary;
    let done = summary.photos.len() - summary.failed();
    println!(
        "explained {done} of {} photos ({} failed) in {seconds:.1} s: {:.2} photos/s; wrote {}",
        summary.photos.len(),
        summary.failed(),
        done as f64 / seconds.max(1e-9),
        args.out.join("summary.json").display()
    );
    Ok(summary)
}

/// The warning of `--guided` for a model with no ReLU through the probe.
const NO_GUIDED_RELU: &str = "warning: --guided: the model routes no ReLU through Probe::relu \
(EfficientNet-Lite0's are ReLU6, which pytorch-grad-cam does not guide either): its guided \
maps are the plain input gradient times the heatmap";

/// One batch's Guided Grad-CAM on the host, `[n, m, 3, H, W]`, and how many ReLUs were guided.
struct GuidedPixels {
    values: Vec<f32>,
    per_image: usize,
    relus: usize,
}

impl GuidedPixels {
    /// Image `i`'s values, `[m, 3, H, W]`.
    fn image(&self, i: usize) -> &[f32] {
        &self.values[i * self.per_image..(i + 1) * self.per_image]
    }
}

/// Explain `input` for `targets`, and with `guided` its Guided Grad-CAM.
fn explain<M: GradCam>(
    explainer: &gradcam::Explainer<M>,
    input: Tensor<4>,
    targets: &Targets,
    guided: bool,
) -> Result<(gradcam::Explanation, Option<GuidedPixels>), String> {
    let text = |e: gradcam::GradCamError| e.to_string();
    let explanation = explainer.explain(input.clone(), targets).map_err(text)?;
    if !guided {
        return Ok((explanation, None));
    }
    let backprop = explainer.guided_backprop(input, targets).map_err(text)?;
    let pixels = guided_grad_cam(explanation.heatmap.clone(), backprop.gradients); // [n, m, 3, H, W]
    let [n, ..] = pixels.dims();
    let values = pixels
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("reading the guided maps: {e:?}"))?;
    Ok((
        explanation,
        Some(GuidedPixels {
            per_image: values.len() / n,
            values,
            relus: backprop.guided_relus,
        }),
    ))
}

/// The targets to explain every batch with, one explain call each: `--class`, or each photo's
/// `--top` classes, ranked on the device in the explain call itself, [`TARGETS_PER_CALL`] at a
/// time (the memory of a call grows with its images times its targets).
///
/// # Errors
/// A class or `--top` beyond the model's `classes`: a bad argument, found before any forward.
fn target_calls(args: &Args, classes: usize) -> Result<Vec<Targets>, String> {
    if let Some(class) = args.class {
        if class >= classes {
            return Err(format!(
                "--class {class}: the model has {classes} classes, 0 to {}",
                classes - 1
            ));
        }
        return Ok(vec![Targets::class(class)]);
    }
    let top = usize::from(args.top);
    if top > classes {
        return Err(format!("--top {top}: the model has {classes} classes"));
    }
    let ranks: Vec<usize> = (1..=top).collect();
    Ok(ranks
        .chunks(TARGETS_PER_CALL)
        .map(|chunk| Targets::every_image(chunk.iter().map(|&rank| Target::Top(rank))))
        .collect())
}

/// Targets per explain call: with `--batch 8`, 64 rows after the explained layer.
const TARGETS_PER_CALL: usize = 8;
