"""Freeze all but the last N layers and swap their convolutions in place."""
from typing import Dict, List, Optional, Sequence, Union

from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmseg.registry import HOOKS
from torch import nn

from ...methods import SessionChain, get_method, split_options
from ...methods.options import plain_value
from ...ops import SharedDecomposition, check_solver, check_warm_start
from ...ops.quantized_codes import check_bits
from ...planning.allocation_session import GradientAllocationSession
from ...reductions.concat_in_place import concat_in_place_
from ...reductions.lean_region import lean_eps_of, make_lean_
from ...selection.finetune_plan import FinetunePlan
from ...selection.layer_presets import CLASSIFIER
from ...selection.layer_selection import (
    check_module_names,
    layer_names,
    module_names,
    select_layers_of,
)
from ...selection.model_trace import shared_input_groups, trace_model
from ...selection.surgery import (
    convert_convs_,
    freeze_except_,
    has_module,
    set_norm_eval_,
)
from .unwrap import unwrap_model

#: MessageHub runtime-info key holding the fine-tuned layer names.
FINETUNED_CONVS_KEY = 'finetuned_convs'


@HOOKS.register_module()
class CompressConvHook(Hook):
    """Fine-tunes the last N layers with a method, compressing what they store.

    At ``before_train`` (after any checkpoint was loaded or resumed), every
    parameter is frozen except those of the selected layers (convolutions
    and Linear layers), the classifier ``decode_head.conv_seg`` and the
    preset's extra trainable modules; then the method swaps the selected
    layers in place for its modules (its ``module`` for a convolution, its
    ``linear_module`` for a Linear layer), which reuse the same Parameters,
    so the optimizer, the
    state dict and the checkpoints stay plain MMSegmentation. Before every
    training iteration all norm layers are put in eval mode (frozen
    statistics, ``norm_eval``). The plan is logged, kept in MessageHub and
    written to every checkpoint's meta.

    Args:
        method: A registered fine-tuning method (see
            :mod:`mmseg_hosvd.methods`): 'vanilla', 'gradient_filter',
            'svd', 'hosvd', 'hosvd_subspace', or one of your own.
        num_layers: Number of fine-tuned layers (5 or 10 in the protocol;
            0 trains only the classifier).
        layers: Explicit convolution and Linear layer names instead of
            ``num_layers``: one name (a string) or a non-empty list of
            them; ``num_layers=0`` trains only the classifier.
        preset: 'auto' detects the protocol models and uses their
            reference lists; a preset name forces one; None takes the last N
            convolutions and Linear layers in execution order.
        trainable: Extra module names to keep trainable (one name or a
            list).
        norm_eval: Keep norm layers in eval mode during training.
        share_inputs: For methods that decompose their input, decompose a
            tensor that several fine-tuned layers read (DeepLabV3's ASPP
            branches, q/k/v projections) once per forward and store it
            once.
        lean: Also make the fine-tuned region lean (see
            :mod:`mmseg_hosvd.reductions.lean_region`).
        lean_eps: Explained-variance threshold of the lean region's HOSVD
            forms: one number, or a dict with the keys 'norm' (BN inputs)
            and 'classifier' (its input); a missing one takes ``eps``
            (0.8 when the method has none). Keep the classifier's high
            (0.99) and the BN inputs' low (0.8) for most of the saving.
            ``classifier=None`` leaves the classifier a plain convolution
            that stores its whole input, for where a HOSVD form at 0.99
            keeps most of it for the time of a decomposition per step
            (SegFormer-B0: 55%). ``lean_eps=None`` itself compresses both
            parts at ``eps``.
        lean_bits: Also keep the inputs of the lean region's LayerNorm and
            GELU layers (transformers) as per-group codes of this many bits
            (2, 4 or 8): about a quarter of their memory at 8 bits, with
            approximate input gradients (they have no exact form that keeps
            less than their input). None (the default) leaves them exact.
        trace_input_shape: Input shape of the traced forward.
        **options: The method's own options (eps, solver, radius,
            budget_mb, rank_batches...: see each method); ``eps`` and
            ``solver`` also set the lean region's.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 method: str = 'hosvd',
                 num_layers: Optional[int] = None,
                 layers: Union[None, str, Sequence[str]] = None,
                 preset: Optional[str] = 'auto',
                 trainable: Union[str, Sequence[str]] = (),
                 norm_eval: bool = True,
                 share_inputs: bool = True,
                 lean: bool = False,
                 lean_eps: Union[None, float, Dict[str,
                                                   Optional[float]]] = None,
                 lean_bits: Optional[int] = None,
                 trace_input_shape: Sequence[int] = (2, 3, 64, 64),
                 **options):
        self.method = get_method(method)
        if (num_layers is None) == (layers is None):
            raise ValueError('give exactly one of num_layers and layers, got '
                             f'num_layers={num_layers!r}, layers={layers!r}')
        self.num_layers = num_layers
        self.layers = None if layers is None else layer_names(layers)
        self.preset = preset
        self.trainable = module_names(trainable, 'trainable')
        self.norm_eval = norm_eval
        self.share_inputs = share_inputs
        self.lean = bool(lean)
        options = plain_value(options)
        self.options = split_options(self.method, options, self.lean)
        self.lean_solver = check_solver(
            options.get('solver', self.options.get('solver', 'auto')))
        self.lean_warm_start = check_warm_start(
            options.get('warm_start', self.options.get('warm_start', True)))
        eps = options.get('eps', self.options.get('eps', 0.8))
        if self.lean and isinstance(eps, dict) and not (
                isinstance(lean_eps, (int, float)) or isinstance(
                    lean_eps, dict) and set(lean_eps) >= {'norm',
                                                           'classifier'}):
            raise ValueError(
                'eps is given per layer, so the lean region has no single '
                'default: set lean_eps to one value or to a dict with both '
                f"'norm' and 'classifier', got lean_eps={lean_eps!r}")
        self.lean_eps = lean_eps_of(lean_eps,
                                    None if isinstance(eps, dict) else eps)
        if lean_bits is not None:
            if not self.lean:
                raise ValueError(f'lean_bits={lean_bits!r} needs lean=True')
            check_bits(lean_bits)
        self.lean_bits = lean_bits
        self.trace_input_shape = tuple(trace_input_shape)
        self.plan: Optional[FinetunePlan] = None
        self.session = None

    def apply(self, model: nn.Module) -> FinetunePlan:
        """Freezes and converts ``model`` in place, from one traced forward.

        Args:
            model: The (unwrapped) segmentor.

        Returns:
            The :class:`~mmseg_hosvd.models.FinetunePlan`.
        """
        trace = trace_model(model, input_shape=self.trace_input_shape)
        selection = select_layers_of(model, trace, self.num_layers,
                                     self.layers, self.preset)
        compress = selection.compress
        self.method.check_layers(self.options, compress)
        for name in compress:
            self.method.module_for(name, model.get_submodule(name))
        check_module_names(model, self.trainable)
        classifier = [CLASSIFIER] if has_module(model, CLASSIFIER) else []
        trainable = list(
            dict.fromkeys(compress + selection.trainable + self.trainable +
                          classifier))
        params = freeze_except_(model, trainable)
        shared = []
        if self.share_inputs and self.method.shares_input:
            shared = shared_input_groups(trace, compress)
        self.plan = FinetunePlan(
            method=self.method.name,
            preset=selection.preset,
            num_layers=(self.num_layers
                        if self.layers is None else len(self.layers)),
            compressed=compress,
            trainable_modules=trainable,
            trainable_params=params,
            options=dict(self.options),
            shared_inputs=shared,
            lean=self.lean,
            lean_eps=dict(self.lean_eps) if self.lean else None,
            lean_bits=self.lean_bits)
        if self.method.converts:
            new = self._convert(model, compress, selection.radius, shared)
            self.plan.settings = {n: m.extra_repr() for n, m in new.items()}
            self.plan.results.update(self.method.results(new, self.options))
        if self.lean:
            self.plan.lean_modules = make_lean_(model, trace, compress,
                                                self.lean_eps,
                                                self.lean_solver,
                                                self.lean_bits,
                                                self.lean_warm_start)
            self.plan.results['lean_solver'] = self.lean_solver
            self.plan.results['lean_concat'] = concat_in_place_(model)
        sessions = [GradientAllocationSession(self.method, self.plan)
                    ] if self.options.get('allocate') is not None else []
        sessions += [s for s in [self.method.session(self.plan)] if s]
        self.session = (SessionChain(sessions) if len(sessions) > 1 else
                        next(iter(sessions), None))
        return self.plan

    def _convert(self, model: nn.Module, compress: List[str],
                 preset_radius: dict,
                 shared: List[List[str]]) -> Dict[str, nn.Module]:
        """Swaps the layers the method has a module for, one cache per
        shared-input group and per-layer setting (layers of a group given
        different values decompose the input each their own way)."""
        caches = {}
        for group in shared:
            by_setting = {}
            for name in group:
                setting = repr(self.method.layer_options(name, self.options))
                caches[name] = by_setting.setdefault(setting,
                                                     SharedDecomposition())
        swapped = [
            name for name in compress if self.method.module_for(
                name, model.get_submodule(name)) is not None
        ]
        return convert_convs_(
            model, swapped, lambda name, layer: self.method.build(
                name, layer, self.options, preset_radius, caches.get(name)))

    def before_train(self, runner) -> None:
        """Applies the method and logs the plan."""
        model = unwrap_model(runner.model)
        plan = self.apply(model)
        MessageHub.get_current_instance().update_info(FINETUNED_CONVS_KEY,
                                                      plan.compressed)
        runner.logger.info(
            f'CompressConvHook: method={plan.method} '
            f'preset={plan.preset} layers={plan.num_layers} '
            f'options={plan.options}\n'
            f'  converted: {plan.settings or plan.compressed}\n'
            f'  trainable modules: {plan.trainable_modules}\n'
            f'  trainable parameters: {len(plan.trainable_params)}')
        if self.session is not None:
            self.session.before_train(runner, model)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Freezes norm statistics; lets the method prepare the step."""
        if self.norm_eval:
            set_norm_eval_(runner.model)
        if self.session is not None:
            self.session.before_train_iter(runner,
                                           unwrap_model(runner.model),
                                           data_batch)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Writes the plan to the checkpoint's meta as ``finetune``."""
        if self.plan is not None:
            checkpoint.setdefault('meta', {})['finetune'] = (
                self.plan.to_meta())


__all__: List[str] = ['CompressConvHook', 'FINETUNED_CONVS_KEY']
