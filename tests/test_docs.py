"""The README and the user guide: every relative link resolves to a file of the repository, the
README stays a front page, and the site builds with mkdocs --strict."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves_in_the_repository(page):
    missing = [t for t in relative_links(page) if not (page.parent / t.split("#")[0]).exists()]
    assert missing == [], f"{page.relative_to(ROOT)} links files that do not exist: {missing}"


def test_the_readme_is_a_front_page_and_links_every_page_through_the_guide():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
    nav = (ROOT / "mkdocs.yml").read_text()
    assert {p.name for p in PAGES[1:]} == set(re.findall(r":\s*([\w-]+\.md)", nav)), "every page is in mkdocs.yml's nav"


def test_figures_in_the_docs_name_their_results_file():
    """A paragraph with a measured speed-up names a results file (or says where the figures are)."""
    for page in PAGES:
        for paragraph in page.read_text().split("\n\n"):
            if re.search(r"\d+\.\d+x\b", paragraph) and "|" not in paragraph.splitlines()[0]:
                assert "benchmarks/results/" in paragraph or "results.md" in paragraph or "README" in paragraph, (
                    f"{page.name}: a figure without its file: {paragraph[:160]!r}"
                )


@pytest.mark.skipif(shutil.which("mkdocs", path=str(Path(sys.executable).parent)) is None, reason="mkdocs not installed")
def test_the_site_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    done = subprocess.run([mkdocs, "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "results" / "index.html").is_file()
