"""Freeze all but the last N layers and swap their convolutions in place."""
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmseg.registry import HOOKS
from torch import nn

from ...models.compressed_conv import CompressedConv2d, Conv2dHOSVD
from ...models.layer_presets import CLASSIFIER
from ...models.layer_selection import (check_module_names,
                                       convs_reading_same_input,
                                       modules_after, select_layers)
from ...models.lean_modules import BitMaskReLU, LeanFrozenBatchNorm2d
from ...models.rank_calibration import choose_ranks, input_spectra
from ...models.surgery import (METHODS, check_method, convert_convs_,
                               freeze_except_, set_norm_eval_, set_submodule)
from ...ops import (SharedDecomposition, check_eps, check_radius,
                    check_solver)
from .unwrap import unwrap_model

#: MessageHub runtime-info key holding the fine-tuned convolution names.
FINETUNED_CONVS_KEY = 'finetuned_convs'
#: MessageHub runtime-info key of the fixed subspace ranks (kept on resume).
SUBSPACE_RANKS_KEY = 'subspace_ranks'
#: Methods that decompose their input and can share it.
_SHARING = ('svd', 'hosvd', 'hosvd_subspace')
_SOLVER_METHODS = ('hosvd', 'hosvd_subspace')

DEFAULT_RADIUS = 2
#: Modules that the lean option replaces in the fine-tuned region.
LEAN_KINDS = (nn.ReLU, nn.ReLU6, nn.BatchNorm2d)
#: Parts of the lean region with their own HOSVD threshold.
LEAN_PARTS = ('norm', 'classifier')


def lean_eps_of(lean_eps: Union[None, float, Dict[str, float]],
                eps: float) -> Dict[str, float]:
    """The lean region's thresholds: ``{'norm': ..., 'classifier': ...}``.

    Args:
        lean_eps: None (``eps`` for both), one number for both, or a dict
            with some of the keys of :data:`LEAN_PARTS`.
        eps: The fine-tuned convolutions' threshold, the default.

    Raises:
        ValueError: For an unknown key or a threshold outside (0, 1].
    """
    if lean_eps is None:
        return {part: eps for part in LEAN_PARTS}
    if not isinstance(lean_eps, dict):
        value = check_eps(lean_eps)
        return {part: value for part in LEAN_PARTS}
    unknown = sorted(set(lean_eps) - set(LEAN_PARTS))
    if unknown:
        raise ValueError(f'lean_eps has unknown keys {unknown}; use '
                         f'{list(LEAN_PARTS)}')
    checked = {}
    for part in LEAN_PARTS:
        try:
            checked[part] = check_eps(lean_eps.get(part, eps))
        except ValueError as error:
            raise ValueError(f"lean_eps['{part}']: {error}") from None
    return checked


@HOOKS.register_module()
class CompressConvHook(Hook):
    """Fine-tunes the last N convolutions, compressing what they store.

    At ``before_train`` (after any checkpoint was loaded or resumed), every
    parameter is frozen except those of the selected convolutions, the
    classifier ``decode_head.conv_seg`` and the preset's extra trainable
    modules; then the selected convolutions are swapped in place for
    compressed ones that reuse the same Parameters, so the optimizer, the
    state dict and the checkpoints stay plain MMSegmentation.
    ``method='vanilla'`` freezes the same layers and compresses nothing, for a
    fair baseline. Before every training iteration all norm layers are put in
    eval mode (frozen statistics, ``norm_eval``).

    With ``method='hosvd_subspace'`` the ranks are fixed once, before the
    first training forward, from the first ``rank_batches`` batches: the
    per-mode ranks reaching ``eps``, or, with ``budget_mb``, a greedy
    allocation of the budget over all fine-tuned layers by explained variance
    gained per stored byte. They are logged, kept in MessageHub (so a resume
    keeps them), and each step then refines the factors by one step of
    subspace iteration.

    Args:
        method: 'vanilla', 'gradient_filter', 'svd', 'hosvd' or
            'hosvd_subspace'.
        num_layers: Number of fine-tuned convolutions (5 or 10 in the
            protocol; 0 trains only the classifier).
        layers: Explicit convolution names instead of ``num_layers``.
        eps: Explained-variance threshold in (0, 1] for 'svd' and 'hosvd'.
        radius: Gradient Filter patch size: an int for every layer, a dict
            by layer name, or None for the preset's reference radii (2 where
            the preset has none).
        preset: 'auto' detects the six protocol models and uses their
            reference lists; a preset name forces one; None takes the last N
            convolutions in execution order.
        trainable: Extra module names to keep trainable.
        norm_eval: Keep norm layers in eval mode during training.
        share_inputs: For 'svd' and 'hosvd', decompose a tensor that several
            fine-tuned convolutions read (DeepLabV3's ASPP branches) once per
            forward and store it once.
        budget_mb: For 'hosvd_subspace', the activation memory budget (MB)
            of all fine-tuned layers together; None chooses ranks by eps.
        rank_batches: For 'hosvd_subspace', how many first batches the ranks
            are measured on.
        lean: Also make the fine-tuned region lean (from the first
            fine-tuned convolution to the logits): ReLU/ReLU6 keep a 1-bit
            mask, BatchNorm with frozen statistics keeps nothing full-size
            (a trained BN weight gets its gradient from a HOSVD form of the
            input), and the classifier stores a HOSVD form of its input.
        lean_eps: Explained-variance threshold of those HOSVD forms: one
            number for both, or a dict with the keys 'norm' (BN inputs)
            and 'classifier' (the classifier's input), a missing key taking
            ``eps``; ``eps`` for both when None. The classifier's weight
            gradient matters most to fine-tuning: keep it high (0.99) and
            the BN inputs low (0.8) for most of the saving.
        solver: For 'hosvd' (and 'hosvd_subspace' before its ranks are
            set) and the lean region's HOSVD forms: 'auto' finds the
            leading vectors of large modes (see
            :func:`~mmseg_hosvd.ops.decomposition.uses_ritz`) by randomized
            subspace iteration (eps still guaranteed, rank equal to the
            exact one or slightly larger, several times faster on a decode
            head's channel mode); 'eigh' uses the full Gram
            eigendecomposition for every mode (the paper's exact ranks).
        trace_input_shape: Input shape used to trace execution order.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 method: str = 'hosvd',
                 num_layers: Optional[int] = None,
                 layers: Optional[Sequence[str]] = None,
                 eps: float = 0.8,
                 radius: Union[None, int, Dict[str, int]] = None,
                 preset: Optional[str] = 'auto',
                 trainable: Sequence[str] = (),
                 norm_eval: bool = True,
                 share_inputs: bool = True,
                 budget_mb: Optional[float] = None,
                 rank_batches: int = 1,
                 lean: bool = False,
                 lean_eps: Union[None, float, Dict[str, float]] = None,
                 solver: str = 'auto',
                 trace_input_shape: Sequence[int] = (2, 3, 64, 64)):
        self.method = check_method(method)
        if (num_layers is None) == (layers is None):
            raise ValueError('give exactly one of num_layers and layers, got '
                             f'num_layers={num_layers!r}, layers={layers!r}')
        self.num_layers = num_layers
        self.layers = None if layers is None else list(layers)
        self.eps = check_eps(eps)
        if isinstance(radius, dict):
            for value in radius.values():
                check_radius(value)
        elif radius is not None:
            check_radius(radius)
        self.radius = radius
        self.preset = preset
        self.trainable = list(trainable)
        self.norm_eval = norm_eval
        self.share_inputs = share_inputs
        if budget_mb is not None and (isinstance(budget_mb, bool)
                                      or not isinstance(budget_mb,
                                                        (int, float))
                                      or budget_mb <= 0):
            raise ValueError(f'budget_mb must be a number > 0, got '
                             f'{budget_mb!r}')
        if budget_mb is not None and method != 'hosvd_subspace':
            raise ValueError("budget_mb needs method='hosvd_subspace', got "
                             f'method={method!r}')
        if isinstance(rank_batches, bool) or not isinstance(
                rank_batches, int) or rank_batches < 1:
            raise ValueError(f'rank_batches must be an int >= 1, got '
                             f'{rank_batches!r}')
        self.budget_mb = budget_mb
        self.lean = bool(lean)
        self.lean_eps = lean_eps_of(lean_eps, self.eps)
        self.rank_batches = rank_batches
        self.solver = check_solver(solver)
        if solver != 'auto' and not (self.method in _SOLVER_METHODS
                                     or self.lean):
            raise ValueError(f'solver={solver!r} applies to the methods '
                             f'{_SOLVER_METHODS} and to the lean region, got '
                             f'method={method!r} without lean')
        self._spectra = []
        self.ranks = None
        self.trace_input_shape = tuple(trace_input_shape)
        self.plan = None

    def _radius_of(self, name: str, preset_radius: dict) -> int:
        if isinstance(self.radius, int):
            return self.radius
        if isinstance(self.radius, dict):
            if name not in self.radius:
                raise ValueError(f'radius has no entry for layer {name!r}; '
                                 f'it has {sorted(self.radius)}')
            return self.radius[name]
        return preset_radius.get(name, DEFAULT_RADIUS)

    def _factory(self, preset_radius: dict):
        module = METHODS[self.method]

        def build(name: str, conv: nn.Conv2d) -> nn.Module:
            if self.method == 'gradient_filter':
                return module.from_conv(
                    conv, radius=self._radius_of(name, preset_radius))
            if self.method in _SOLVER_METHODS:
                return module.from_conv(conv, eps=self.eps,
                                        solver=self.solver)
            return module.from_conv(conv, eps=self.eps)

        return build

    def apply(self, model: nn.Module) -> dict:
        """Freezes and converts ``model`` in place.

        Args:
            model: The (unwrapped) segmentor.

        Returns:
            The plan: method, preset, compressed layers, trainable modules
            and parameters, and per-layer settings.
        """
        compress, preset_trainable, preset_radius, used = select_layers(
            model, self.num_layers, self.layers, self.preset,
            self.trace_input_shape)
        if isinstance(self.radius, dict):
            unknown = sorted(set(self.radius) - set(compress))
            if unknown:
                raise ValueError(f'radius given for layers that are not '
                                 f'fine-tuned: {unknown}')
        check_module_names(model, self.trainable)
        classifier = [CLASSIFIER] if _has_module(model, CLASSIFIER) else []
        trainable = list(
            dict.fromkeys(compress + preset_trainable + self.trainable +
                          classifier))
        params = freeze_except_(model, trainable)
        settings, radii, shared = {}, None, []
        if METHODS[self.method] is not None:
            new = convert_convs_(model, compress,
                                 self._factory(preset_radius))
            if self.share_inputs and self.method in _SHARING:
                shared = convs_reading_same_input(model, compress,
                                                  self.trace_input_shape)
                for group in shared:
                    cache = SharedDecomposition()
                    for name in group:
                        new[name].shared_input = cache
            settings = {n: m.extra_repr() for n, m in new.items()}
            if self.method == 'gradient_filter':
                radii = {n: m.radius for n, m in new.items()}
        lean_modules = self._make_lean(model, compress) if self.lean else []
        self.plan = dict(
            method=self.method,
            preset=used,
            num_layers=(self.num_layers if self.layers is None else len(
                self.layers)),
            num_compressed=len(compress),
            compressed=compress,
            trainable_modules=trainable,
            trainable_params=params,
            settings=settings,
            radii=radii,
            shared_inputs=shared,
            lean=self.lean,
            lean_eps=dict(self.lean_eps) if self.lean else None,
            lean_modules=lean_modules,
            eps=self.eps if self.method in _SHARING else None,
            solver=(self.solver if self.method in _SOLVER_METHODS
                    or self.lean else None),
            budget_mb=self.budget_mb)
        return self.plan

    def _make_lean(self, model: nn.Module, compress: List[str]) -> List[str]:
        """Swaps ReLU/BN of the fine-tuned region and the classifier."""
        starts = compress or [CLASSIFIER]
        names = modules_after(model, starts, LEAN_KINDS,
                              self.trace_input_shape)
        for name in names:
            module = model.get_submodule(name)
            if isinstance(module, (nn.ReLU, nn.ReLU6)):
                set_submodule(model, name, BitMaskReLU.from_module(module))
            else:
                set_submodule(
                    model, name,
                    LeanFrozenBatchNorm2d.from_module(
                        module, self.lean_eps['norm'], self.solver))
        if _has_module(model, CLASSIFIER) and not isinstance(
                model.get_submodule(CLASSIFIER), CompressedConv2d):
            set_submodule(
                model, CLASSIFIER,
                Conv2dHOSVD.from_conv(model.get_submodule(CLASSIFIER),
                                      eps=self.lean_eps['classifier'],
                                      solver=self.solver))
            names.append(CLASSIFIER)
        return names

    def before_train(self, runner) -> None:
        model = unwrap_model(runner.model)
        plan = self.apply(model)
        hub = MessageHub.get_current_instance()
        hub.update_info(FINETUNED_CONVS_KEY, plan['compressed'])
        resumed = hub.get_info(SUBSPACE_RANKS_KEY, None)
        if self.method == 'hosvd_subspace' and resumed:
            self._set_ranks(model, {n: tuple(r) for n, r in resumed.items()})
            runner.logger.info(f'CompressConvHook: resumed ranks {resumed}')
        runner.logger.info(
            f"CompressConvHook: method={plan['method']} "
            f"preset={plan['preset']} layers={plan['num_layers']}\n"
            f"  converted: {plan['settings'] or plan['compressed']}\n"
            f"  trainable modules: {plan['trainable_modules']}\n"
            f"  trainable parameters: {len(plan['trainable_params'])}")

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.norm_eval:
            set_norm_eval_(runner.model)
        if self.method == 'hosvd_subspace' and self.ranks is None:
            self._measure_ranks(runner, data_batch)

    def _set_ranks(self, model: nn.Module, ranks: dict) -> None:
        for name, value in ranks.items():
            model.get_submodule(name).set_ranks(value)
        self.ranks = ranks
        if self.plan is not None:
            self.plan['ranks'] = ranks

    def _measure_ranks(self, runner, data_batch) -> None:
        model = unwrap_model(runner.model)
        inputs = model.data_preprocessor(data_batch, True)['inputs']
        self.measure_ranks(model, inputs, runner.logger)

    def measure_ranks(self, model: nn.Module, inputs, logger=None) -> bool:
        """Adds one batch to the rank measurement; fixes ranks when enough.

        Args:
            model: The converted (unwrapped) segmentor.
            inputs: A preprocessed image batch.
            logger: Where the chosen ranks are logged.

        Returns:
            Whether the ranks are now fixed.
        """
        names = self.plan['compressed']
        self._spectra.append(input_spectra(model, names, inputs))
        if len(self._spectra) < self.rank_batches:
            return False
        merged = {
            name: (self._spectra[-1][name][0], [
                sum(s[name][1][mode] for s in self._spectra)
                for mode in range(len(self._spectra[-1][name][1]))
            ])
            for name in names
        }
        ranks, used_mb = choose_ranks(merged, self.plan['shared_inputs'],
                                      self.eps, self.budget_mb)
        self._set_ranks(model, ranks)
        self._spectra = []
        self.plan['ranks_mb'] = used_mb
        MessageHub.get_current_instance().update_info(
            SUBSPACE_RANKS_KEY, {n: list(r)
                                 for n, r in ranks.items()})
        if logger is not None:
            source = (f'budget {self.budget_mb} MB' if self.budget_mb
                      is not None else f'eps {self.eps}')
            logger.info(
                f'CompressConvHook: subspace ranks from {source} on '
                f'{self.rank_batches} batch(es), storing {used_mb:.4f} MB: '
                f'{ranks}')
        return True

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuses a ``load_from`` checkpoint of another model."""
        check_checkpoint_fits(
            unwrap_model(runner.model), checkpoint,
            runner.cfg.get('load_from', None) or 'the checkpoint')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Stops at a non-finite loss, before any checkpoint of it is saved."""
        loss = (outputs or {}).get('loss')
        if loss is None or bool(torch.isfinite(torch.as_tensor(loss)).all()):
            return
        last = osp.join(runner.work_dir, 'last_checkpoint')
        kept = open(last).read().strip() if osp.isfile(last) else None
        raise FloatingPointError(
            f'loss is {float(torch.as_tensor(loss).float().mean())} at '
            f'iteration {runner.iter + 1}: training diverged and stopped. '
            + (f'The last checkpoint, {kept}, is kept. ' if kept else
               'No checkpoint was saved before it. ') +
            'Lower the learning rate, or raise eps for svd/hosvd.')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.plan is not None:
            meta = checkpoint.setdefault('meta', {})
            meta['finetune'] = {
                k: v
                for k, v in self.plan.items() if k != 'trainable_params'
            }


def check_checkpoint_fits(model: nn.Module, checkpoint: dict,
                          source: str) -> None:
    """Checks that a checkpoint holds this model's weights.

    Every parameter and buffer of the model but the classifier (whose class
    count may differ between datasets) must be in the checkpoint with the
    same shape; otherwise mmengine would load it partially, and fine-tuning
    would silently start from random layers.

    Args:
        model: The (unwrapped) model.
        checkpoint: The loaded checkpoint.
        source: Its path, for the message.

    Raises:
        ValueError: Naming the checkpoint and the first mismatches.
    """
    state = checkpoint.get('state_dict', checkpoint)
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    expected = {
        k: v
        for k, v in model.state_dict().items()
        if not k.startswith(CLASSIFIER + '.')
    }
    missing = [k for k in expected if k not in state]
    mismatched = [
        k for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or mismatched:
        examples = (missing + mismatched)[:3]
        raise ValueError(
            f'{source} does not fit this model: {len(missing)} missing and '
            f'{len(mismatched)} differently shaped of {len(expected)} '
            f'entries (e.g. {examples}); it is a checkpoint of another '
            'model. Load the checkpoint that this model\'s pretraining or '
            'calibration config wrote.')


def _has_module(model: nn.Module, name: str) -> bool:
    try:
        model.get_submodule(name)
        return True
    except AttributeError:
        return False


__all__: List[str] = ['CompressConvHook', 'FINETUNED_CONVS_KEY']
