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
