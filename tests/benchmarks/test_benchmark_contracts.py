"""What the benchmarks and tools rely on: no ``sys.path`` edits, one
builder of the fine-tuned model, the method session's calibration."""
import ast
import glob
import os.path as osp

import torch

from mmseg_hosvd.methods import MethodSession
from mmseg_hosvd.methods.subspace_rank_session import SubspaceRankSession

from ..helpers import ROOT


def script_files():
    for folder in ('tools', 'benchmarks'):
        for path in sorted(glob.glob(osp.join(ROOT, folder, '*.py'))):
            yield osp.relpath(path, ROOT).replace(osp.sep, '/'), path


def sys_path_uses(path):
    """Lines of the code (not the docstrings) that touch ``sys.path``."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    return [
        node.lineno for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == 'path'
        and isinstance(node.value, ast.Name) and node.value.id == 'sys'
    ]


def test_no_tool_or_benchmark_edits_sys_path():
    """Scripts run by path import the installed package and their sibling
    modules; shared code lives in the package, not in another script."""
    found = {
        name: lines
        for name, path in script_files()
        for lines in [sys_path_uses(path)] if lines
    }
    assert found == {}


def test_the_check_sees_an_edit(tmp_path):
    path = tmp_path / 'edits.py'
    path.write_text('"""Mentions sys.path."""\nimport sys\n\n'
                    'sys.path.insert(0, "..")\n')
    assert sys_path_uses(str(path)) == [4]


def test_benchmarks_is_a_package():
    assert osp.isfile(osp.join(ROOT, 'benchmarks', '__init__.py'))
    # the library's step-memory module is not shadowed by a benchmark's
    assert not osp.exists(osp.join(ROOT, 'benchmarks', 'step_memory.py'))


def test_builder_loads_the_checkpoint_and_applies_the_method(tmp_path):
    from benchmarks.fine_tuned_model import build_fine_tuned_model
    plain = build_fine_tuned_model('fcn', 'vanilla', 5)
    assert len(plain.plan['compressed']) == 5
    # a method without a session gets the base one, which does nothing
    assert type(plain.session) is MethodSession
    state = plain.model.state_dict()
    name = next(k for k in state if k.endswith('conv_seg.weight'))
    state[name] = torch.full_like(state[name], 0.25)
    checkpoint = str(tmp_path / 'weights.pth')
    torch.save(dict(state_dict=state), checkpoint)

    fine = build_fine_tuned_model(
        'fcn', 'hosvd', 5, checkpoint=checkpoint, size=64,
        options=dict(eps=0.7, solver='eigh', not_an_option=1))
    assert torch.all(fine.model.state_dict()[name] == 0.25)
    assert fine.plan['compressed'] == plain.plan['compressed']
    assert fine.plan.options['eps'] == 0.7
    assert tuple(fine.cfg.model.data_preprocessor.size) == (64, 64)
    assert type(fine.session) is MethodSession


def test_subspace_session_calibrates_through_the_builder():
    from benchmarks.fine_tuned_model import build_fine_tuned_model
    torch.manual_seed(0)
    fine = build_fine_tuned_model('fcn', 'hosvd_subspace', 5,
                                  options=dict(eps=0.8, rank_batches=2))
    assert isinstance(fine.session, SubspaceRankSession)
    fine.model.train()
    x = torch.randn(2, 3, 64, 64)
    assert fine.session.calibrate(fine.model, x) is False
    assert fine.session.ranks is None
    assert fine.session.calibrate(fine.model, x) is True
    assert set(fine.session.ranks) == set(fine.plan['compressed'])
    for layer, ranks in fine.session.ranks.items():
        assert fine.model.get_submodule(layer).ranks == ranks

