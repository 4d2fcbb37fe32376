//! The photos to explain: the files named or found in the folders named, decoded on another
//! thread a batch ahead of the explainer.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use image::RgbImage;

/// One file, decoded or not.
pub struct Decoded {
    /// The file.
    pub path: PathBuf,
    /// The photo, or why it could not be read.
    pub image: Result<RgbImage, String>,
}

/// Every file named, and every file under the folders named (recursively, sorted by path).
///
/// # Errors
/// A message for an input that does not exist or a folder that cannot be listed.
pub fn list_photos(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut photos = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, &mut photos)?;
        } else if input.is_file() {
            photos.push(input.clone());
        } else {
            return Err(format!("{}: no such file or folder", input.display()));
        }
    }
    Ok(photos)
}

fn walk(folder: &Path, photos: &mut Vec<PathBuf>) -> Result<(), String> {
    let listing = std::fs::read_dir(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let mut entries: Vec<PathBuf> = listing
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, photos)?;
        } else if path.is_file() {
            photos.push(path);
        }
    }
    Ok(())
}

/// Decode `photos` on a background thread, `batch` at a time, one batch ahead of the consumer.
pub fn decode_in_background(
    photos: Vec<PathBuf>,
    batch: usize,
) -> impl Iterator<Item = Vec<Decoded>> {
    let (send, receive) = mpsc::sync_channel(1);
    thread::spawn(move || {
        for chunk in photos.chunks(batch.max(1)) {
            let decoded = chunk
                .iter()
                .map(|path| Decoded {
                    path: path.clone(),
                    image: gradcam::load_image(path).map_err(|e| e.to_string()),
                })
                .collect();
            if send.send(decoded).is_err() {
                return; // the consumer stopped
            }
        }
    });
    receive.into_iter()
}
