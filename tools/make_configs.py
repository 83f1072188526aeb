"""Writes the protocol's configs from their tables.

Usage::

    python tools/make_configs.py [--root configs] [--check]

Every ``configs/<model>/*.py`` (not ``_base_/`` nor ``paper/``) of the
embedded protocol is written from ``mmseg_hosvd/protocol/config_table.py``,
and every ``configs/paper/<model>/*.py`` (the real datasets) from it and
``mmseg_hosvd/protocol/real_dataset_table.py``; a config there that the
tables do not write is removed. With ``--check`` nothing is written: the
files that differ, are missing or are extra are listed, and the exit
status is 1 when there is any.
"""
import argparse
import os.path as osp
import sys

from mmseg_hosvd.protocol import config_writer, real_dataset_configs
from mmseg_hosvd.protocol.config_files import compare, write_all

#: The writers of the two sets (see mmseg_hosvd.protocol.config_files).
WRITERS = (config_writer, real_dataset_configs)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', default=osp.join(ROOT, 'configs'),
                        help='the configs folder')
    parser.add_argument('--check', action='store_true',
                        help='list what differs and exit 1 if anything does')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    total = sum(len(writer.render_all()) for writer in WRITERS)
    if args.check:
        bad = 0
        for writer in WRITERS:
            state = compare(writer, args.root)
            for kind in ('differ', 'missing', 'extra'):
                for path in state[kind]:
                    print(f'{kind}: {osp.join(args.root, path)}')
            bad += sum(len(v) for v in state.values())
        print(f'{total} generated configs; '
              f'{bad} out of date' + ('' if bad else ', all up to date'))
        return 1 if bad else 0
    changed = [path for writer in WRITERS for path in write_all(
        writer, args.root)]
    for path in changed:
        print(f'wrote {osp.join(args.root, path)}')
    print(f'{total} generated configs; {len(changed)} changed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
