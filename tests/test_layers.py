"""The import diagram holds: every import of search/, models/ and data/ points down it
(``tests/layers.py``), and none closes a cycle; the checker itself fails on a tree that
breaks either rule."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT
from tests.layers import PRODUCT, problems

DIAGRAM = (
    ("top", [["app.cli"]]),
    ("middle", [["app.service"], ["app.views"]]),
    ("bottom", [["app.record"]]),
)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def app(tmp_path: Path, changes: dict[str, str] | None = None) -> Path:
    """A small tree that keeps to ``DIAGRAM``, with ``changes`` (file name -> text)."""
    files = {
        "app/__init__.py": "",
        "app/cli.py": "from app.service import run\nfrom app.views import show\n",
        "app/service/__init__.py": "from app.service.run import run\n",
        "app/service/run.py": "from app.record import KEY\n\n\ndef run():\n    return KEY\n",
        "app/views.py": "def show():\n    from app.record import KEY\n    return KEY\n",
        "app/record.py": "KEY = 'k'\n",
    }
    files.update(changes or {})
    return write_tree(tmp_path, files)


def check(root: Path) -> list[str]:
    return problems(root, DIAGRAM, roots=("app",), top="app")


def test_the_product_keeps_to_its_diagram() -> None:
    assert problems(ROOT, PRODUCT) == []


def test_a_tree_that_keeps_to_the_diagram_passes(tmp_path: Path) -> None:
    assert check(app(tmp_path)) == []


def test_an_import_up_the_diagram_fails_even_inside_a_function(tmp_path: Path) -> None:
    found = check(app(tmp_path, {"app/record.py": "KEY = 'k'\n\n\ndef late():\n"
                                                          "    from app.service import run\n"}))
    assert "app.record (bottom) imports app.service (middle): up the diagram" in found
    assert "app.record (bottom) imports app.service.run (middle): up the diagram" in found
    assert any(line.startswith("import cycle: ") and "app.record" in line for line in found)


def test_an_import_under_type_checking_counts(tmp_path: Path) -> None:
    found = check(app(tmp_path, {"app/views.py": "from typing import TYPE_CHECKING\n\n"
                                                         "if TYPE_CHECKING:\n"
                                                         "    from app.cli import main\n"}))
    assert "app.views (middle) imports app.cli (top): up the diagram" in found


def test_a_package_init_import_counts_and_so_does_the_init_it_runs(tmp_path: Path) -> None:
    """``app/service/__init__.py`` runs whenever ``app.service.run`` is imported."""
    found = check(app(tmp_path, {"app/service/__init__.py": "from app.cli import x\n"}))
    assert "app.service (middle) imports app.cli (top): up the diagram" in found
    assert any(line.startswith("import cycle: ") for line in found)


def test_a_sideways_import_between_parts_of_one_layer_fails(tmp_path: Path) -> None:
    found = check(app(tmp_path, {"app/views.py": "from app.service.run import run\n"}))
    assert found == ["app.views imports app.service: another part of the layer middle",
                     "app.views imports app.service.run: another part of the layer middle"]


def test_a_cycle_within_one_part_fails(tmp_path: Path) -> None:
    found = check(app(tmp_path, {"app/service/run.py": "from app.service.other import y\n",
                                 "app/service/other.py": "from app.service.run import run\n"}))
    assert len(found) == 1 and found[0].startswith("import cycle: ")
    assert set(found[0].removeprefix("import cycle: ").split(" -> ")) == {
        "app.service.run", "app.service.other"}


def test_a_module_outside_the_diagram_and_an_import_of_the_top_fail(tmp_path: Path) -> None:
    found = check(app(tmp_path, {"app/extra.py": "import app\n"}))
    assert found == ["app.extra is in no layer of the diagram", "app.extra imports app, the top"]
