"""Writes a benchmark's records as JSON."""
import json
import os
import os.path as osp


def write_json(path, data) -> None:
    """Writes ``data`` to ``path`` (indented JSON), creating its folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)
