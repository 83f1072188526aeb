"""The table of what N layers means per protocol model is true.

The table is in docs/methods.md.
"""
import os.path as osp
import re

from mmseg_hosvd.selection.layer_presets import PRESETS

from ..helpers import ROOT

NAMES = {'DeepLabV3': 'deeplabv3', 'DeepLabV3-M': 'deeplabv3-m',
         'PSPNet': 'pspnet', 'PSPNet-M': 'pspnet-m', 'FCN': 'fcn',
         'UPerNet': 'upernet', 'SegFormer-B0': 'segformer',
         'Swin-T UPerNet': 'swin-upernet'}
MODULES = {'none': [], 'the decode head': ['decode_head']}


def readme_rows():
    """``{preset: (layers at 5, at 10, also trained)}`` as stated."""
    with open(osp.join(ROOT, 'docs', 'methods.md'), encoding='utf-8') as f:
        text = f.read()
    header = '| model | compressed layers, 5 / 10 layers |'
    assert header in text, 'docs/methods.md lacks the table of layers'
    rows = {}
    for line in text.split(header, 1)[1].splitlines()[2:]:
        if not line.startswith('|'):
            break
        models, convs, trained = [
            c.strip() for c in line.strip('|').split('|')
        ]
        five, ten = re.fullmatch(r'(\d+)[^/]*/ (\d+).*', convs).groups()
        for model in models.split(', '):
            owner, _, what = trained.rpartition(': ')
            modules = MODULES[what] if owner in ('', model) else []
            rows[NAMES[model]] = (int(five), int(ten), modules)
    return rows


def test_readme_states_each_presets_layers():
    assert readme_rows() == {
        name: (len(p.compress[5]), len(p.compress[10]), p.trainable[10])
        for name, p in PRESETS.items()
    }
    assert all(p.trainable[5] == p.trainable[10] for p in PRESETS.values())
