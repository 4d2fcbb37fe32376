//! Ground truth we control: a deterministic generator of two-object scenes with exact boxes and
//! masks, and the small BatchNorm CNN trained on them (`examples/train_shapes.rs`).
//!
//! A scene is a 64x64 RGB image in `[0, 1]`: a cluttered background (random lines and blobs)
//! and two objects of different classes. The class is the *shape* (disc, square, triangle,
//! cross); colour, stripe or checker texture, size (16 to 26 px) and position are random, so
//! only the shape tells the classes apart.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

use gradcam::eval::BBox;
use gradcam::{GradCam, Probe};

/// The side of a scene in pixels.
pub const SCENE_SIZE: usize = 64;

/// The object classes, by index.
pub const SHAPE_CLASSES: [&str; 4] = ["disc", "square", "triangle", "cross"];

/// One object of a scene.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneObject {
    /// Index into [`SHAPE_CLASSES`].
    pub class: usize,
    /// The tight box around its pixels.
    pub bbox: BBox,
    /// Its pixels, row-major `[SCENE_SIZE, SCENE_SIZE]`.
    pub mask: Vec<bool>,
}

/// A generated scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// The image, `[3, SCENE_SIZE, SCENE_SIZE]` channel-major, values in `[0, 1]`.
    pub image: Vec<f32>,
    /// Two objects of different classes.
    pub objects: [SceneObject; 2],
}

/// SplitMix64: small, fast, and the same numbers everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, index: u64) -> Self {
        let mut rng = Self(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }

    fn color(&mut self) -> [f32; 3] {
        [self.unit(), self.unit(), self.unit()]
    }
}

/// Whether the point `(u, v)` in `[-1, 1]^2` (v down) is inside the shape of `class`.
fn inside(class: usize, u: f32, v: f32) -> bool {
    match class {
        0 => u * u + v * v <= 1.0,
        1 => u.abs() <= 0.8 && v.abs() <= 0.8,
        2 => v <= 0.9 && u.abs() <= (v + 1.0) * 0.5,
        _ => (u.abs() <= 0.3 && v.abs() <= 1.0) || (v.abs() <= 0.3 && u.abs() <= 1.0),
    }
}

/// The scene `index` of the stream `seed`: the same scene on every machine.
pub fn scene(seed: u64, index: u64) -> Scene {
    let mut rng = Rng::new(seed, index);
    let n = SCENE_SIZE;
    let mut image = vec![0.0f32; 3 * n * n];
    let put = |image: &mut [f32], x: usize, y: usize, c: [f32; 3]| {
        for (k, value) in c.into_iter().enumerate() {
            image[k * n * n + y * n + x] = value;
        }
    };

    // Background: a flat colour, then clutter (lines and small blobs).
    let base = rng.color().map(|c| 0.25 + 0.5 * c);
    for y in 0..n {
        for x in 0..n {
            put(&mut image, x, y, base);
        }
    }
    for _ in 0..8 {
        let color = rng.color();
        if rng.unit() < 0.5 {
            let (x0, y0) = (rng.unit() * n as f32, rng.unit() * n as f32);
            let angle = rng.unit() * std::f32::consts::PI;
            let length = 10.0 + rng.unit() * 30.0;
            for t in 0..(length as usize * 2) {
                let t = t as f32 * 0.5;
                let (x, y) = (x0 + t * angle.cos(), y0 + t * angle.sin());
                if (0.0..n as f32).contains(&x) && (0.0..n as f32).contains(&y) {
                    put(&mut image, x as usize, y as usize, color);
                }
            }
        } else {
            let (cx, cy, r) = (
                rng.range(0, n) as f32,
                rng.range(0, n) as f32,
                1.5 + rng.unit() * 2.5,
            );
            for y in 0..n {
                for x in 0..n {
                    let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                    if dx * dx + dy * dy <= r * r {
                        put(&mut image, x, y, color);
                    }
                }
            }
        }
    }

    // Two objects of different classes, boxes at least 2 px apart.
    let first = rng.range(0, SHAPE_CLASSES.len());
    let second = (first + rng.range(1, SHAPE_CLASSES.len())) % SHAPE_CLASSES.len();
    let mut placed: Vec<(usize, usize, usize)> = Vec::new(); // (x0, y0, size)
    let objects = [first, second].map(|class| {
        let (x0, y0, size) = loop {
            let size = rng.range(16, 27);
            let (x0, y0) = (rng.range(1, n - size), rng.range(1, n - size));
            let apart = placed.iter().all(|&(px, py, ps)| {
                x0 + size + 2 <= px || px + ps + 2 <= x0 || y0 + size + 2 <= py || py + ps + 2 <= y0
            });
            if apart {
                break (x0, y0, size);
            }
        };
        placed.push((x0, y0, size));
        let colors = [rng.color(), rng.color()];
        let texture = rng.range(0, 4);
        let period = rng.range(2, 5);
        let mut mask = vec![false; n * n];
        let mut bbox = BBox {
            x0: n,
            y0: n,
            x1: 0,
            y1: 0,
        };
        let half = size as f32 / 2.0;
        for y in y0..y0 + size {
            for x in x0..x0 + size {
                let u = (x as f32 + 0.5 - x0 as f32 - half) / half;
                let v = (y as f32 + 0.5 - y0 as f32 - half) / half;
                if !inside(class, u, v) {
                    continue;
                }
                mask[y * n + x] = true;
                bbox = BBox {
                    x0: bbox.x0.min(x),
                    y0: bbox.y0.min(y),
                    x1: bbox.x1.max(x + 1),
                    y1: bbox.y1.max(y + 1),
                };
                let stripe = match texture {
                    0 => 0,
                    1 => (y / period) % 2,
                    2 => (x / period) % 2,
                    _ => (x / period + y / period) % 2,
                };
                put(&mut image, x, y, colors[stripe]);
            }
        }
        SceneObject { class, bbox, mask }
    });
    Scene { image, objects }
}

/// Scenes as a batch.
///
/// # Shapes
/// - returns `[scenes.len(), 3, SCENE_SIZE, SCENE_SIZE]`
pub fn scene_batch(scenes: &[Scene], device: &Device) -> Tensor<4> {
    let data: Vec<f32> = scenes
        .iter()
        .flat_map(|s| s.image.iter().copied())
        .collect();
    Tensor::from_data(
        TensorData::new(data, [scenes.len(), 3, SCENE_SIZE, SCENE_SIZE]),
        device,
    )
}

/// The share of `scenes` whose two highest logits are exactly their two classes (the accuracy
/// of [`ShapesNet`]), in batches of 250.
pub fn two_class_accuracy(model: &ShapesNet, scenes: &[Scene], device: &Device) -> f32 {
    let mut correct = 0;
    for chunk in scenes.chunks(250) {
        let logits = model
            .forward(scene_batch(chunk, device))
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 logits");
        for (scene, row) in chunk.iter().zip(logits.chunks(SHAPE_CLASSES.len())) {
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|a, b| row[*b].total_cmp(&row[*a]));
            let mut top2 = [order[0], order[1]];
            let mut truth = [scene.objects[0].class, scene.objects[1].class];
            top2.sort();
            truth.sort();
            correct += usize::from(top2 == truth);
        }
    }
    correct as f32 / scenes.len().max(1) as f32
}

/// Conv 3x3, BatchNorm, ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    /// The convolution.
    pub conv: Conv2d,
    /// Its BatchNorm.
    pub bn: BatchNorm,
}

impl ConvBnRelu {
    fn new(i: usize, o: usize, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            bn: BatchNormConfig::new(o).init(device),
        }
    }

    /// # Shapes
    /// - `x`: `[n, i, h, w]`
    /// - returns `[n, o, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.bn.forward(self.conv.forward(x)))
    }
}

/// A small BatchNorm CNN for the scenes: four conv-BN-ReLU blocks (two followed by 2x2 max-pools),
/// global average pooling, a linear layer over [`SHAPE_CLASSES`]. Trained multi-label (both
/// objects' classes are positives).
///
/// Explainable layers: `block1` (32x32), `block2` (16x16), `block3` and `block4` (16x16; the
/// default).
#[derive(Module, Debug)]
pub struct ShapesNet {
    /// 3 -> 16 channels, then a max-pool.
    pub block1: ConvBnRelu,
    /// 16 -> 32 channels, then a max-pool.
    pub block2: ConvBnRelu,
    /// 32 -> 64 channels.
    pub block3: ConvBnRelu,
    /// 64 -> 64 channels.
    pub block4: ConvBnRelu,
    /// The classifier.
    pub fc: Linear,
    pool: MaxPool2d,
}

impl ShapesNet {
    /// A freshly initialised network on `device`.
    pub fn new(device: &Device) -> Self {
        Self {
            block1: ConvBnRelu::new(3, 16, device),
            block2: ConvBnRelu::new(16, 32, device),
            block3: ConvBnRelu::new(32, 64, device),
            block4: ConvBnRelu::new(64, 64, device),
            fc: LinearConfig::new(64, SHAPE_CLASSES.len()).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }

    /// The logits.
    ///
    /// # Shapes
    /// - `x`: `[n, 3, 64, 64]`
    /// - returns `[n, 4]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_probed(x, &mut Probe::passthrough())
    }
}

impl GradCam for ShapesNet {
    fn layers(&self) -> Vec<String> {
        ["block1", "block2", "block3", "block4"]
            .map(String::from)
            .to_vec()
    }

    fn forward_probed(&self, x: Tensor<4>, probe: &mut Probe) -> Tensor<2> {
        let x = probe.layer("block1", self.block1.forward(x)); // [n, 16, 64, 64]
        let x = self.pool.forward(x); // [n, 16, 32, 32]
        let x = probe.layer("block2", self.block2.forward(x)); // [n, 32, 32, 32]
        let x = self.pool.forward(x); // [n, 32, 16, 16]
        let x = probe.layer("block3", self.block3.forward(x)); // [n, 64, 16, 16]
        let x = probe.layer("block4", self.block4.forward(x)); // [n, 64, 16, 16]
        self.fc.forward(x.mean_dims(&[2, 3]).flatten::<2>(1, 3)) // [n, 4]
    }

    fn input_shape(&self) -> [Option<usize>; 3] {
        [Some(3), Some(SCENE_SIZE), Some(SCENE_SIZE)]
    }

    fn min_input_size(&self) -> [usize; 2] {
        [4, 4] // two 2x2 max-pools
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_deterministic_and_boxes_are_exact() {
        let a = scene(7, 3);
        assert_eq!(a, scene(7, 3));
        assert_ne!(a.image, scene(7, 4).image);
        assert_ne!(a.objects[0].class, a.objects[1].class);
        for object in &a.objects {
            let n = SCENE_SIZE;
            let pixels: Vec<(usize, usize)> = (0..n * n)
                .filter(|p| object.mask[*p])
                .map(|p| (p % n, p / n))
                .collect();
            assert!(pixels.len() > 100, "{} pixels", pixels.len());
            let bx = object.bbox;
            assert!(pixels.iter().all(|&(x, y)| bx.contains(x, y)));
            // Tight: every side of the box touches the mask.
            assert!(
                pixels.iter().any(|&(x, _)| x == bx.x0)
                    && pixels.iter().any(|&(x, _)| x + 1 == bx.x1)
            );
            assert!(
                pixels.iter().any(|&(_, y)| y == bx.y0)
                    && pixels.iter().any(|&(_, y)| y + 1 == bx.y1)
            );
        }
        assert_eq!(a.objects[0].bbox.iou(&a.objects[1].bbox), 0.0);
        assert!(a.image.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn every_class_pair_occurs() {
        let mut seen = [[false; 4]; 4];
        for i in 0..200 {
            let s = scene(1, i);
            seen[s.objects[0].class][s.objects[1].class] = true;
        }
        let pairs = (0..4)
            .flat_map(|a| (0..4).map(move |b| (a, b)))
            .filter(|(a, b)| a != b);
        assert!(pairs.clone().all(|(a, b)| seen[a][b]), "{seen:?}");
    }
}
