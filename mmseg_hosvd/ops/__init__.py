"""Pure-torch core: decompositions, compressed convolutions and Linear layers.

Nothing here imports mmcv, mmengine or mmseg.
"""
from .checks import SOLVERS, SolverUnsuitable, check_eps, check_solver
from .conv_geometry import (
                            ConvGeometry,
                            conv2d,
                            conv2d_input_grad,
                            conv2d_weight_grad,
)
from .decomposition import hosvd, leading_vectors, truncated_svd
from .decomposition_settings import (
    DecompositionSettings,
    check_keep_batch,
    check_seed,
    check_spatial_eps,
)
from .gradient_filter_conv import check_radius, gradient_filter_conv2d
from .hosvd_conv import (
                            hosvd_conv2d,
                            hosvd_conv2d_from_factors,
                            hosvd_weight_grad,
                            subspace_hosvd_conv2d,
)
from .hosvd_linear import (
                            hosvd_linear,
                            hosvd_linear_weight_grad,
                            subspace_hosvd_linear,
)
from .layer_operation import (
                            LINEAR_ORDERS,
                            check_linear_input,
                            linear_weight_grad,
)
from .mode_unfolding import ModeUnfolding
from .quantized_codes import (
                             check_bits,
                             check_group_size,
                             dequantize,
                             quantize,
)
from .quantized_conv import quantized_conv2d
from .quantized_linear import quantized_linear
from .rank_budget import allocate_ranks, ranks_from_eps, tucker_numel
from .ritz import ritz_leading_vectors
from .shared_input import SharedDecomposition
from .solvers import SOLVER_TABLE
from .spectrum import (
                            gram_eigenpairs,
                            gram_eigh,
                            rank_from_energy,
                            rank_from_explained_variance,
)
from .stats import ANALYTICAL_BYTES_PER_ELEMENT, StoredActivation
from .subspace import subspace_hosvd, subspace_step
from .svd_conv import svd_conv2d
from .svd_linear import svd_linear
from .tap_weight_grad import conv2d_weight_grad_by_taps
from .tensor_ops import (
                            fold,
                            gram_times,
                            mode_dot,
                            multi_mode_dot,
                            tucker_to_tensor,
                            unfold,
)
from .tucker import tucker_core
from .warm_start import WarmStart, check_warm_start, warm_starts_in

__all__ = [
    'check_bits', 'check_group_size', 'check_seed', 'dequantize', 'quantize',
    'quantized_conv2d',
    'ConvGeometry', 'conv2d', 'conv2d_input_grad', 'conv2d_weight_grad',
    'conv2d_weight_grad_by_taps',
    'check_eps', 'check_solver', 'leading_vectors', 'ritz_leading_vectors',
    'gram_eigh', 'hosvd', 'rank_from_energy',
    'rank_from_explained_variance', 'truncated_svd', 'check_radius',
    'gradient_filter_conv2d', 'hosvd_conv2d', 'hosvd_conv2d_from_factors',
    'hosvd_weight_grad', 'SharedDecomposition',
    'ANALYTICAL_BYTES_PER_ELEMENT', 'StoredActivation',
    'svd_conv2d', 'fold', 'gram_times', 'mode_dot', 'multi_mode_dot',
    'tucker_to_tensor',
    'unfold', 'subspace_hosvd_conv2d', 'allocate_ranks', 'ranks_from_eps',
    'tucker_numel', 'subspace_hosvd', 'subspace_step',
    'DecompositionSettings', 'check_keep_batch', 'check_spatial_eps',
    'SolverUnsuitable',
    'SOLVER_TABLE', 'SOLVERS',
    'ModeUnfolding', 'tucker_core', 'gram_eigenpairs', 'LINEAR_ORDERS',
    'check_linear_input', 'linear_weight_grad', 'hosvd_linear',
    'hosvd_linear_weight_grad', 'subspace_hosvd_linear', 'svd_linear',
    'quantized_linear', 'WarmStart', 'check_warm_start', 'warm_starts_in'
]
