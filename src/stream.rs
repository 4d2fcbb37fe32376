//! [`Explainer::stream`](crate::Explainer::stream): one transfer back per batch, issued as soon
//! as the batch is submitted; with [`Stream::with_in_flight`], later batches submitted before it
//! is waited for.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use burn::tensor::{Tensor, TensorData};

use crate::error::{GradCamError, Result};
use crate::explainer::Explainer;
use crate::explanation::Explanation;
use crate::model::GradCam;
use crate::readback::Pending;
use crate::target::Targets;

/// One batch of a [`Stream`]: its explanation, and its heatmaps already on the host.
#[derive(Debug, Clone)]
pub struct StreamedBatch {
    /// The explanation (its tensors stay on the device).
    pub explanation: Explanation,
    /// The fused heatmaps read back, row-major `[n, m, H, W]`.
    pub heatmaps: Vec<f32>,
}

/// The iterator of [`Explainer::stream`]: one `Result<StreamedBatch>` per batch, in batch order.
pub struct Stream<'a, M, I> {
    explainer: &'a Explainer<M>,
    batches: I,
    targets: Targets,
    in_flight: VecDeque<InFlight>,
    depth: usize,
}

/// The read back of one batch, under way.
type Read = Pin<Box<dyn Future<Output = std::result::Result<TensorData, String>> + Send>>;

/// A batch whose device work and read back have been issued, or that failed before.
enum InFlight {
    Failed(GradCamError),
    /// Explained at once (augmentation smoothing: six calls, each read back).
    Done(Box<Result<StreamedBatch>>),
    Reading(Box<Pending>, Reading),
}

enum Reading {
    Done(std::result::Result<TensorData, String>),
    Waiting(Read),
}

impl<M: GradCam> Explainer<M> {
    /// Explain a stream of batches: one transfer back per batch (scores, checks and heatmaps
    /// together), issued as soon as the batch's work is submitted, and the heatmaps handed out
    /// on the host. Decode the photos on other threads meanwhile, e.g. with
    /// [`Preprocess::batches`](crate::image::Preprocess::batches): on an H200 that made 1,024 photos
    /// 8x faster than decoding them between calls.
    /// [`Stream::with_in_flight`](crate::Stream::with_in_flight) submits batches ahead of the
    /// reads.
    ///
    /// Items come in batch order; an error ends nothing: the next batch still runs.
    ///
    /// # Shapes
    /// - every batch: `[n_i, c, H, W]`
    /// - every item's [`StreamedBatch::heatmaps`](crate::StreamedBatch::heatmaps) holds `[n_i, m, H, W]`
    ///   values, row-major.
    ///
    /// ```
    /// # #[cfg(feature = "flex")] {
    /// use burn::tensor::{Device, Tensor};
    /// use gradcam::{ExplainerConfig, GradCam, Probe, Targets};
    ///
    /// # #[derive(Debug, burn::module::Module)]
    /// # struct Net { conv: burn::nn::conv::Conv2d }
    /// # impl GradCam for Net {
    /// #     fn layers(&self) -> Vec<String> { vec!["conv".into()] }
    /// #     fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
    /// #         let a = probe.layer("conv", self.conv.forward(x));
    /// #         a.mean_dim(3).mean_dim(2).flatten(1, 3)
    /// #     }
    /// # }
    /// let device = Device::flex();
    /// let model = Net { conv: burn::nn::conv::Conv2dConfig::new([3, 4], [3, 3]).init(&device) };
    /// let explainer = ExplainerConfig::new().init(&model).unwrap();
    /// let batches = (0..3).map(|_| Tensor::<4>::ones([2, 3, 8, 8], &device));
    /// for item in explainer.stream(batches, &Targets::top(1)) {
    ///     let item = item.unwrap();
    ///     assert_eq!(item.heatmaps.len(), 2 * 8 * 8); // [2 images, 1 target, 8, 8]
    /// }
    /// # }
    /// ```
    pub fn stream<I>(&self, batches: I, targets: &Targets) -> Stream<'_, M, I::IntoIter>
    where
        I: IntoIterator<Item = Tensor<4>>,
    {
        Stream::new(self, batches.into_iter(), targets.clone())
    }
}

impl<'a, M: GradCam, I: Iterator<Item = Tensor<4>>> Stream<'a, M, I> {
    pub(crate) fn new(explainer: &'a Explainer<M>, batches: I, targets: Targets) -> Self {
        Self {
            explainer,
            batches,
            targets,
            in_flight: VecDeque::new(),
            depth: 1,
        }
    }

    /// Keep up to `batches` batches submitted (at least 1, the default): with 2, each batch's
    /// work is queued before the previous one's results are waited for.
    ///
    /// On `wgpu`/`vulkan` (H200, Burn 0.22 with fusion) 2 was measured 2-45 % *slower* than one
    /// plain `explain` per batch (BENCHMARKS.md), most likely because the next batch's
    /// submissions wait while the device is polled for the pending read. It is kept for
    /// backends where reads and submissions overlap.
    pub fn with_in_flight(mut self, batches: usize) -> Self {
        self.depth = batches.max(1);
        self
    }

    /// Submit one batch and issue its read: the first poll of the read runs Burn's queued work
    /// for the batch and the copy back, and returns while the device computes.
    fn issue(&self, batch: Tensor<4>) -> InFlight {
        if self.explainer.config().explains_other_inputs() {
            let explained = self.explainer.explain(batch, &self.targets);
            return InFlight::Done(Box::new(explained.map(|explanation| StreamedBatch {
                heatmaps: crate::host::read(explanation.heatmap.clone()),
                explanation,
            })));
        }
        let pending = match self.explainer.submit(batch, &self.targets) {
            Ok(pending) => pending,
            Err(error) => return InFlight::Failed(error),
        };
        let values = pending.values(true);
        let mut read: Read =
            Box::pin(async move { values.into_data_async().await.map_err(|e| format!("{e:?}")) });
        let reading = match read.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(data) => Reading::Done(data),
            Poll::Pending => Reading::Waiting(read),
        };
        InFlight::Reading(Box::new(pending), reading)
    }
}

impl<M: GradCam, I: Iterator<Item = Tensor<4>>> Iterator for Stream<'_, M, I> {
    type Item = Result<StreamedBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.in_flight.len() < self.depth {
            let Some(batch) = self.batches.next() else {
                break;
            };
            let issued = self.issue(batch);
            self.in_flight.push_back(issued);
        }
        let (pending, reading) = match self.in_flight.pop_front()? {
            InFlight::Failed(error) => return Some(Err(error)),
            InFlight::Done(batch) => return Some(*batch),
            InFlight::Reading(pending, reading) => (pending, reading),
        };
        let data = match reading {
            Reading::Done(data) => data,
            Reading::Waiting(read) => {
                burn::tensor::try_read_sync(read).expect("this platform blocks on futures")
            }
        };
        // As `host::read`: a device that cannot be read back is lost, not bad input.
        let host = data
            .expect("the device reads the stream's values back")
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 data converts to a Vec<f32>");
        Some(
            pending
                .finish(host)
                .map(|(explanation, heatmaps)| StreamedBatch {
                    explanation,
                    heatmaps,
                }),
        )
    }
}
