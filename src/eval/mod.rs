//! Localisation and faithfulness metrics for heatmaps (feature `eval`): batched tensor ops on
//! the maps' device.
//!
//! Ground-truth metrics (need a box per map): [`pointing_game`], [`energy_in_box`] (also the
//! off-class energy, with another object's box), [`localisation_iou`] (the Grad-CAM paper's
//! protocol). Model-based metrics (need the model): [`deletion_insertion`] with [`auc`],
//! [`confidence_change`] for Average Drop and Increase in Confidence, and ROAD ([`road`],
//! [`road_combined`]: the removed pixels imputed from their neighbours instead of blacked out),
//! and [`arcc`] (Coherency, Complexity and ROAD in one number).
//!
//! What a ReLU on the map cannot change: the position of the maximum at the layer's resolution
//! (ReLU is monotone), and the positive part of a signed map (which *is* its ReLU), so energy
//! metrics on unnormalised maps are ReLU-invariant. After bilinear upsampling the maximum can
//! still move within a cell of the layer's grid, since a peak is interpolated with zeros (ReLU)
//! or with negative neighbours (no ReLU): the pointing game differs in rare cases. The switch
//! shows up in what a user sees: the min-max normalised map, where without the ReLU the negative
//! evidence is shifted up into the low end of the scale and counts as mass.

mod arcc;
mod bbox;
mod faithfulness;
mod localisation;
mod road;

pub use arcc::{Arcc, arcc};
pub use bbox::{BBox, box_masks};
pub use faithfulness::{
    Curves, auc, average_drop, confidence_change, deletion_insertion, increase_in_confidence,
};
pub use localisation::{energy_in_box, localisation_iou, pointing_game};
pub use road::{RoadConfig, RoadOrder, road, road_combined, road_inputs};

use crate::error::{GradCamError, Result};

/// One box per map, or an error.
fn check_boxes(maps: usize, boxes: usize) -> Result<()> {
    if maps != boxes {
        return Err(GradCamError::argument(format!(
            "{boxes} boxes for {maps} maps; give one box per map"
        )));
    }
    Ok(())
}
