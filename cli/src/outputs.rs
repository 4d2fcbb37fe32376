//! What the command writes: overlays at each photo's resolution, `.npy` maps, `summary.json`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use gradcam::models::imagenet_classes;
use gradcam::{Colormap, Explanation, Preprocess, overlay, resize_map, save_png};
use image::{RgbImage, imageops};
use npyz::WriterBuilder;
use serde::Serialize;

use crate::Args;

/// The run, as `summary.json` records it.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// `--model`.
    pub model: String,
    /// `--method`.
    pub method: String,
    /// The explained layer(s).
    pub layer: String,
    /// Whether the ReLU was on.
    pub relu: bool,
    /// `--device`.
    pub device: String,
    /// Wall time of the whole run, decoding and writing included.
    pub seconds: f64,
    /// One entry per file, in the order they were read.
    pub photos: Vec<PhotoEntry>,
}

impl Summary {
    /// How many files failed.
    pub fn failed(&self) -> usize {
        self.photos.iter().filter(|p| p.error.is_some()).count()
    }
}

/// One file: its maps, or why it has none.
#[derive(Debug, Serialize)]
pub struct PhotoEntry {
    /// The file, as found.
    pub file: PathBuf,
    /// The photo's `[width, height]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<[u32; 2]>,
    /// One map per explained class.
    pub maps: Vec<MapEntry>,
    /// Why the file was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PhotoEntry {
    /// A file that could not be explained.
    pub fn failed(file: &Path, error: String) -> Self {
        Self {
            file: file.to_path_buf(),
            size: None,
            maps: Vec::new(),
            error: Some(error),
        }
    }
}

/// One explained class of one photo.
#[derive(Debug, Serialize)]
pub struct MapEntry {
    /// The class index.
    pub class: Option<usize>,
    /// Its ImageNet name.
    pub name: Option<String>,
    /// Its logit.
    pub score: f32,
    /// The overlay's file name, in the output folder.
    pub overlay: String,
    /// The `.npy` file's name, with `--raw`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// The output folder and what has been written into it.
pub struct Outputs {
    dir: PathBuf,
    names: HashSet<String>,
    colormap: Colormap,
    raw: bool,
    classes: Vec<&'static str>,
    /// The summary so far.
    pub summary: Summary,
}

impl Outputs {
    /// Create the output folder.
    ///
    /// # Errors
    /// When `dir` is, or lies inside, a folder named in `inputs`, or is the folder of a photo
    /// named in `inputs` (nothing is ever written beside the inputs), or cannot be created.
    pub fn create(dir: &Path, inputs: &[PathBuf], args: &Args) -> Result<Self, String> {
        let target = resolve(dir)?;
        for input in inputs {
            let (folder, inside) = if input.is_dir() {
                (resolve(input)?, true)
            } else {
                let parent = input.parent().filter(|p| !p.as_os_str().is_empty());
                (resolve(parent.unwrap_or(Path::new(".")))?, false)
            };
            if target == folder || (inside && target.starts_with(&folder)) {
                return Err(format!(
                    "refusing to write into {} (it holds the input {}); pick another --out",
                    dir.display(),
                    input.display()
                ));
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            names: HashSet::new(),
            colormap: args.colormap.into(),
            raw: args.raw,
            classes: imagenet_classes(),
            summary: Summary {
                model: value_name(args.model),
                method: args.method.to_string(),
                layer: String::new(),
                relu: !args.no_relu,
                device: value_name(args.device),
                seconds: 0.0,
                photos: Vec::new(),
            },
        })
    }

    /// Write the maps of image `i` of `explanation`, the photo `photo` read from `path`.
    ///
    /// # Errors
    /// A message when a file cannot be written (which stops the run).
    pub fn write(
        &mut self,
        path: &Path,
        photo: &RgbImage,
        explanation: &Explanation,
        i: usize,
        prep: &Preprocess,
    ) -> Result<PhotoEntry, String> {
        let text = |e: gradcam::GradCamError| e.to_string();
        let stem = self.unique_stem(path);
        let (width, height) = photo.dimensions();
        // The part of the photo the model saw (all of it, or a centre crop).
        let (x, y, rw, rh) = prep
            .resize
            .source_region((width, height), prep.size)
            .map_err(text)?;
        let seen = imageops::crop_imm(photo, x, y, rw, rh).to_image();
        let mut maps = Vec::new();
        for (t, target) in explanation.targets[i].iter().enumerate() {
            let heat = explanation.heatmap_values(i, t).map_err(text)?; // [H, W]
            let label = target.class.map_or("score".into(), |c| c.to_string());
            let region = [rh as usize, rw as usize];
            let at_photo = resize_map(&heat, prep.size, region).map_err(text)?;
            let painted = self.colormap.paint(&at_photo, region).map_err(text)?;
            let mut shown = photo.clone();
            let blended = overlay(&seen, &painted, 0.5).map_err(text)?;
            imageops::replace(&mut shown, &blended, i64::from(x), i64::from(y));
            let overlay_name = format!("{stem}.{label}.png");
            save_png(&shown, self.dir.join(&overlay_name)).map_err(text)?;
            let raw = if self.raw {
                let name = format!("{stem}.{label}.npy");
                write_npy(&self.dir.join(&name), &heat, prep.size)?;
                Some(name)
            } else {
                None
            };
            maps.push(MapEntry {
                class: target.class,
                name: target
                    .class
                    .and_then(|c| self.classes.get(c).map(|n| n.to_string())),
                score: target.score,
                overlay: overlay_name,
                raw,
            });
        }
        Ok(PhotoEntry {
            file: path.to_path_buf(),
            size: Some([width, height]),
            maps,
            error: None,
        })
    }

    /// Write `summary.json`.
    ///
    /// # Errors
    /// A message when it cannot be written.
    pub fn finish(&self) -> Result<(), String> {
        let path = self.dir.join("summary.json");
        let write = || -> std::io::Result<()> {
            let mut file = BufWriter::new(File::create(&path)?);
            serde_json::to_writer_pretty(&mut file, &self.summary)?;
            file.write_all(b"\n")?;
            file.flush()
        };
        write().map_err(|e| format!("writing {}: {e}", path.display()))
    }

    /// The photo's file stem, with `-2`, `-3`, ... where an earlier photo had the same.
    fn unique_stem(&mut self, path: &Path) -> String {
        let stem = path
            .file_stem()
            .map_or("photo".into(), |s| s.to_string_lossy().into_owned());
        let mut candidate = stem.clone();
        let mut n = 1;
        while !self.names.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{stem}-{n}");
        }
        candidate
    }
}

/// How the command line spells a choice.
fn value_name(choice: impl ValueEnum) -> String {
    choice
        .to_possible_value()
        .map_or(String::new(), |v| v.get_name().to_string())
}

/// A float32 `[h, w]` array in numpy's `.npy` format.
fn write_npy(path: &Path, values: &[f32], [h, w]: [usize; 2]) -> Result<(), String> {
    let write = || -> std::io::Result<()> {
        let mut file = BufWriter::new(File::create(path)?);
        let mut writer = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&[h as u64, w as u64])
            .writer(&mut file)
            .begin_nd()?;
        writer.extend(values.iter().copied())?;
        writer.finish()?;
        file.flush()
    };
    write().map_err(|e| format!("writing {}: {e}", path.display()))
}

/// `path` made absolute with symbolic links resolved, for the part of it that exists.
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut resolved = existing.canonicalize().unwrap_or(existing.to_path_buf());
    resolved.extend(rest.iter().rev());
    Ok(resolved)
}
