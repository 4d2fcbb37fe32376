//! The one read back of a call: scores, classes, the sums whose finiteness is checked and (when
//! asked for) the heatmap come back in one `f32` transfer, so the device never waits for the
//! host in the middle of a call. [`Pending`] is a call submitted and not read yet; it becomes an
//! [`Explanation`] only with the values read back.

use burn::tensor::Tensor;

use crate::capture::DeviceCapture;
use crate::checks::Checks;
use crate::error::Result;
use crate::explanation::{ExplainedTarget, Explanation};
use crate::maps::Maps;
use crate::target::Resolved;

/// What one call reads back: laid out as the scores `[n * m]`, the classes `[n * m]`, the checked
/// sums, then (when asked for) the heatmap `[n * m * H * W]`.
pub(crate) struct Readback<'a> {
    capture: &'a DeviceCapture,
    checks: &'a Checks,
}

impl<'a> Readback<'a> {
    pub fn new(capture: &'a DeviceCapture, checks: &'a Checks) -> Self {
        Self { capture, checks }
    }

    /// The one tensor to read back, with `heatmap` at its end when given.
    pub fn values(&self, heatmap: Option<Tensor<4>>) -> Tensor<1> {
        let mut parts = vec![
            self.capture.scores.clone().flatten::<1>(0, 1),
            self.capture.classes.clone(),
        ];
        parts.extend(self.checks.sums());
        parts.extend(heatmap.map(|h| h.flatten::<1>(0, 3)));
        Tensor::cat(parts, 0)
    }

    /// The targets from the values read back, after the finiteness checks, and where the rest
    /// of the values (the heatmap's, when it was read) starts.
    pub fn targets(&self, host: &[f32]) -> Result<(Vec<Vec<ExplainedTarget>>, usize)> {
        let [_, m] = self.capture.scores.dims();
        let targets = target_values(&self.capture.resolved, m, host, self.checks)?;
        Ok((targets, 2 * self.capture.resolved.len() + self.checks.len()))
    }
}

/// The targets from values read back as `[scores, classes, the checks' sums, ..]` (`n * m`
/// targets, `m` per image), after the finiteness checks.
pub(crate) fn target_values(
    resolved: &[Resolved],
    m: usize,
    host: &[f32],
    checks: &Checks,
) -> Result<Vec<Vec<ExplainedTarget>>> {
    let count = resolved.len();
    let (scores, rest) = host.split_at(count);
    let (classes, sums) = rest.split_at(count);
    checks.verify(sums)?;
    let explained = resolved
        .iter()
        .zip(scores.iter().zip(classes))
        .map(|(target, (&score, &class))| ExplainedTarget {
            // Class indices below 2^24 are exact in f32.
            class: target.class(class as usize),
            score,
        })
        .collect::<Vec<_>>();
    Ok(explained.chunks(m).map(<[_]>::to_vec).collect())
}

/// One call submitted to the device (every op of [`Explainer::explain`](crate::Explainer::explain)),
/// nothing read back yet.
pub(crate) struct Pending {
    pub capture: DeviceCapture,
    pub maps: Maps,
    /// The capture's checks and the maps'.
    pub checks: Checks,
}

impl Pending {
    /// The one tensor to read back: scores, classes, checks, and the heatmap when asked for.
    pub fn values(&self, heatmap: bool) -> Tensor<1> {
        let heatmap = heatmap.then(|| self.maps.heatmap.clone());
        Readback::new(&self.capture, &self.checks).values(heatmap)
    }

    /// The explanation from the values read back, and the heatmap's values when they were.
    pub fn finish(self, host: Vec<f32>) -> Result<(Explanation, Vec<f32>)> {
        let (targets, head) = Readback::new(&self.capture, &self.checks).targets(&host)?;
        let heatmap = host.get(head..).map(<[f32]>::to_vec).unwrap_or_default();
        Ok((self.maps.explain(targets), heatmap))
    }
}
