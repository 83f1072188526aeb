"""What a fine-tuning set-up did to a model, kept with its checkpoints."""
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional


@dataclass
class FinetunePlan:
    """The fine-tuning plan of one model.

    Attributes:
        method: The fine-tuning method's name.
        preset: The layer preset used, or None.
        num_layers: The requested layer count (or the explicit list's
            length).
        compressed: Names of the swapped (or, for vanilla, selected)
            convolutions, the one nearest the output first.
        trainable_modules: Modules whose parameters train.
        trainable_params: Names of the trainable parameters.
        options: The method's options after defaults and checks (eps,
            solver, radius, budget_mb...).
        settings: ``extra_repr`` of each swapped convolution.
        shared_inputs: Groups of convolutions that share one decomposition.
        lean: Whether the fine-tuned region is lean.
        lean_eps: The lean region's thresholds (the classifier's None
            where it stores its whole input), or None.
        lean_bits: Bits of the lean region's LayerNorm and GELU inputs, or
            None (exact).
        lean_modules: Names of the lean region's swapped modules.
        results: What the method adds to the plan (Gradient Filter radii,
            subspace ranks and their memory...), filled as it runs.
    """

    method: str
    preset: Optional[str]
    num_layers: int
    compressed: List[str]
    trainable_modules: List[str]
    trainable_params: List[str]
    options: Dict[str, Any] = field(default_factory=dict)
    settings: Dict[str, str] = field(default_factory=dict)
    shared_inputs: List[List[str]] = field(default_factory=list)
    lean: bool = False
    lean_eps: Optional[Dict[str, Optional[float]]] = None
    lean_bits: Optional[int] = None
    lean_modules: List[str] = field(default_factory=list)
    results: Dict[str, Any] = field(default_factory=dict)

    @property
    def num_compressed(self) -> int:
        """How many convolutions are fine-tuned."""
        return len(self.compressed)

    def to_meta(self) -> Dict[str, Any]:
        """The plan as a flat dict for checkpoint meta and test records.

        The method's options and results are merged at the top level (as
        ``eps``, ``solver``, ``radii``, ``ranks``...); the trainable
        parameter names are left out.

        Returns:
            A JSON-friendly dict.
        """
        meta = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ('trainable_params', 'options', 'results')
        }
        meta['num_compressed'] = self.num_compressed
        meta.update(self.options)
        meta.update(self.results)
        return meta

    def __getitem__(self, key: str) -> Any:
        """Reads a key of :meth:`to_meta` (or ``trainable_params``)."""
        if key == 'trainable_params':
            return self.trainable_params
        return self.to_meta()[key]
