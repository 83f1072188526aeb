"""What the planner reads from a probe's record, and a record it cannot
read named as such."""
import json

import pytest

from mmseg_hosvd.engine.hooks import PROBE_RECORD_FILE
from mmseg_hosvd.planning.probe_runs import read_probe
from mmseg_hosvd.planning.setups import get_setup

RECORD = dict(meta=dict(step_peak_memory=dict(peak_increment_mb=12.5),
                        finetune=dict(allocation_whole_error=0.25)),
              train_time=[9.0, 5.0, 1.0, 3.0, 2.0])


def write(tmp_path, record):
    (tmp_path / PROBE_RECORD_FILE).write_text(
        record if isinstance(record, str) else json.dumps(record))


def test_the_peak_the_later_steps_median_and_the_error(tmp_path):
    write(tmp_path, RECORD)
    measured = read_probe(str(tmp_path), get_setup('hosvd-eps0.8'))
    assert measured.name == 'hosvd-eps0.8' and not measured.exact
    assert measured.peak_mb == 12.5
    assert measured.step_s == 2.0  # iterations 3-5; not the profiled 2nd
    assert measured.error == 0.25


@pytest.mark.parametrize('record,match', [
    (None, 'is missing: the run did not train with a ProbeRecordHook'),
    ('{"meta": {', 'is not a probe record: JSONDecodeError'),
    (dict(meta={}), "is not a probe record: KeyError\\('train_time'\\)"),
    (dict(meta={}, train_time=[1.0, 1.0, 1.0]),
     'has no step_peak_memory: the probe did not reach its profiled'),
    (dict(meta=[], train_time=[1.0, 1.0, 1.0]),
     'is not a probe record: AttributeError'),
    (dict(RECORD, train_time=[1.0, 1.0]), 'is not a probe record: '
     'IndexError'),
])
def test_a_record_it_cannot_read_is_named(tmp_path, record, match):
    if record is not None:
        write(tmp_path, record)
    with pytest.raises(RuntimeError, match=match):
        read_probe(str(tmp_path), get_setup('vanilla'))
