//! What the command writes: overlays at each photo's resolution, `.npy` maps, `summary.json`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use gradcam::Explanation;
use gradcam::image::{Colormap, Preprocess, guided_to_rgb, overlay, resize_map, save_png};
use gradcam::models::imagenet_classes;
use image::imageops;
use npyz::WriterBuilder;
use serde::Serialize;

use crate::Args;
use crate::inputs::Prepared;

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
    /// `--eigen-smooth`.
    pub eigen_smooth: bool,
    /// `--aug-smooth`.
    pub aug_smooth: bool,
    /// `--sess`.
    pub sess: bool,
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
        self.photos.iter().filter(|p| p.is_failed()).count()
    }
}

/// One file: its maps, or why it has none.
#[derive(Debug, Serialize)]
pub struct PhotoEntry {
    /// The file, as found (as UTF-8; a name that is not valid UTF-8 has its invalid bytes
    /// replaced here, and is kept exactly in `file_bytes`).
    pub file: String,
    /// The file's path as raw bytes, when it is not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_bytes: Option<Vec<u8>>,
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
        Self::new(file, None, Vec::new(), Some(error))
    }

    /// A photo of `(width, height)` explained in `maps`.
    pub fn explained(file: &Path, size: (u32, u32), maps: Vec<MapEntry>) -> Self {
        Self::new(file, Some([size.0, size.1]), maps, None)
    }

    fn new(
        file: &Path,
        size: Option<[u32; 2]>,
        maps: Vec<MapEntry>,
        error: Option<String>,
    ) -> Self {
        use std::os::unix::ffi::OsStrExt;
        Self {
            file: file.to_string_lossy().into_owned(),
            file_bytes: file
                .to_str()
                .is_none()
                .then(|| file.as_os_str().as_bytes().to_vec()),
            size,
            maps,
            error,
        }
    }

    /// Whether the file failed.
    pub fn is_failed(&self) -> bool {
        self.error.is_some()
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
    /// The Guided Grad-CAM picture's name, with `--guided`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guided: Option<String>,
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
                eigen_smooth: args.eigen_smooth,
                aug_smooth: args.aug_smooth,
                sess: args.sess,
                device: value_name(args.device),
                seconds: 0.0,
                photos: Vec::new(),
            },
        })
    }

    /// Write the maps of image `i` of `explanation`, the photo read from `path`, and with
    /// `guided` (its Guided Grad-CAM, `[m, 3, H, W]`) their guided pictures.
    ///
    /// # Errors
    /// A message when a file cannot be written (which stops the run).
    pub fn write(
        &mut self,
        path: &Path,
        photo: &Prepared,
        explanation: &Explanation,
        i: usize,
        prep: &Preprocess,
        guided: Option<&[f32]>,
    ) -> Result<Vec<MapEntry>, String> {
        let text = |e: gradcam::GradCamError| e.to_string();
        let stem = self.unique_stem(path);
        let shown = &photo.shown;
        // The part of the photo the model saw (all of it, or a centre crop), on the overlay's
        // copy of the photo.
        let (x, y, rw, rh) = prep
            .resize
            .source_region(shown.dimensions(), prep.size)
            .map_err(text)?;
        let seen = imageops::crop_imm(shown, x, y, rw, rh).to_image();
        let mut maps = Vec::new();
        for (t, target) in explanation.targets[i].iter().enumerate() {
            let heat = explanation.heatmap_values(i, t).map_err(text)?; // [H, W]
            let label = target.class.map_or("score".into(), |c| c.to_string());
            let region = [rh as usize, rw as usize];
            let at_photo = resize_map(&heat, prep.size, region).map_err(text)?;
            let painted = self.colormap.paint(&at_photo, region).map_err(text)?;
            let mut overlaid = shown.clone();
            let blended = overlay(&seen, &painted, 0.5).map_err(text)?;
            imageops::replace(&mut overlaid, &blended, i64::from(x), i64::from(y));
            let overlay_name = format!("{stem}.{label}.png");
            save_png(&overlaid, self.dir.join(&overlay_name)).map_err(text)?;
            let raw = if self.raw {
                let name = format!("{stem}.{label}.npy");
                write_npy(&self.dir.join(&name), &heat, prep.size)?;
                Some(name)
            } else {
                None
            };
            let guided = match guided {
                Some(values) => {
                    let per_target = values.len() / explanation.targets[i].len();
                    let at = t * per_target..(t + 1) * per_target;
                    let picture = guided_to_rgb(&values[at], prep.size).map_err(text)?;
                    let name = format!("{stem}.{label}.guided.png");
                    save_png(&picture, self.dir.join(&name)).map_err(text)?;
                    Some(name)
                }
                None => None,
            };
            maps.push(MapEntry {
                class: target.class,
                name: target
                    .class
                    .and_then(|c| self.classes.get(c).map(|n| n.to_string())),
                score: target.score,
                overlay: overlay_name,
                raw,
                guided,
            });
        }
        Ok(maps)
    }

    /// Write `summary.json`, atomically: to a temporary file in the output folder, renamed
    /// over `summary.json` once whole (a failed write leaves no partial file behind).
    ///
    /// # Errors
    /// A message when it cannot be written.
    pub fn finish(&self) -> Result<(), String> {
        let path = self.dir.join("summary.json");
        let partial = self.dir.join(".summary.json.partial");
        let write = || -> std::io::Result<()> {
            let mut file = BufWriter::new(File::create(&partial)?);
            serde_json::to_writer_pretty(&mut file, &self.summary)?;
            file.write_all(b"\n")?;
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&partial, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            format!("writing {}: {e}", path.display())
        })
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

/// `path` made absolute, as the system will resolve it: each existing prefix with its symbolic
/// links resolved (so `..` after a link goes to the link target's parent), and `..` in the part
/// that does not exist yet taken lexically (it can hold no link).
fn resolve(path: &Path) -> Result<PathBuf, String> {
    use std::path::Component;
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut resolved = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => resolved.push(component),
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => {
                resolved.push(name);
                if let Ok(real) = resolved.canonicalize() {
                    resolved = real;
                }
            }
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_through_a_missing_folder_resolves_where_the_system_writes() {
        let base = std::env::temp_dir().join(format!("gradcam-resolve-{}", std::process::id()));
        let input = base.join("indir");
        std::fs::create_dir_all(base.join("a")).unwrap();
        std::fs::create_dir_all(&input).unwrap();
        let real = input.canonicalize().unwrap();
        // `new` does not exist: a/new/../../indir/x is indir/x.
        assert_eq!(
            resolve(&base.join("a/new/../../indir/x")).unwrap(),
            real.join("x")
        );
        std::os::unix::fs::symlink(&input, base.join("link")).unwrap_or(());
        assert_eq!(resolve(&base.join("link/./y")).unwrap(), real.join("y"));
    }
}
