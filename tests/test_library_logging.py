"""The library reports through MMEngine's logger, never print()."""
import ast
import glob
import os.path as osp

from .helpers import ROOT


def print_calls(source: str):
    """Lines of ``source`` that call the builtin print."""
    return [
        node.lineno for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        and node.func.id == 'print'
    ]


def test_no_print_in_the_library():
    found = {}
    for path in glob.glob(osp.join(ROOT, 'mmseg_hosvd', '**', '*.py'),
                          recursive=True):
        with open(path, encoding='utf-8') as f:
            lines = print_calls(f.read())
        if lines:
            found[osp.relpath(path, ROOT)] = lines
    assert found == {}


def test_the_check_sees_a_print():
    assert print_calls('x = 1\nprint(x)\n') == [2]
