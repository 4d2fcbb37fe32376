//! The finiteness checks of a call: one sum per score vector, gradient and map, each read back
//! with the call's other values; NaN or infinity anywhere makes its sum non-finite.

use burn::tensor::Tensor;

use crate::error::{GradCamError, Result};
use crate::explanation::LayerMap;
use crate::host::read;
use crate::maps::Maps;

/// Named one-value sums whose finiteness a call checks, in the order they are reported.
#[derive(Clone, Default)]
pub(crate) struct Checks(Vec<(String, Tensor<1>)>);

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Check that `sum`, the sum of the `what`, is finite.
    pub fn push(&mut self, what: impl Into<String>, sum: Tensor<1>) {
        self.0.push((what.into(), sum));
    }

    /// The sums of every layer's map and of the fused heatmap.
    pub fn of_maps(maps: &Maps) -> Self {
        let mut checks = Self::new();
        for LayerMap { name, raw, .. } in &maps.layers {
            checks.push(format!("map of layer `{name}`"), raw.clone().sum());
        }
        checks.push("fused heatmap", maps.heatmap.clone().sum());
        checks
    }

    pub fn extend(&mut self, other: Self) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn sums(&self) -> impl Iterator<Item = Tensor<1>> + '_ {
        self.0.iter().map(|(_, sum)| sum.clone())
    }

    /// [`NumericalError::NonFinite`](crate::NumericalError::NonFinite) naming the first check
    /// whose value read back (`values`, in order) is not finite.
    pub fn verify(&self, values: &[f32]) -> Result<()> {
        match self.0.iter().zip(values).find(|(_, v)| !v.is_finite()) {
            Some(((what, _), _)) => Err(GradCamError::non_finite(what.clone())),
            None => Ok(()),
        }
    }

    /// Read every sum back in one transfer and verify them.
    pub fn read_and_verify(&self) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        self.verify(&read(Tensor::cat(self.sums().collect(), 0)))
    }
}
