"""tools/generate_dataset.py's progress output when stdout is a pipe."""
import re
import subprocess
import sys

from ..helpers import ROOT


def test_progress_into_a_pipe_prints_a_few_lines(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/generate_dataset.py', '--root',
         str(tmp_path / 'shapes'), '--size', '16', '--source-train', '40',
         '--source-val', '20', '--target-train', '20', '--target-val', '20'],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # carriage returns would redraw a bar: in a log each is one more update
    updates = [u for u in re.split(r'[\r\n]', result.stdout) if u.strip()]
    assert len(updates) <= 12, updates
    assert updates[-1].startswith('wrote 100 images')
    assert any('100/100' in u for u in updates), updates
