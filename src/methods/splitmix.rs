//! SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA
//! 2014), the seeded stream of the random methods (RandomCAM's weights, SS-CAM's and
//! SmoothGrad-CAM++'s noise), and the standard normal noise drawn from it. Written
//! here rather than taken from `rand`, whose `StdRng` does not promise the same values across its
//! versions: a seed must give the same map on every backend, machine and version.

/// A Weyl sequence through a 64-bit mix: one `u64` per step.
#[derive(Debug, Clone)]
pub(super) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// The stream that starts after `state`.
    pub(super) fn new(state: u64) -> Self {
        Self { state }
    }

    /// The stream `steps` values further on (a Weyl sequence skips ahead in one addition).
    pub(super) fn skipped(mut self, steps: u64) -> Self {
        self.state = self
            .state
            .wrapping_add(steps.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self
    }

    /// The next value.
    pub(super) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The standard normal noise of draw `sample` for image `image` under `seed`, from its value
/// number `first` on: SplitMix64 from a state keyed by the three (skipped ahead two steps per
/// value), two uniforms in `(0, 1]` per value through Box-Muller (the sine's twin dropped). The
/// same seed gives the same noise on every backend and machine.
pub(crate) fn normal_noise(
    seed: u64,
    image: usize,
    sample: usize,
    first: usize,
) -> impl Iterator<Item = f32> {
    let mut stream = SplitMix64::new(
        seed ^ (image as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
            ^ (sample as u64).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7),
    )
    .skipped(2 * first as u64);
    // The top 53 bits as a float in (0, 1].
    let mut uniform = move || ((stream.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64;
    std::iter::repeat_with(move || {
        let (u1, u2) = (uniform(), uniform());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    })
}

/// The stream never ends.
impl Iterator for SplitMix64 {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        Some(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_the_published_splitmix64() {
        // The reference outputs of SplitMix64 from state 0 (Vigna's splitmix64.c).
        let first: Vec<u64> = SplitMix64::new(0).take(3).collect();
        assert_eq!(
            first,
            vec![
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F
            ]
        );
    }

    #[test]
    fn skipping_ahead_equals_stepping() {
        let stepped: Vec<u64> = SplitMix64::new(7).skip(1000).take(5).collect();
        let skipped: Vec<u64> = SplitMix64::new(7).skipped(1000).take(5).collect();
        assert_eq!(stepped, skipped);
        let off_by_one: Vec<u64> = SplitMix64::new(7).skipped(999).take(5).collect();
        assert_ne!(stepped, off_by_one);
    }
}
