"""README.md and docs/*.md: relative links resolve, and the README is short.

A relative link must name an existing file; a link with a ``#fragment`` to a
Markdown file must name one of its headings (GitHub's anchors).
"""
import glob
import os.path as osp
import re

import pytest

from .helpers import ROOT

#: The README is the entry page; the manual is in docs/.
README_MAX_LINES = 300

PAGES = [osp.join(ROOT, 'README.md')] + sorted(
    glob.glob(osp.join(ROOT, 'docs', '*.md')))

#: ``[text](target)`` and ``![alt](target)``, target without spaces.
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
FENCE = re.compile(r'^(```|~~~)')


def _prose(path):
    """The page's lines outside fenced code blocks."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    fenced = False
    for line in lines:
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def anchors(path):
    """GitHub's heading anchors of a Markdown file."""
    seen = {}
    found = set()
    for line in _prose(path):
        m = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
        if not m:
            continue
        slug = re.sub(r'[^\w\- ]', '', m.group(1).strip().lower())
        slug = slug.replace(' ', '-')
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f'{slug}-{n}')
    return found


def relative_links(path):
    """``(line, target)`` of every link that is not a URL."""
    for line in _prose(path):
        for target in LINK.findall(re.sub(r'`[^`]*`', '', line)):
            if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):
                continue  # http:, https:, mailto:
            yield line, target


def broken_links(path):
    """Relative links of ``path`` whose file or heading does not exist."""
    broken = []
    for _line, target in relative_links(path):
        file, _, fragment = target.partition('#')
        dest = (osp.normpath(osp.join(osp.dirname(path), file))
                if file else path)
        if not osp.exists(dest):
            broken.append(f'{target} (no such file)')
        elif fragment and dest.endswith('.md') and (fragment
                                                     not in anchors(dest)):
            broken.append(f'{target} (no such heading)')
    return broken


@pytest.mark.parametrize('path', PAGES, ids=lambda p: osp.relpath(p, ROOT))
def test_relative_links_resolve(path):
    assert broken_links(path) == []


def test_readme_is_short():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f'README.md has {len(lines)} lines, at most {README_MAX_LINES}: '
        'move the detail to docs/')


def test_the_check_finds_a_broken_link(tmp_path):
    page = tmp_path / 'page.md'
    (tmp_path / 'there.md').write_text('# A heading\n', encoding='utf-8')
    page.write_text(
        '# Page\n[ok](there.md) [ok](there.md#a-heading) [ok](#page)\n'
        '[bad](missing.md) [bad](there.md#nowhere) [web](https://x.org)\n'
        '```\n[in code](ignored.md)\n```\n',
        encoding='utf-8')
    assert broken_links(str(page)) == [
        'missing.md (no such file)', 'there.md#nowhere (no such heading)'
    ]
