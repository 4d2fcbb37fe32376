//! Where a module's parameters live and what float type they hold. Crate-private.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{DType, Device, FloatDType, Tensor};

/// The device and float dtype of the module's first float parameter; `None` without one.
pub(crate) fn device_and_dtype<M: Module>(model: &M) -> Option<(Device, DType)> {
    #[derive(Default)]
    struct First(Option<(Device, DType)>);
    impl ModuleVisitor for First {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0.is_none() {
                let value = param.val();
                self.0 = Some((value.device(), value.dtype()));
            }
        }
    }
    let mut first = First::default();
    model.visit(&mut first);
    first.0
}

/// A loaded model in another float type: every float parameter cast to `dtype` (those already
/// of that type untouched). The way to run a model in `f16` or `bf16` on a device whose default
/// stays `f32`; cast its input too (`input.cast(dtype)`), since the explainer checks that the
/// input's dtype is the model's. The other way, with no cast at all, is to configure the
/// device's float type before the model is built (see the README).
///
/// ```
/// # #[cfg(all(feature = "flex", feature = "models"))] {
/// use burn::tensor::{DType, Device, FloatDType};
/// use gradcam::models::SqueezeNet;
///
/// let model = gradcam::cast_model(SqueezeNet::new(&Device::flex()), FloatDType::F16);
/// assert_eq!(model.conv1.weight.val().dtype(), DType::F16);
/// # }
/// ```
pub fn cast_model<M: Module>(model: M, dtype: FloatDType) -> M {
    cast_floats(model, dtype.into())
}

/// Every float parameter of `model` cast to `dtype` (those already of that type untouched).
pub(crate) fn cast_floats<M: Module>(model: M, dtype: DType) -> M {
    struct Cast(DType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|t| {
                if t.dtype() == dtype {
                    t
                } else {
                    t.cast(FloatDType::from(dtype))
                }
            })
        }
    }
    model.map(&mut Cast(dtype))
}
