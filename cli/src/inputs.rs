//! The photos to explain: the files named or found in the folders named, decoded and prepared on
//! another thread a batch ahead of the explainer, one photo at a time.

use std::collections::HashSet;
use std::fs::FileType;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use gradcam::image::{Preprocess, RgbImage, load_image};
use image::imageops;

/// What a search of the inputs found: a file to try, or an entry that is not one, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A regular file (through symbolic links), to be decoded.
    File(PathBuf),
    /// An entry that cannot be a photo: a dangling or looping symbolic link, a FIFO, a socket or
    /// device, a folder that cannot be listed, a folder reached a second time through a link.
    Skipped {
        /// The entry.
        path: PathBuf,
        /// Why it was skipped.
        why: String,
    },
}

#[cfg(test)]
impl Found {
    /// The entry's path.
    pub fn path(&self) -> &Path {
        match self {
            Self::File(path) | Self::Skipped { path, .. } => path,
        }
    }
}

/// Every file named, and every entry under the folders named (recursively, sorted by path; each
/// folder searched once, however many links lead to it).
///
/// # Errors
/// A message for an input that does not exist or is neither a file nor a folder.
pub fn list_photos(inputs: &[PathBuf]) -> Result<Vec<Found>, String> {
    let mut found = Vec::new();
    let mut searched = HashSet::new();
    for input in inputs {
        let metadata = std::fs::metadata(input).map_err(|e| format!("{}: {e}", input.display()))?;
        if metadata.is_dir() {
            walk(input, &mut searched, &mut found);
        } else if metadata.is_file() {
            found.push(Found::File(input.clone()));
        } else {
            return Err(format!(
                "{}: {}; name photos or folders of photos",
                input.display(),
                not_a_file(metadata.file_type())
            ));
        }
    }
    Ok(found)
}

/// Search `folder` once: its real path goes into `searched`, so that a link back to it (or to
/// any folder already searched) ends the search there instead of looping.
fn walk(folder: &Path, searched: &mut HashSet<PathBuf>, found: &mut Vec<Found>) {
    let skipped = |why: String| Found::Skipped {
        path: folder.to_path_buf(),
        why,
    };
    match folder.canonicalize() {
        Ok(real) if !searched.insert(real.clone()) => {
            found.push(skipped(format!(
                "a link to the folder {} searched already",
                real.display()
            )));
            return;
        }
        Ok(_) => {}
        Err(e) => return found.push(skipped(e.to_string())),
    }
    let listing = match std::fs::read_dir(folder) {
        Ok(listing) => listing,
        Err(e) => return found.push(skipped(format!("cannot list the folder: {e}"))),
    };
    let mut entries = Vec::new();
    for entry in listing {
        match entry {
            Ok(entry) => entries.push(entry.path()),
            Err(e) => found.push(skipped(format!("cannot list the folder: {e}"))),
        }
    }
    entries.sort();
    for path in entries {
        // Follow links: a dangling or self-referencing one fails here, with the system's reason.
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_dir() => walk(&path, searched, found),
            Ok(metadata) if metadata.is_file() => found.push(Found::File(path)),
            Ok(metadata) => found.push(Found::Skipped {
                path,
                why: not_a_file(metadata.file_type()).to_string(),
            }),
            Err(e) => found.push(Found::Skipped {
                why: if path.is_symlink() {
                    format!("a symbolic link that leads nowhere: {e}")
                } else {
                    e.to_string()
                },
                path,
            }),
        }
    }
}

/// What an entry that is neither a regular file nor a folder is.
fn not_a_file(kind: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO, not a regular file"
    } else if kind.is_socket() {
        "a socket, not a regular file"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device, not a regular file"
    } else {
        "not a regular file or folder"
    }
}

/// One photo, ready for the explainer and the overlays.
pub struct Prepared {
    /// The model's input for it, `[3, height, width]` row-major, from the full photo.
    pub input: Vec<f32>,
    /// The photo's own `(width, height)`.
    pub size: (u32, u32),
    /// The photo for the overlays: the photo itself, or downscaled to [`OVERLAY_SIDE`] pixels a
    /// side when larger (the overlay's only copy of it).
    pub shown: RgbImage,
}

/// One file, prepared or not.
pub struct Decoded {
    /// The file.
    pub path: PathBuf,
    /// The photo, or why it could not be read.
    pub photo: Result<Prepared, String>,
}

/// The longest side an overlay is drawn at: larger photos are shown downscaled, so that the
/// memory a batch holds does not grow with the photos' pixels.
pub const OVERLAY_SIDE: u32 = 4096;

/// Decode and prepare `photos` on a background thread, `batch` at a time and one photo at a time,
/// one batch ahead of the consumer. Peak memory: one photo at full resolution (within the
/// decoding limits) on the decoding thread, and per photo of the two batches in flight its input
/// and its overlay copy of at most [`OVERLAY_SIDE`] pixels a side.
pub fn decode_in_background(
    photos: Vec<PathBuf>,
    batch: usize,
    prep: Preprocess,
) -> impl Iterator<Item = Vec<Decoded>> {
    let (send, receive) = mpsc::sync_channel(0);
    thread::spawn(move || {
        for chunk in photos.chunks(batch.max(1)) {
            let decoded = chunk
                .iter()
                .map(|path| Decoded {
                    path: path.clone(),
                    photo: prepare(path, &prep),
                })
                .collect();
            if send.send(decoded).is_err() {
                return; // the consumer stopped
            }
        }
    });
    receive.into_iter()
}

/// Decode one photo, compute the model's input from it, and keep it for the overlays at no more
/// than [`OVERLAY_SIDE`] a side; the full-resolution decode is dropped here.
fn prepare(path: &Path, prep: &Preprocess) -> Result<Prepared, String> {
    let photo = load_image(path).map_err(|e| e.to_string())?;
    let input = prep
        .values(std::slice::from_ref(&photo))
        .map_err(|e| e.to_string())?;
    let size = photo.dimensions();
    let (width, height) = size;
    let shown = if width.max(height) > OVERLAY_SIDE {
        let scale = f64::from(OVERLAY_SIDE) / f64::from(width.max(height));
        let side = |v: u32| ((f64::from(v) * scale).round() as u32).max(1);
        // An area average in integers, its memory the output's (a filter through `f32` planes
        // would hold a copy of the photo four times its size).
        imageops::thumbnail(&photo, side(width), side(height))
    } else {
        photo
    };
    Ok(Prepared { input, size, shown })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gradcam-inputs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn links_back_to_a_searched_folder_end_the_search_there() {
        // Two links to the folder itself beside one photo: the search once made 2^depth paths
        // until the system's path limit (a hang), and one link explained the photo 41 times.
        let dir = scratch("loops");
        std::fs::write(dir.join("photo.png"), b"x").unwrap();
        symlink(".", dir.join("a")).unwrap();
        symlink(".", dir.join("b")).unwrap();
        let found = list_photos(std::slice::from_ref(&dir)).unwrap();
        let files: Vec<_> = found
            .iter()
            .filter(|f| matches!(f, Found::File(_)))
            .collect();
        assert_eq!(files, [&Found::File(dir.join("photo.png"))]);
        let skipped: Vec<_> = found.iter().map(|f| f.path().to_path_buf()).collect();
        assert_eq!(
            skipped,
            [dir.join("a"), dir.join("b"), dir.join("photo.png")]
        );
    }

    #[test]
    fn entries_that_are_not_photos_are_reported_not_dropped() {
        let dir = scratch("odd");
        std::fs::write(dir.join("ok.png"), b"x").unwrap();
        symlink("missing.png", dir.join("dangling.png")).unwrap();
        symlink("self.png", dir.join("self.png")).unwrap();
        let fifo = dir.join("pipe");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let found = list_photos(std::slice::from_ref(&dir)).unwrap();
        let why = |name: &str| match found.iter().find(|f| f.path() == dir.join(name)) {
            Some(Found::Skipped { why, .. }) => why.clone(),
            other => panic!("{name}: {other:?}"),
        };
        assert!(why("dangling.png").contains("leads nowhere"), "{found:?}");
        assert!(why("self.png").contains("symbolic link"), "{found:?}");
        assert!(why("pipe").contains("FIFO"), "{found:?}");
        assert!(found.contains(&Found::File(dir.join("ok.png"))));
        // Named on the command line, a FIFO is a bad argument that says what it is.
        let err = list_photos(&[fifo]).unwrap_err();
        assert!(err.contains("a FIFO"), "{err}");
    }
}
