"""The documentation holds together: every relative link of the README, of ``docs/``, of
``bench/RESULTS.md`` and of the notebooks' Markdown cells points at a file that exists, and every
``#anchor`` on a link to a Markdown file at one of its headings (GitHub's slugs); the README stays a
door (at most 200 lines) and every page of ``docs/`` can be reached from it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INDEX = DOCS / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md")), ROOT / "bench" / "RESULTS.md"]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("**/*.ipynb"))
README_MAX_LINES = 200

FENCED = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
INLINE_LINK = re.compile(r"\]\(\s*<?([^()\s<>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_LINK = re.compile(r"^[ ]{0,3}\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+.*)?$", re.MULTILINE)
HEADING = re.compile(r"^[ ]{0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")


def prose(markdown: str) -> str:
    """The Markdown without its code: fenced blocks and inline code spans, where a link is no link."""
    return INLINE_CODE.sub("", FENCED.sub("", markdown))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the text as shown, lower-cased, without punctuation other than
    hyphens and underscores, spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading shows its text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor, the second of two equal slugs with ``-1`` and so on, as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    for _, text in HEADING.findall(FENCED.sub("", markdown)):
        base = slug(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(markdown: str) -> list[str]:
    """The targets of the inline links and images and of the reference definitions, outside code."""
    text = prose(markdown)
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def broken_links(source: Path, markdown: str, root: Path = ROOT) -> list[str]:
    """What is wrong with the relative links of ``markdown``, written in ``source``: a file that does not
    exist (or lies outside the repository), or an anchor that matches no heading of the Markdown file it
    names. Addresses with a scheme (https:, mailto:) are not checked."""
    problems = []
    for target in links(markdown):
        if not target or SCHEME.match(target):
            continue
        path, _, anchor = target.partition("#")
        path = unquote(path)
        if path:
            file = (root / path.lstrip("/")) if path.startswith("/") else (source.parent / path)
            file = file.resolve()
            if not file.is_relative_to(root.resolve()) or not file.exists():
                problems.append(f"{target}: no such file ({file})")
                continue
        else:
            file = source
        if anchor and file.suffix == ".md" and file.is_file():
            if unquote(anchor).lower() not in anchors(file.read_text(encoding="utf-8")):
                problems.append(f"{target}: {file.name} has no heading with the anchor #{anchor}")
    return problems


def notebook_markdown(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def linked_files(page: Path) -> set[Path]:
    targets = (t.partition("#")[0] for t in links(page.read_text(encoding="utf-8")))
    return {(page.parent / unquote(t)).resolve() for t in targets if t and not SCHEME.match(t)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_of_the_docs_points_at_a_file_and_a_heading(page):
    assert page.is_file(), page
    problems = broken_links(page, page.read_text(encoding="utf-8"))
    assert not problems, f"{page.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_every_relative_link_of_a_notebook_points_at_a_file_and_a_heading(notebook):
    problems = broken_links(notebook, notebook_markdown(notebook))
    assert not problems, f"{notebook.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_the_readme_is_a_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"the README has {len(lines)} lines; it is the door (at most {README_MAX_LINES}): move the details to docs/")
    text = "\n".join(lines)
    assert "make course" in text and "make test" in text  # the two commands (.ci/run runs the README's `make test`)
    assert INDEX.resolve() in linked_files(README), "the README links docs/README.md, the index of docs/"


def test_every_page_of_docs_is_linked_from_the_readme_or_the_docs_index():
    reachable = linked_files(README) | linked_files(INDEX)
    orphans = [p.name for p in sorted(DOCS.glob("*.md")) if p != INDEX and p.resolve() not in reachable]
    assert not orphans, f"docs/ pages neither the README nor docs/README.md links: {orphans}"


@pytest.mark.parametrize("heading, expected", [
    ("Set-up: two commands", "set-up-two-commands"),
    ("CAM speed (bench/cam_bench.py)", "cam-speed-benchcam_benchpy"),
    ("The course on uneven photos (issue 29; bench/seeds_bench.py --seeds 0)",
     "the-course-on-uneven-photos-issue-29-benchseeds_benchpy---seeds-0"),
    ("`make test` (what CI runs)", "make-test-what-ci-runs"),
    ("Image size: 64 px on a CPU, 224 px on a GPU", "image-size-64-px-on-a-cpu-224-px-on-a-gpu"),
    ("Grad-CAM, the maths", "grad-cam-the-maths"),
])
def test_anchors_follow_githubs_rule(heading, expected):
    assert slug(heading) == expected


def test_the_link_check_finds_what_is_broken(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "guide.md").write_text("# Guide\n\n## Set-up: two commands\n\n## Notes\n\n## Notes\n")
    page = tmp_path / "docs" / "page.md"
    markdown = "\n".join([
        "# Page",
        "[fine](../guide.md#set-up-two-commands), [the second Notes](../guide.md#notes-1), [up](#page),",
        "[outside the repository](https://example.com/missing.md), `[in code](missing.md)`,",
        "```", "[in a block](missing-too.md)", "```",
        "[no file](guide.md), [no heading](../guide.md#set-up), [no heading here](#nowhere),",
        "![no picture](../pictures/fish.png), [out of the repository](../../elsewhere.md)",
        "",
        "[by reference][ref]",
        "",
        "[ref]: ../guide.md#notes-2",
    ])
    page.write_text(markdown)
    (tmp_path.parent / "elsewhere.md").write_text("# Elsewhere\n")
    problems = broken_links(page, markdown, root=tmp_path)
    assert [p.split(":")[0] for p in problems] == ["guide.md", "../guide.md#set-up", "#nowhere", "../pictures/fish.png",
                                                   "../../elsewhere.md", "../guide.md#notes-2"]
