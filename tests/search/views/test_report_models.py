"""``cnnsearch report --models DIR``: the report lists the study's retrained designs with
their test accuracy and a working relative link to each model card; folders of other
studies or damaged ones are left out, with a note; a missing folder is one line, exit 2."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from tests.conftest import needs_fashion_mnist, run_cli

pytestmark = needs_fashion_mnist


def test_the_report_links_the_model_cards(tiny_model_folder: dict, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model_folder["folder"], models / "best")
    shutil.copytree(tiny_model_folder["folder"], models / "elsewhere")
    manifest = json.loads((models / "elsewhere" / "model.json").read_text())
    manifest["provenance"]["study"] = "another-study"
    (models / "elsewhere" / "model.json").write_text(json.dumps(manifest))
    (models / "broken").mkdir()
    (models / "broken" / "model.json").write_text("{")
    report = tmp_path / "out" / "report.html"
    report.parent.mkdir()
    result = run_cli("report", "--study", "visual", "--storage",
                     tiny_model_folder["study"]["url"], "-o", str(report), "--models",
                     str(models))
    assert result.returncode == 0, result.stderr
    page = report.read_text()
    section = page[page.index('<section id="models">'):]
    section = section[:section.index("</section>")]
    [href] = re.findall(r'class="model-card" href="([^"]+)"', section)
    assert href == "../models/best/model_card.html"
    assert (report.parent / href).resolve() == (models / "best" / "model_card.html").resolve()
    card = tiny_model_folder["card"]
    assert f"{card['accuracy']:.4f} [{card['interval']['low']:.4f}" in section
    trial = tiny_model_folder["manifest"]["provenance"]["trial"]
    assert f'data-trial="{trial}"' in section
    assert "a design of study &#x27;another-study&#x27;" in section
    assert "broken/model.json is not valid JSON" in section
    assert '<a href="#models">retrained models</a>' in page


def test_without_models_no_section_and_a_missing_folder_is_one_line(
    tiny_model_folder: dict, tmp_path: Path,
) -> None:
    url = tiny_model_folder["study"]["url"]
    report = tmp_path / "report.html"
    assert run_cli("report", "--study", "visual", "--storage", url, "-o",
                   str(report)).returncode == 0
    assert 'id="models"' not in report.read_text()
    result = run_cli("report", "--study", "visual", "--storage", url, "-o",
                     str(tmp_path / "r2.html"), "--models", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "--models" in result.stderr and not (tmp_path / "r2.html").exists()
