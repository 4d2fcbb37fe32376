//! `gradcam`: class-activation maps for a file or a folder of photos.
//!
//! ```sh
//! cargo run --features flex,ndarray,wgpu --bin gradcam -- photos/ --out out/maps --top 3 --raw
//! ```
//!
//! Per photo and explained class it writes `<name>.<class>.png`, the overlay at the photo's own
//! resolution and aspect ratio, and with `--raw` `<name>.<class>.npy`, the map at the model's
//! input resolution (float32, `[H, W]`, readable by `numpy.load`); and once `summary.json`. A
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

use clap::{Parser, ValueEnum};
use gradcam::{CamModel, Colormap, ExplainerConfig, Method, Preprocess, Resize, Target, Targets};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::backend::{Backend, Precision};
use crate::inputs::{Decoded, decode_in_background, list_photos};
use crate::network::Network;
use crate::outputs::{Outputs, PhotoEntry, Summary};

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
    /// grad-cam, grad-cam++, xgrad-cam, hires-cam, element-wise-grad-cam, layer-cam, eigen-cam,
    /// eigen-grad-cam, score-cam or ablation-cam.
    #[arg(long, default_value_t = Method::GradCam)]
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
resolution, float32), and summary.json (per photo: file, size, and per class its name, logit \
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
/// cannot be made or lies in an input folder, a layer the model lacks, a failed write.
pub fn run<M: CamModel>(
    model: &M,
    prep: &Preprocess,
    args: &Args,
    device: &burn::tensor::Device,
) -> Result<Summary, String> {
    let prep = &prep.clone().with_resize(args.resize.resize(prep.size));
    let photos = list_photos(&args.inputs)?;
    let mut outputs = Outputs::create(&args.out, &args.inputs, args)?;
    let mut config = ExplainerConfig::new()
        .with_method(args.method)
        .with_relu(!args.no_relu);
    if let Some(layer) = &args.layer {
        config = config.with_layer(layer.clone());
    }
    let explainer = config.init(model).map_err(|e| e.to_string())?;
    outputs.summary.layer = explainer.config().layers.join(",");

    let bar = if std::io::stdout().is_terminal() {
        ProgressBar::new(photos.len() as u64)
    } else {
        ProgressBar::with_draw_target(Some(photos.len() as u64), ProgressDrawTarget::hidden())
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} photos, {per_sec}, eta {eta}")
            .map_err(|e| e.to_string())?,
    );
    let start = Instant::now();
    let batches = decode_in_background(photos, usize::from(args.batch));
    for batch in batches {
        // Entries in file order; the decoded photos go to the model together.
        let mut entries: Vec<Option<PhotoEntry>> = batch.iter().map(|_| None).collect();
        let (mut good, mut images) = (Vec::new(), Vec::new()); // batch indices, their photos
        let mut paths = Vec::new();
        for (j, Decoded { path, image }) in batch.into_iter().enumerate() {
            match image {
                Ok(photo) => {
                    good.push(j);
                    images.push(photo);
                }
                Err(error) => {
                    bar.suspend(|| eprintln!("skipped {}: {error}", path.display()));
                    entries[j] = Some(PhotoEntry::failed(&path, error));
                }
            }
            paths.push(path);
        }
        if !good.is_empty() {
            let result = prep
                .to_tensor(&images, device)
                .map_err(|e| e.to_string())
                .and_then(|input| {
                    let targets = targets(model, input.clone(), args)?;
                    explainer
                        .explain(input, &targets)
                        .map_err(|e| e.to_string())
                });
            for (i, (&j, photo)) in good.iter().zip(&images).enumerate() {
                let path = &paths[j];
                entries[j] = Some(match &result {
                    Ok(explanation) => outputs.write(path, photo, explanation, i, prep)?,
                    Err(error) => {
                        bar.suspend(|| eprintln!("failed {}: {error}", path.display()));
                        PhotoEntry::failed(path, error.clone())
                    }
                });
            }
        }
        bar.inc(entries.len() as u64);
        outputs.summary.photos.extend(entries.into_iter().flatten());
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    outputs.summary.seconds = seconds;
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

/// The targets for a batch: `--class`, or each photo's `--top` classes (ranked by one forward
/// without gradients when more than one is asked for).
///
/// # Shapes
/// - `input`: `[n, 3, H, W]`
fn targets<M: CamModel>(
    model: &M,
    input: burn::tensor::Tensor<4>,
    args: &Args,
) -> Result<Targets, String> {
    if let Some(class) = args.class {
        return Ok(Targets::class(class));
    }
    if args.top == 1 {
        return Ok(Targets::top1());
    }
    let logits = model.forward_probed(input, &mut gradcam::Probe::passthrough()); // [n, classes]
    let [n, classes] = logits.dims();
    let k = usize::from(args.top).min(classes);
    let values = logits
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("reading the logits: {e:?}"))?;
    let rows: Vec<Vec<Target>> = values
        .chunks(classes.max(1))
        .take(n)
        .map(|row| {
            let mut ranked: Vec<usize> = (0..row.len()).collect();
            ranked.sort_by(|a, b| row[*b].total_cmp(&row[*a]));
            ranked[..k].iter().map(|&c| Target::Class(c)).collect()
        })
        .collect();
    Ok(Targets::rows(rows))
}
