//! Photos in and pictures out (feature `image`): decoding with limits, preprocessing for a model,
//! colormaps, overlays, guided backpropagation as a picture. The core works on tensors and does not need any of this.

mod batches;
mod colormap;
mod decode;
mod guided;
mod overlay;
mod preprocess;
mod resize;

pub use ::image::{Limits, RgbImage};
pub use batches::{PhotoBatch, PhotoBatches};
pub use colormap::{Colormap, signed_to_diverging};
pub use decode::{default_limits, load_image, load_image_with_limits, save_png};
pub use guided::guided_to_rgb;
pub use overlay::{overlay, resize_map, side_by_side};
pub use preprocess::{ChannelOrder, MAX_SIDE, Preprocess};
pub use resize::Resize;
