"""MMEngine's config text, formatted once per text (utils/config_text.py)."""
from mmengine.config import config as config_module

from mmseg_hosvd.utils.config_text import cache_config_formatting

from ..helpers import model_config


def plain_text(cfg):
    """The text MMEngine's own formatting gives."""
    cached = config_module.FormatCode
    config_module.FormatCode = cached.original
    try:
        return cfg.pretty_text
    finally:
        config_module.FormatCode = cached


def test_importing_the_package_installs_it_once():
    assert hasattr(config_module.FormatCode, 'cache_info')
    assert not cache_config_formatting()


def test_the_text_is_mmengines_and_a_repeat_is_not_formatted_again():
    cfg = model_config('upernet')
    cfg.experiment_name = 'formatted once'
    info = config_module.FormatCode.cache_info
    first = cfg.pretty_text
    hits = info().hits
    assert cfg.pretty_text == first == plain_text(cfg)
    assert info().hits == hits + 1


def test_a_changed_config_gets_its_own_text():
    cfg = model_config('fcn')
    before = cfg.pretty_text
    cfg.train_cfg.max_iters = 12345
    after = cfg.pretty_text
    assert 'max_iters=12345' in after and 'max_iters=12345' not in before
    assert after == plain_text(cfg)
