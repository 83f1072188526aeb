"""The protocol's configs on disk are what ``tools/make_configs.py`` writes
from ``mmseg_hosvd/protocol/config_table.py``, and the table is the
protocol's matrix."""
import dataclasses
import importlib.util
import os.path as osp
import re
import shutil

from mmengine.config import Config

from mmseg_hosvd.methods.lookup import setting_tag
from mmseg_hosvd.protocol import (
    config_files,
    config_table,
    config_writer,
    real_dataset_configs,
)
from mmseg_hosvd.protocol.config_table import (
    LAYER_COUNTS,
    TABLE,
    Model,
    Setting,
    protocol_tags,
)
from mmseg_hosvd.protocol.config_writer import HEADER, on_disk, render_all
from mmseg_hosvd.protocol.matrix import MODEL_CONFIGS, config_path
from mmseg_hosvd.protocol.peers import PEER_ROWS, peer_tags

from .helpers import CONFIGS, ROOT

#: The rows of the paper's matrix, in the runner's order.
PAPER_TAGS = ('vanilla', 'gradfilter', 'svd-eps0.8', 'hosvd-eps0.8',
              'hosvd-eps0.9')


def make_configs_main():
    spec = importlib.util.spec_from_file_location(
        'make_configs', osp.join(ROOT, 'tools', 'make_configs.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_configs_on_disk_are_what_the_table_writes():
    state = config_files.compare(config_writer, CONFIGS)
    assert state['differ'] == [], (
        'edited by hand, or the table changed without running '
        'python tools/make_configs.py')
    assert state['missing'] == [], 'run python tools/make_configs.py'


def test_no_config_outside_the_table():
    assert config_files.compare(config_writer, CONFIGS)['extra'] == []
    assert set(on_disk(CONFIGS)) == set(render_all())


def test_every_generated_config_says_so():
    assert all(text.startswith(HEADER + '\n')
               for text in render_all().values())


def test_the_table_is_the_protocols_matrix():
    expected = {
        osp.relpath(config_path(m, 'finetune', t, n, root=CONFIGS), CONFIGS)
        for m in MODEL_CONFIGS for t in protocol_tags() + peer_tags()
        for n in LAYER_COUNTS
    } | {
        osp.relpath(config_path(m, s, root=CONFIGS), CONFIGS)
        for m in MODEL_CONFIGS for s in ('pretrain', 'calib')
    }
    assert set(render_all()) == expected
    assert len(expected) == 416
    assert {name: (m.folder, m.prefix)
            for name, m in TABLE.models.items()} == MODEL_CONFIGS
    assert tuple(s.tag for s in TABLE.settings) == protocol_tags()
    assert protocol_tags(extensions=False) == PAPER_TAGS
    assert protocol_tags()[:len(PAPER_TAGS)] == PAPER_TAGS
    for s in TABLE.settings:
        assert setting_tag(s.method, s.options, s.lean) == s.tag
    assert TABLE.peer_rows == PEER_ROWS


def documented_setting():
    """The ``Setting`` that docs/adding-a-method.md adds to ``SETTINGS``."""
    with open(osp.join(ROOT, 'docs', 'adding-a-method.md'),
              encoding='utf-8') as f:
        section = f.read().split('## Protocol configs')[1]
    entry = re.search(r'^SETTINGS = \(\n    \.\.\.\n    (Setting\(.*\)),\n'
                      r'\)$', section, re.MULTILINE)
    return eval(entry.group(1), {'Setting': Setting, 'dict': dict})


def test_adding_a_method_setting_adds_its_configs(tmp_path, monkeypatch):
    # the one-entry edit of docs/adding-a-method.md ("Protocol configs")
    setting = documented_setting()
    assert setting == Setting('hosvd-eps0.7', 'hosvd', dict(eps=0.7),
                              extension=True)
    table = dataclasses.replace(TABLE,
                                settings=TABLE.settings + (setting, ))
    before, after = render_all(), render_all(table)
    added = set(after) - set(before)
    assert added == {
        osp.join(m.folder,
                 f'{m.prefix}_hosvd-eps0.7-l{n}_shapes-target-128x128.py')
        for m in TABLE.models.values() for n in LAYER_COUNTS
    }
    assert len(added) == 2 * len(TABLE.models) == 16
    assert {p: after[p] for p in before} == before
    # written next to the hand-written bases, it loads as its name says
    shutil.copytree(osp.join(CONFIGS, '_base_'), tmp_path / '_base_')
    config_files.write_all(config_writer, str(tmp_path), table)
    path = osp.join(tmp_path, sorted(added)[0])
    hooks = Config.fromfile(path).custom_hooks
    assert hooks[0] == dict(type='CompressConvHook', method='hosvd', eps=0.7,
                            num_layers=10)
    # and the protocol lists its tag: an extension, run when asked for
    monkeypatch.setattr(config_table, 'TABLE', table)
    assert protocol_tags() == tuple(s.tag for s in TABLE.settings) + (
        'hosvd-eps0.7', )
    assert protocol_tags(extensions=False) == PAPER_TAGS
    assert {
        osp.relpath(config_path(m, 'finetune', 'hosvd-eps0.7', n,
                                root=CONFIGS), CONFIGS)
        for m in TABLE.models for n in LAYER_COUNTS
    } == added


def test_adding_a_model_adds_its_configs():
    model = dataclasses.replace(TABLE.models['fcn'], folder='fcn-x',
                                prefix='fcn_r50-d8')
    table = dataclasses.replace(TABLE,
                                models={**TABLE.models, 'fcn-x': model})
    added = set(render_all(table)) - set(render_all())
    assert len(added) == 2 + len(LAYER_COUNTS) * (
        len(TABLE.settings) + len(PEER_ROWS)) == 52
    assert all(p.startswith('fcn-x/fcn_r50-d8_') for p in added)
    assert isinstance(model, Model)
    real = set(real_dataset_configs.render_all(table)) - set(
        real_dataset_configs.render_all())
    # pretraining, then per target dataset a calibration and every setting
    assert len(real) == 1 + 2 * (1 + len(LAYER_COUNTS) * len(
        TABLE.settings)) == 59
    assert all(p.startswith('paper/fcn-x/fcn_r50-d8_') for p in real)


def test_check_lists_what_differs_and_writing_repairs_it(tmp_path, capsys):
    main = make_configs_main()
    root = str(tmp_path)
    assert main(['--root', root]) == 0
    assert main(['--root', root, '--check']) == 0
    edited, removed = sorted(render_all())[:2]
    with open(osp.join(root, edited), 'a', encoding='utf-8') as f:
        f.write('train_cfg = dict(max_iters=1)\n')
    (tmp_path / removed).unlink()
    (tmp_path / 'fcn' / 'stale.py').write_text('')
    (tmp_path / 'paper').mkdir(exist_ok=True)
    (tmp_path / 'paper' / 'hand.py').write_text('')
    capsys.readouterr()
    assert main(['--root', root, '--check']) == 1
    out = capsys.readouterr().out
    assert f'differ: {osp.join(root, edited)}' in out
    assert f'missing: {osp.join(root, removed)}' in out
    assert f"extra: {osp.join(root, 'fcn', 'stale.py')}" in out
    assert 'hand.py' not in out
    assert main(['--root', root]) == 0
    assert config_files.compare(config_writer, root) == dict(
        differ=[], missing=[], extra=[])
    assert (tmp_path / 'paper' / 'hand.py').exists()
