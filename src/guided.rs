//! Guided backpropagation and Guided Grad-CAM (Selvaraju et al., the Grad-CAM paper, §3.3:
//! "Guided Grad-CAM", [arXiv:1610.02391](https://arxiv.org/abs/1610.02391)): the gradient of the
//! target score with respect to the input pixels, every ReLU's backward guided (only positive
//! gradients through, where its input was positive), times the upsampled Grad-CAM map: a map at
//! the input's full resolution that is class-discriminative.
//!
//! [`Explainer::guided_backprop`] runs the whole model with the input as the gradient leaf and
//! its probe in guiding mode: the ReLUs the model routes through [`Probe::relu`] are guided, no
//! layer is cut. pytorch-grad-cam's `GuidedBackpropReLUModel` guides the `torch.nn.ReLU` modules
//! of the model it is given the same way, and leaves `F.relu` and `ReLU6` plain: so do we, for
//! ReLUs the model calls directly and for ReLU6.

use burn::tensor::Tensor;

use crate::capture::{to_f32, whole_pass};
use crate::checks::Checks;
use crate::error::{ModelError, Result};
use crate::explainer::Explainer;
use crate::explanation::ExplainedTarget;
use crate::host::read;
use crate::model::GradCam;
use crate::probe::Probe;
use crate::readback::target_values;
use crate::target::Targets;

/// The guided backpropagation of a batch.
#[derive(Debug, Clone)]
pub struct GuidedBackprop {
    /// The guided gradient of each target's score with respect to the input, `[n, m, c, H, W]`.
    pub gradients: Tensor<5>,
    /// `[n][m]`: what each target resolved to, with its score.
    pub targets: Vec<Vec<ExplainedTarget>>,
    /// How many ReLUs the forward routed through [`Probe::relu`] (and so were guided): 0 means
    /// the gradients are the plain input gradients.
    pub guided_relus: usize,
}

impl<M: GradCam> Explainer<M> {
    /// Guided backpropagation: for every image and target, the gradient of the target's score
    /// with respect to the input, with every [`Probe::relu`] of the forward guided. One forward
    /// and one backward through the whole model (the input repeated once per target); the
    /// configured method and layers play no part.
    ///
    /// # Shapes
    /// - `input`: `[n, c, H, W]`
    /// - returns gradients `[n, m, c, H, W]` for `m` targets per image
    ///
    /// # Errors
    /// As [`Explainer::explain`].
    pub fn guided_backprop(&self, input: Tensor<4>, targets: &Targets) -> Result<GuidedBackprop> {
        let input = self.check_input(input)?; // [n, c, H, W]
        let [n, c, height, width] = input.dims();
        let (m, targets) = targets.resolve(n)?;
        let mut guided_relus = 0;
        let pass = whole_pass(
            self.model(),
            input,
            &targets,
            m,
            &mut Probe::guiding(&mut guided_relus),
        )?;
        let gradients = pass
            .leaf
            .grad(&pass.grads)
            .ok_or_else(|| ModelError::NoGradient {
                name: "the input".into(),
            })?; // [n * m, c, H, W]
        let gradients = to_f32(gradients).reshape([n, m, c, height, width]);
        let mut checks = Checks::new();
        checks.push("scores", pass.scores.clone().without_autodiff().sum());
        checks.push("guided gradients", gradients.clone().sum());
        let scores = pass.scores.without_autodiff(); // [n * m]
        let values = read(Tensor::cat(
            [scores, pass.classes]
                .into_iter()
                .chain(checks.sums())
                .collect(),
            0,
        ));
        let targets = target_values(&pass.resolved, m, &values, &checks)?;
        Ok(GuidedBackprop {
            gradients,
            targets,
            guided_relus,
        })
    }
}

/// Guided Grad-CAM: each target's heatmap (`[0, 1]`, from an [`Explanation`](crate::Explanation)
/// of the same batch and targets) times its guided backpropagation, pixel by pixel and channel by
/// channel (pytorch-grad-cam's `cam_mask[..., None] * gb`).
///
/// # Shapes
/// - `heatmap`: `[n, m, H, W]`
/// - `guided`: `[n, m, c, H, W]`
/// - returns `[n, m, c, H, W]`
///
/// # Panics
/// If the shapes do not fit each other (the heatmap of another batch or targets: a bug of the
/// caller).
pub fn guided_grad_cam(heatmap: Tensor<4>, guided: Tensor<5>) -> Tensor<5> {
    let [n, m, h, w] = heatmap.dims();
    let [gn, gm, _, gh, gw] = guided.dims();
    assert_eq!(
        [n, m, h, w],
        [gn, gm, gh, gw],
        "a heatmap [{n}, {m}, {h}, {w}] for guided gradients {:?}",
        guided.dims()
    );
    guided * heatmap.unsqueeze_dim::<5>(2)
}
