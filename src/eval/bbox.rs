//! Boxes in pixels, and their masks.

use burn::tensor::{Device, Tensor, TensorData};

/// An axis-aligned box in pixels, half-open: `x0 <= x < x1`, `y0 <= y < y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BBox {
    /// Left column (inclusive).
    pub x0: usize,
    /// Top row (inclusive).
    pub y0: usize,
    /// Right column (exclusive).
    pub x1: usize,
    /// Bottom row (exclusive).
    pub y1: usize,
}

impl BBox {
    /// The box's area in pixels.
    pub fn area(&self) -> usize {
        self.x1.saturating_sub(self.x0) * self.y1.saturating_sub(self.y0)
    }

    /// Whether pixel `(x, y)` lies inside.
    pub fn contains(&self, x: usize, y: usize) -> bool {
        (self.x0..self.x1).contains(&x) && (self.y0..self.y1).contains(&y)
    }

    /// Intersection over union with `other`.
    pub fn iou(&self, other: &BBox) -> f32 {
        let w = self.x1.min(other.x1).saturating_sub(self.x0.max(other.x0));
        let h = self.y1.min(other.y1).saturating_sub(self.y0.max(other.y0));
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union == 0 {
            0.0
        } else {
            inter as f32 / union as f32
        }
    }
}

/// One mask per box: 1 inside, 0 outside.
///
/// # Shapes
/// - returns `[boxes.len(), h, w]`
pub fn box_masks(boxes: &[BBox], [h, w]: [usize; 2], device: &Device) -> Tensor<3> {
    let mut data = vec![0.0f32; boxes.len() * h * w];
    for (i, b) in boxes.iter().enumerate() {
        for y in b.y0..b.y1.min(h) {
            for x in b.x0..b.x1.min(w) {
                data[i * h * w + y * w + x] = 1.0;
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [boxes.len(), h, w]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_have_area_containment_and_iou() {
        let left = BBox {
            x0: 0,
            y0: 0,
            x1: 2,
            y1: 4,
        };
        let right = BBox {
            x0: 2,
            y0: 0,
            x1: 4,
            y1: 4,
        };
        assert_eq!(left.area(), 8);
        assert!(left.contains(1, 3) && !left.contains(2, 0));
        assert_eq!(left.iou(&right), 0.0);
        assert_eq!(left.iou(&left), 1.0);
        let half = BBox {
            x0: 1,
            y0: 0,
            x1: 3,
            y1: 4,
        };
        assert!((left.iou(&half) - 4.0 / 12.0).abs() < 1e-6);
    }
}
