"""The leading comments of the protocol's generated configs.

Each is the text of a config's leading ``#`` lines (see
:mod:`~mmseg_hosvd.protocol.config_table`); a setting's comment may name
its hook options (``{budget_mb:g}``) and the layer count
(``{num_layers}``).
"""

CALIB_COMMENT = """\
Calibration: only the classifier (conv_seg) trains on the target domain.
It predicts the target's {classes} classes, so it starts fresh: loading the
pretrained checkpoint skips the source's {source_classes}-class classifier."""
ROOT_COMMENT = """\
Fine-tuning the last 5 layers on the target domain, without compression.
Every other fine-tuning config of this model inherits this one. Each runs
the frozen prefix and the loss one image at a time (FrozenPrefixHook,
ChunkedLossHook): exact, and the whole-step peak each records is the one a
user short of memory meets."""
EPS06_COMMENT = """\
HOSVD at eps 0.6, below the paper's settings: how fast accuracy falls under
eps 0.8 ({num_layers} layers)."""
ALLOC_COMMENT = """\
HOSVD with each layer's eps allocated by weight-gradient error: on the first
training batch, every eps of the grid is measured on every fine-tuned layer
(||dW - dW_hat|| / ||dW||), and the least summed error whose stored bytes fit
those of eps 0.8 on every layer is kept for the run ({num_layers} layers)."""
ALLOC_WHOLE_COMMENT = """\
HOSVD with each layer's eps allocated by the error of the whole weight
gradient: as hosvd-eps-alloc0.8, but the allocation minimises the sum over
the layers of ||dW - dW_hat||^2 (the squared error of the gradient an SGD
step follows), so a layer counts by its gradient's size, not alike
({num_layers} layers)."""
ALLOC_KEEPBATCH_COMMENT = """\
As hosvd-eps-alloc0.8-whole, with the batch mode kept whole (each image its
own slice of the core), within the bytes of the paper's HOSVD at eps 0.8."""
ALLOC_SPATIAL_COMMENT = """\
As hosvd-eps-alloc0.8-whole-keepbatch, with two thresholds per layer: eps
for the channel mode, spatial_eps for the height and width modes (a Linear
input's token modes), each pair of the two grids measured on every layer."""
#: Comments of the peer reductions (``mb`` with ``{micro}`` and ``{steps}``).
PEER_COMMENTS = {
    'mb': """\
Gradient accumulation: the batch of 8 in {steps} micro-batches of {micro},
one optimizer step per iteration (whole_steps), so that the run sees the
same samples, augmentation and learning rates as its base config.""",
    'ckpt': """\
Activation checkpointing: the blocks holding fine-tuned layers are
recomputed in backward (non-reentrant, so it works behind the frozen
backbone); exact.""",
    'amp': """\
Mixed precision: the forward under bfloat16 autocast (also on CUDA); the
decompositions run in float32.""",
}

RESNET_PRETRAIN_COMMENT = """\
mmseg's ResNet zero-initialises the last norm of each residual block; after
a short pretraining those norms are still near zero, and the fine-tuned
backbone convolutions behind them cannot change the output. Initialised as
torchvision's ResNet is, the branches train."""

SUBSPACE_HEAD = """\
Fixed-rank HOSVD by subspace iteration, ranks allocated on the first batch
within a fixed budget of {budget_mb:g} MB for all fine-tuned layers together.
"""
MEASURED_BUDGET = SUBSPACE_HEAD + """\
How it was chosen: HOSVD eps 0.8's analytical activation memory for this
model and layer count on the first 8 target images from the calibrated
checkpoint (benchmarks/activation_memory.py --from-protocol), rounded. It
is not re-measured, so it need not equal HOSVD eps 0.8's mean in a run."""
LEAN_HEAD = """\
HOSVD eps 0.8 with a lean fine-tuned region: ReLU keeps a bit mask, frozen
"""
LEAN_COMMENT = LEAN_HEAD + """\
BatchNorm keeps nothing full-size, the classifier stores a HOSVD form. The
BN weights get their gradients from HOSVD forms of their inputs at eps 0.8,
the classifier from one at 0.99: with 0.8 for the classifier too the
protocol lost 1.1 to 3.2 mIoU against plain HOSVD."""
QACT_COMMENT = """\
Quantized activations (the ActNN / GACT idea): each fine-tuned convolution
stores its input as {bits}-bit codes per group of 256 elements, rounded
stochastically; the weight gradient is formed from the dequantized input."""
