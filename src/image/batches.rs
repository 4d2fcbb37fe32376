//! [`Preprocess::batches`]: photos decoded, resized and normalised on worker threads, a few
//! batches ahead of the consumer.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use burn::tensor::{Device, Tensor, TensorData};

use super::{Preprocess, load_image};
use crate::error::GradCamError;

/// One batch of photos from [`Preprocess::batches`].
#[derive(Debug)]
pub struct PhotoBatch {
    /// The photos that decoded, in the order given: the rows of `input`.
    pub paths: Vec<PathBuf>,
    /// The preprocessed photos, `[paths.len(), 3, height, width]`; `None` when none decoded.
    pub input: Option<Tensor<4>>,
    /// The photos that did not decode, with why.
    pub failed: Vec<(PathBuf, GradCamError)>,
}

/// The iterator of [`Preprocess::batches`].
pub struct PhotoBatches {
    device: Device,
    size: [usize; 2],
    chunks: std::vec::IntoIter<Vec<PathBuf>>,
    jobs: Option<Sender<(Vec<PathBuf>, Sender<Decoded>)>>,
    pending: VecDeque<Receiver<Decoded>>,
    ahead: usize,
    workers: Vec<thread::JoinHandle<()>>,
}

/// A batch as a worker leaves it: the host values of the photos that decoded.
struct Decoded {
    paths: Vec<PathBuf>,
    values: Vec<f32>,
    failed: Vec<(PathBuf, GradCamError)>,
}

impl Preprocess {
    /// Decode, resize and normalise `paths` on `threads` worker threads (at least one), `batch`
    /// photos a batch, up to `threads + 1` batches ahead of the consumer; the tensors are made on
    /// `device` in its float dtype as they are handed out. Feed them to
    /// [`Explainer::stream`](crate::Explainer::stream) to keep both the CPU and the device busy.
    ///
    /// # Shapes
    /// - every batch's input: `[b, 3, height, width]`, `b <= batch`
    pub fn batches(
        &self,
        paths: Vec<PathBuf>,
        batch: usize,
        threads: usize,
        device: &Device,
    ) -> PhotoBatches {
        let threads = threads.max(1);
        let (jobs, incoming) = mpsc::channel::<(Vec<PathBuf>, Sender<Decoded>)>();
        let incoming = Arc::new(Mutex::new(incoming));
        let workers = (0..threads)
            .map(|_| {
                let incoming = Arc::clone(&incoming);
                let prep = self.clone();
                thread::spawn(move || {
                    loop {
                        let job = incoming.lock().map(|jobs| jobs.recv());
                        let Ok(Ok((paths, done))) = job else {
                            return; // no more batches
                        };
                        let _ = done.send(decode(&prep, paths));
                    }
                })
            })
            .collect();
        let chunks: Vec<Vec<PathBuf>> = paths.chunks(batch.max(1)).map(<[_]>::to_vec).collect();
        PhotoBatches {
            device: device.clone(),
            size: self.size,
            chunks: chunks.into_iter(),
            jobs: Some(jobs),
            pending: VecDeque::new(),
            ahead: threads + 1,
            workers,
        }
    }
}

/// Decode and preprocess one batch on a worker.
fn decode(prep: &Preprocess, paths: Vec<PathBuf>) -> Decoded {
    let plane = 3 * prep.size[0] * prep.size[1];
    let mut good = Vec::new();
    let mut values = Vec::new();
    let mut failed = Vec::new();
    for path in paths {
        match load_image(&path).and_then(|image| prep.resize(&image)) {
            Ok(resized) => {
                let start = values.len();
                values.resize(start + plane, 0.0);
                prep.normalise(&resized, &mut values[start..]);
                good.push(path);
            }
            Err(error) => failed.push((path, error)),
        }
    }
    Decoded {
        paths: good,
        values,
        failed,
    }
}

impl Iterator for PhotoBatches {
    type Item = PhotoBatch;

    fn next(&mut self) -> Option<PhotoBatch> {
        while self.pending.len() < self.ahead {
            let Some(chunk) = self.chunks.next() else {
                break;
            };
            let (done, receive) = mpsc::channel();
            let jobs = self
                .jobs
                .as_ref()
                .expect("workers run while the iterator lives");
            if jobs.send((chunk, done)).is_err() {
                break;
            }
            self.pending.push_back(receive);
        }
        let decoded = self.pending.pop_front()?.recv().ok()?;
        let [h, w] = self.size;
        let input = (!decoded.paths.is_empty()).then(|| {
            Tensor::from_data(
                TensorData::new(decoded.values, [decoded.paths.len(), 3, h, w]),
                &self.device,
            )
        });
        Some(PhotoBatch {
            paths: decoded.paths,
            input,
            failed: decoded.failed,
        })
    }
}

impl Drop for PhotoBatches {
    fn drop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
