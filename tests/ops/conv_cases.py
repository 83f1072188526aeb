"""Convolution settings shared by the exactness tests."""
import torch
from torch import nn

# (in, out, kernel, stride, padding, dilation, groups, bias, H, W)
CASES = [
    (4, 6, 3, 1, 1, 1, 1, True, 9, 9),
    (4, 6, 3, 2, 1, 1, 1, False, 9, 11),
    (4, 6, 3, 2, 2, 2, 1, True, 10, 9),  # stride == dilation > 1
    (6, 9, 3, 1, 2, 2, 3, True, 8, 12),  # grouped, 1 < groups < C
    (6, 6, 3, 1, 1, 1, 6, False, 7, 9),  # depthwise
    (6, 12, 3, 2, 1, 1, 6, True, 9, 8),  # depthwise multiplier 2, stride 2
    (5, 7, (3, 1), 1, (1, 0), 1, 1, True, 8, 6),
    (4, 4, 1, 1, 0, 1, 1, True, 5, 7),  # 1 x 1
    (6, 3, 1, 1, 0, 2, 1, False, 6, 5),  # 1 x 1, narrowing, dilated
    (4, 6, 1, 2, 0, 1, 2, True, 7, 6),  # 1 x 1, strided and grouped
    (4, 6, 4, 1, 'same', 1, 2, True, 9, 8),  # asymmetric padding
    (3, 5, 2, 1, 'same', (1, 3), 1, False, 8, 9),  # asymmetric per axis
    (4, 6, (3, 5), (1, 2), (0, 2), (2, 1), 1, True, 11, 13),
]


def case_id(case):
    cin, cout, k, s, p, d, g, b, h, w = case
    return f'c{cin}-{cout}_k{k}_s{s}_p{p}_d{d}_g{g}_b{int(b)}_{h}x{w}'


def make_conv(case, dtype=torch.float64, **kwargs):
    """The nn.Conv2d of a case and an input that needs grad."""
    cin, cout, k, s, p, d, g, b, h, w = case
    conv = nn.Conv2d(cin, cout, k, s, p, d, g, b, **kwargs).to(dtype)
    x = torch.randn(3, cin, h, w, dtype=dtype, requires_grad=True)
    return conv, x


def reference_grads(conv, x):
    """Output, input grad and parameter grads of plain nn.Conv2d."""
    out = conv(x)
    grad_out = torch.randn_like(out)
    params = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
    grads = torch.autograd.grad(out, [x] + params, grad_out)
    return out.detach(), grad_out, grads
