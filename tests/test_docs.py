"""The README stays short and leads to every page of docs/; no link in them is broken."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def links(page: Path) -> set[Path]:
    """The local files a Markdown page links to (not web addresses)."""
    return {(page.parent / target).resolve()
            for target in LINK.findall(page.read_text(encoding="utf-8"))
            if "://" not in target}


def test_the_readme_is_short_and_links_every_docs_page() -> None:
    readme = ROOT / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) < 300
    pages = {page.resolve() for page in (ROOT / "docs").glob("*.md")}
    assert pages and pages <= links(readme)


def test_every_local_link_of_the_readme_and_the_docs_leads_somewhere() -> None:
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in links(page):
            assert target.exists(), f"{page.name} links to {target}, which is not there"
