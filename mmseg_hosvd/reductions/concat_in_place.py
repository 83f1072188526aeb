"""Heads that write each branch straight into the concatenation.

mmseg's ASPP, PSP, SegFormer and UPerNet heads collect their branch outputs
in a list and then concatenate it, so at that moment every branch output
exists twice (80 MB list plus 80 MB concatenation for DeepLabV3-R18-d8 at
512 x 512, batch 8; 128 plus 128 MB for PSPNet, whose concatenation also
copies the head's input; 32 plus 32 MB for SegFormer-B0 at 128 x 128;
UPerNet's four FPN outputs at a quarter of the input's resolution), and the
list lives until the head's method returns. Here the head writes each
branch into its slice of one preallocated concatenation and frees it at
once (:func:`concat_into`). A branch output that nothing saves for
backward (an upsampled map, a frozen branch, or any branch in the lean
region, whose ReLU stores a bit mask) then exists only in the
concatenation; one that a trained ReLU saves stays as long as backward
needs it.
The computation is the one of mmseg 1.2's ``ASPPHead._forward_feature``,
``PSPHead._forward_feature``, ``SegformerHead.forward`` and
``UPerHead._forward_feature``; values and gradients are the same, so it
is an exact reduction on its own (``ConcatInPlaceHook``) as well as part
of the lean region.
"""
import functools
from typing import Callable, Dict, List, NamedTuple

import torch
from mmseg.models.decode_heads.aspp_head import ASPPHead
from mmseg.models.decode_heads.psp_head import PSPHead
from mmseg.models.decode_heads.segformer_head import SegformerHead
from mmseg.models.decode_heads.uper_head import UPerHead
from mmseg.models.utils import resize
from torch import nn


class _WriteSlot(torch.autograd.Function):
    """Copies a part into its slice of the buffer; returns a data-less
    token of the part's shape through which the part's gradient flows."""

    @staticmethod
    def forward(ctx, part, holder, start):
        holder[0][:, start:start + part.shape[1]].copy_(part)
        return part.new_zeros(()).expand(part.shape)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


class _Assemble(torch.autograd.Function):
    """Returns the filled buffer; backward hands each token its slice of
    the gradient as a view (``torch.cat``'s backward, no copy)."""

    @staticmethod
    def forward(ctx, holder, widths, *tokens):
        ctx.widths = widths
        return holder[0]

    @staticmethod
    def backward(ctx, grad):
        slices, start = [], 0
        for width in ctx.widths:
            slices.append(grad[:, start:start + width])
            start += width
        return (None, None, *slices)


def share_copy_(tensor: torch.Tensor, copy: torch.Tensor) -> bool:
    """Points a frozen tensor at an equal ``copy`` (a slice of a
    concatenation), so that its own memory is freed.

    PSPNet's head concatenates its input with the pyramid branches, while
    the backbone's output tuple keeps the input alive for the whole step:
    the input would exist twice (64 MB for PSPNet-R18-d8 at 512 x 512,
    batch 8). The values are the same, so every holder of ``tensor`` now
    reads them from the concatenation. Only a tensor that owns its memory
    whole and needs no gradient is re-pointed (``Tensor.set_`` bumps its
    version, so a backward that had saved it would fail loudly rather than
    read other values).

    Returns:
        Whether ``tensor`` was re-pointed.
    """
    if (tensor.requires_grad or tensor._base is not None
            or not tensor.is_contiguous()
            or tensor.untyped_storage().nbytes() != tensor.nbytes
            or tensor.dtype != copy.dtype or tensor.shape != copy.shape):
        return False
    with torch.no_grad():
        tensor.set_(copy.untyped_storage(), copy.storage_offset(),
                    tensor.shape, copy.stride())
    return True


def _layout_of(piece: torch.Tensor) -> torch.memory_format:
    """Channels-last for a channels-last 4-D part (SegFormer's upsampled
    stage features are): the convolution after the concatenation and its
    HOSVD read that layout fastest. ``torch.cat`` keeps channels-last only
    when every part is; here the first part decides (the values are the
    same either way)."""
    if piece.dim() == 4 and not piece.is_contiguous() and \
            piece.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def concat_into(parts: List[Callable[[], torch.Tensor]],
                widths: List[int],
                share_frozen: bool = False) -> torch.Tensor:
    """``torch.cat([part() for part in parts], 1)``, one part alive at once.

    Each part is copied into its slice of one preallocated tensor (in the
    first part's layout, channels-last or contiguous: :func:`_layout_of`;
    in the widest dtype of the parts so far, as ``torch.cat`` promotes
    under autocast) and freed; backward gives each part its slice of the
    gradient, as ``torch.cat`` does (an in-place slice assignment would
    instead clone the whole gradient once per part).

    Args:
        parts: Functions returning tensors of one shape but for dim 1,
            called in order.
        widths: The size of dim 1 of each part.
        share_frozen: Whether a part that needs no gradient and owns its
            memory is re-pointed at its copy as soon as it is written
            (:func:`share_copy_`), so that it does not exist twice while
            the later parts are computed.

    Returns:
        The concatenation along dim 1.

    Raises:
        ValueError: When a part's width is not the one given.
    """
    holder, tokens, start = [], [], 0
    for part, width in zip(parts, widths, strict=True):
        piece = part()
        if piece.shape[1] != width:
            raise ValueError(f'a part has {piece.shape[1]} channels where '
                             f'{width} were expected')
        if not holder:
            holder.append(torch.empty(
                (piece.shape[0], sum(widths)) + tuple(piece.shape[2:]),
                dtype=piece.dtype, device=piece.device,
                memory_format=_layout_of(piece)))
        wider = torch.promote_types(holder[0].dtype, piece.dtype)
        if wider != holder[0].dtype:  # as torch.cat, in the widest dtype
            holder[0] = holder[0].to(wider)
        tokens.append(_WriteSlot.apply(piece, holder, start))
        if share_frozen:
            share_copy_(piece, holder[0][:, start:start + width])
        start += width
        del piece
    return _Assemble.apply(holder, tuple(widths), *tokens)


def _upsampled(head: nn.Module, x: torch.Tensor,
               branch: Callable) -> Callable[[], torch.Tensor]:
    return lambda: resize(branch(x), size=x.size()[2:], mode='bilinear',
                          align_corners=head.align_corners)


def _pooled_per_image(branch: nn.Module) -> Callable:
    """A pyramid branch (pooling, then convolution) that pools one image at
    a time: an image of a channel slice is contiguous, where the CPU
    pooling kernel copies a sliced batch whole."""
    if not (isinstance(branch, nn.Sequential)
            and isinstance(branch[0], nn.AdaptiveAvgPool2d)):
        return branch

    def pooled(x: torch.Tensor) -> torch.Tensor:
        images = [branch[0](x[i:i + 1]) for i in range(x.shape[0])]
        return branch[1:](torch.cat(images))

    return pooled


def aspp_features(head: ASPPHead, inputs) -> torch.Tensor:
    """``ASPPHead._forward_feature`` with the branches written in place."""
    x = head._transform_inputs(inputs)
    parts = [_upsampled(head, x, head.image_pool)]
    parts += [lambda m=m: m(x) for m in head.aspp_modules]
    widths = [head.channels] * len(parts)
    return head.bottleneck(concat_into(parts, widths))


def psp_features(head: PSPHead, inputs) -> torch.Tensor:
    """``PSPHead._forward_feature`` with the branches written in place; a
    frozen input is written first and then read from its copy in the
    concatenation (:func:`share_copy_`)."""
    x = head._transform_inputs(inputs)
    parts = [lambda: x]
    parts += [
        _upsampled(head.psp_modules, x, _pooled_per_image(m))
        for m in head.psp_modules
    ]
    widths = [x.shape[1]] + [head.channels] * len(head.psp_modules)
    return head.bottleneck(concat_into(parts, widths, share_frozen=True))


def segformer_forward(head: SegformerHead, inputs) -> torch.Tensor:
    """``SegformerHead.forward`` with the upsampled stage features written
    in place."""
    inputs = head._transform_inputs(inputs)
    size = inputs[0].shape[2:]
    parts = [
        lambda x=x, conv=conv: resize(conv(x), size=size,
                                      mode=head.interpolate_mode,
                                      align_corners=head.align_corners)
        for x, conv in zip(inputs, head.convs, strict=True)
    ]
    widths = [head.channels] * len(parts)
    return head.cls_seg(head.fusion_conv(concat_into(parts, widths)))


def uper_features(head: UPerHead, inputs) -> torch.Tensor:
    """``UPerHead._forward_feature`` with the FPN outputs written in place.

    Each level's FPN convolution runs, is upsampled and written before the
    next one runs (mmseg runs all four first), and each lateral is let go
    once its convolution has read it.
    """
    inputs = head._transform_inputs(inputs)
    laterals = [conv(inputs[i]) for i, conv in enumerate(head.lateral_convs)]
    laterals.append(head.psp_forward(inputs))
    levels = len(laterals)
    for i in range(levels - 1, 0, -1):
        laterals[i - 1] = laterals[i - 1] + resize(
            laterals[i], size=laterals[i - 1].shape[2:], mode='bilinear',
            align_corners=head.align_corners)
    size = laterals[0].shape[2:]

    def level(i: int) -> torch.Tensor:
        lateral, laterals[i] = laterals[i], None
        out = head.fpn_convs[i](lateral) if i < levels - 1 else lateral
        del lateral
        if i == 0:
            return out
        return resize(out, size=size, mode='bilinear',
                      align_corners=head.align_corners)

    parts = [functools.partial(level, i) for i in range(levels)]
    return head.fpn_bottleneck(
        concat_into(parts, [head.channels] * levels))


class ConcatHead(NamedTuple):
    """The method of a head that gets the in-place concatenation.

    Attributes:
        attribute: The name of the method replaced on the instance.
        function: ``function(head, inputs)``, the method's replacement.
    """
    attribute: str
    function: Callable


#: The heads with an in-place concatenation, by exact type (a subclass
#: such as DeepLabV3+'s head has a forward of its own).
CONCAT_HEADS: Dict[type, ConcatHead] = {
    ASPPHead: ConcatHead('_forward_feature', aspp_features),
    PSPHead: ConcatHead('_forward_feature', psp_features),
    SegformerHead: ConcatHead('forward', segformer_forward),
    UPerHead: ConcatHead('_forward_feature', uper_features),
}


def concat_in_place_(model: nn.Module) -> List[str]:
    """Gives every ASPP, PSP, SegFormer or UPerNet head of ``model`` the
    in-place concatenation.

    The head's method (:data:`CONCAT_HEADS`) is replaced on the instance
    only; its class, parameters and state dict are untouched. Replacing it
    again is a no-op.

    Returns:
        The names of the heads changed.

    Raises:
        ValueError: When something else already replaced that method on
            the instance (activation checkpointing wraps a head's
            ``forward``): replacing it would silently undo that.
    """
    names = []
    for name, module in model.named_modules():
        concat = CONCAT_HEADS.get(type(module))
        if concat is not None:
            current = vars(module).get(concat.attribute)
            if current is not None and not (
                    isinstance(current, functools.partial)
                    and current.func is concat.function):
                raise ValueError(
                    f'{name}.{concat.attribute} is already replaced on the '
                    f'instance ({type(current).__name__}); write the '
                    'branches into the concatenation before wrapping it '
                    '(ConcatInPlaceHook runs before the NORMAL-priority '
                    'hooks)')
            setattr(module, concat.attribute,
                    functools.partial(concat.function, module))
            names.append(name)
    return names
