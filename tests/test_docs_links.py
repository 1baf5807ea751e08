"""The README leads with the answer and its links hold: README.md has at most 150 lines, and every
relative markdown link in README.md and docs/*.md points to a file that exists (and, with a
#fragment, to a heading of that file, slugged as GitHub does)."""

import glob
import os
import re

import pytest
from helpers import REPO

README_MAX_LINES = 150
# [text](target) and ![alt](target); the target up to the first space or closing parenthesis.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^(```|~~~)")


def _docs():
    return ["README.md"] + sorted(os.path.relpath(p, REPO)
                                  for p in glob.glob(os.path.join(REPO, "docs", "*.md")))


def _prose(text: str) -> str:
    """The text outside fenced and indented code blocks and inline code spans."""
    kept, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if fenced or line.startswith("    ") or line.startswith("\t"):
            continue
        kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces -> '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: str) -> set[str]:
    """The anchor of every heading outside code fences (text inside backticks counts)."""
    anchors, seen, fenced = set(), {}, False
    for line in open(path, encoding="utf-8").read().splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        match = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match is None:
            continue
        slug = _slug(match.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _links(doc: str):
    text = _prose(open(os.path.join(REPO, doc), encoding="utf-8").read())
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        yield target


def test_the_readme_has_at_most_150_lines():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_docs_have_links_to_check():
    assert sum(1 for doc in _docs() for _ in _links(doc)) >= 10


@pytest.mark.parametrize("doc", _docs())
def test_every_relative_link_resolves(doc):
    broken = []
    for target in _links(doc):
        path, _, fragment = target.partition("#")
        resolved = os.path.normpath(os.path.join(REPO, os.path.dirname(doc), path)) if path \
            else os.path.join(REPO, doc)
        if not os.path.exists(resolved):
            broken.append(f"{target}: no file {os.path.relpath(resolved, REPO)}")
        elif fragment and resolved.endswith(".md") and fragment not in _anchors(resolved):
            broken.append(f"{target}: no heading #{fragment} in {os.path.relpath(resolved, REPO)}")
    assert not broken, f"{doc}: " + "; ".join(broken)


def test_the_slug_is_githubs():
    assert _slug("## The quickstart (`bash scripts/quickstart.sh`): what it cost and printed"
                 .lstrip("# ")) == "the-quickstart-bash-scriptsquickstartsh-what-it-cost-and-printed"
    assert _slug("6. Not in the paper: the route guard (an option)") == \
        "6-not-in-the-paper-the-route-guard-an-option"


def test_ci_runs_exactly_the_readmes_test_command():
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    tests = readme.split("**2. The tests**", 1)[1]
    command = re.search(r"^    (bash scripts/\S+)", tests, re.M).group(1)
    ci = [line.strip() for line in open(os.path.join(REPO, ".ci", "run"), encoding="utf-8")
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] == command, (ci[-1], command)
