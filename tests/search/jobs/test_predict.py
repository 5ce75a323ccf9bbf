"""``cnnsearch predict`` end to end, in real processes, on the model a real tiny search and
``train`` made, and on real PNG/JPEG files: labels by name, the labelled test split's
accuracy equal, image for image, to the test accuracy ``train`` reported, the ONNX runtime,
and one line with exit code 2 for each bad input."""

from __future__ import annotations

import csv
import io
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from models import build_cnn
from search.jobs.predict import folder_images
from search.method.trial_config import TrialConfig
from search.trained.inference import logits_of
from search.trained.manifest import read_manifest
from tests.conftest import needs_fashion_mnist, run_cli

pytestmark = needs_fashion_mnist


def twenty_pngs(fashion: dict, folder: Path) -> list[Path]:
    """The first 20 test images as PNGs named by index only (no class in the path)."""
    folder.mkdir()
    paths = []
    for index in range(20):
        path = folder / f"test-{index:02d}.png"
        Image.fromarray(fashion["images"][index, 0].numpy()).save(path)
        paths.append(path)
    return paths


def torch_top1(model_info: dict, images: torch.Tensor) -> list[int]:
    """The exported design rebuilt here from the export and the safetensors file, apart from
    predict's own loader."""
    from safetensors.torch import load_file

    summary = model_info["summary"]
    config = TrialConfig.from_dict(summary["config"])
    model = build_cnn(config.architecture, (1, 28, 28), 10, seed=0)
    model.load_state_dict(load_file(model_info["folder"] / summary["runs"][0]["weights"]))
    logits = logits_of(model, images, batch_size=256, device=torch.device("cpu"))
    return logits.argmax(1).tolist()


def test_predict_twenty_test_images_by_name(tiny_model_folder: dict, fashion_test_folder: dict,
                                            tmp_path: Path) -> None:
    paths = twenty_pngs(fashion_test_folder, tmp_path / "images")
    result = run_cli("predict", "--model", str(tiny_model_folder["folder"]),
                     *map(str, paths))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["image", "#1"]
    assert lines[-1].startswith("20 image(s) (")
    expected = torch_top1(tiny_model_folder, fashion_test_folder["images"][:20])
    classes = fashion_test_folder["classes"]
    for path, line, label in zip(paths, lines[1:-1], expected):
        assert line.startswith(str(path))
        assert f"  {classes[label]} (" in line  # the class by name, and the right one


def test_predict_folder_accuracy_equals_trains_test_accuracy(
    tiny_model_folder: dict, fashion_test_folder: dict,
) -> None:
    """The whole test split as PNGs in class folders: the accuracy predict reports is the
    one train printed for those 10,000 images, to the image."""
    result = run_cli("predict", "--model", str(tiny_model_folder["folder"]), "--folder",
                     str(fashion_test_folder["root"]), "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    [run] = tiny_model_folder["summary"]["runs"]
    assert document["labelled"] == 10000
    assert document["accuracy"] == run["test_accuracy"]
    assert document["correct"] == round(run["test_accuracy"] * 10000)
    assert f"test acc {run['test_accuracy']:.4f}" in tiny_model_folder["stdout"]
    # every image's label is its folder's
    classes = fashion_test_folder["classes"]
    labels = fashion_test_folder["labels"]
    for item in document["images"][:50]:
        index = int(Path(item["path"]).stem)
        assert item["label"] == classes[labels[index]]
        assert item["correct"] == (item["predictions"][0]["class"] == item["label"])


def test_the_model_card_counts_what_predict_predicts(
    tiny_model_folder: dict, fashion_test_folder: dict,
) -> None:
    """model_card.json's confusion matrix, per-class accuracy and confident mistakes are
    those of predict's own predictions on the same images."""
    result = run_cli("predict", "--model", str(tiny_model_folder["folder"]), "--folder",
                     str(fashion_test_folder["root"]), "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    card = tiny_model_folder["card"]
    classes = list(fashion_test_folder["classes"])
    confusion = [[0] * 10 for _ in range(10)]
    by_index = {}
    for item in document["images"]:
        confusion[classes.index(item["label"])][item["predictions"][0]["index"]] += 1
        by_index[int(Path(item["path"]).stem)] = item
    assert card["confusion"] == confusion
    assert card["evaluated_on"] == "test" and card["images"] == 10000
    assert card["correct"] == document["correct"] and card["accuracy"] == document["accuracy"]
    for index, row in enumerate(card["per_class"]):
        assert row["class"] == classes[index] and row["images"] == 1000
        assert row["correct"] == confusion[index][index]
    from search.trained.card_data import wilson_interval

    assert (card["interval"]["low"], card["interval"]["high"]) == wilson_interval(
        document["correct"], 10000)
    assert card["confidently_wrong"], "a one-epoch model gets some images wrong"
    confidences = [entry["confidence"] for entry in card["confidently_wrong"]]
    assert confidences == sorted(confidences, reverse=True)
    wrong = [item for item in document["images"] if not item["correct"]]
    assert confidences[0] == pytest.approx(max(i["predictions"][0]["probability"]
                                               for i in wrong), abs=1e-12)
    for entry in card["confidently_wrong"]:
        item = by_index[entry["index"]]
        assert item["predictions"][0]["index"] == entry["predicted"] != entry["label"]
        assert item["predictions"][0]["probability"] == pytest.approx(entry["confidence"],
                                                                      abs=1e-12)


def test_onnx_runtime_predicts_the_same(tiny_model_folder: dict, fashion_test_folder: dict,
                                        tmp_path: Path) -> None:
    paths = twenty_pngs(fashion_test_folder, tmp_path / "images")
    outputs = []
    for runtime in ("torch", "onnx"):
        result = run_cli("predict", "--model", str(tiny_model_folder["folder"]), "--top", "3",
                         "--format", "csv", "--runtime", runtime, *map(str, paths))
        assert result.returncode == 0, result.stderr
        outputs.append(list(csv.DictReader(io.StringIO(result.stdout))))
    torch_rows, onnx_rows = outputs
    assert len(torch_rows) == 20 and list(torch_rows[0])[:3] == ["path", "class_1",
                                                                 "probability_1"]
    for mine, theirs in zip(torch_rows, onnx_rows):
        assert [mine[f"class_{k}"] for k in (1, 2, 3)] == [theirs[f"class_{k}"]
                                                           for k in (1, 2, 3)]
        assert float(mine["probability_1"]) == pytest.approx(float(theirs["probability_1"]),
                                                             abs=1e-5)
        assert mine["label"] == "" and mine["correct"] == ""


def test_predict_reads_jpeg_and_rgb_and_any_size(tiny_model_folder: dict,
                                                fashion_test_folder: dict,
                                                tmp_path: Path) -> None:
    """A colour JPEG of another size is read as the grey 28x28 the model takes."""
    pixels = fashion_test_folder["images"][0, 0].numpy()
    path = tmp_path / "shoe.jpg"
    Image.fromarray(pixels).convert("RGB").resize((56, 56)).save(path, quality=95)
    result = run_cli("predict", "--model", str(tiny_model_folder["folder"]), str(path),
                     "--format", "json", "--top", "10")
    assert result.returncode == 0, result.stderr
    [item] = json.loads(result.stdout)["images"]
    assert sorted(p["class"] for p in item["predictions"]) == sorted(
        fashion_test_folder["classes"])
    assert sum(p["probability"] for p in item["predictions"]) == pytest.approx(1.0)


def test_package_makes_every_portable_format(tiny_model_folder: dict, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    """ONNX again through a real process; the torch formats through the CLI's entry point in
    this process."""
    from search.cli import main

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_folder["folder"], folder)
    for fmt, suffix in (("torchscript", ".torchscript.pt"), ("torch-export", ".pt2"),
                        ("onnx", ".onnx")):
        if fmt == "onnx":
            result = run_cli("package", "--model", str(folder), "--format", fmt)
            assert result.returncode == 0, result.stderr
            printed = result.stdout
        else:
            assert main(["package", "--model", str(folder), "--format", fmt]) == 0
            printed = capsys.readouterr().out
        assert "largest logit difference" in printed
        manifest = read_manifest(folder)
        entry = manifest.portable_file(fmt, manifest.selected_seed)
        assert entry is not None and entry["file"].endswith(suffix)
        assert (folder / entry["file"]).is_file() and (folder / entry["json"]).is_file()
    assert len(read_manifest(folder).portable) == 3


def test_an_unlabelled_folder_and_a_labelled_one(tiny_model_folder: dict,
                                                 tmp_path: Path) -> None:
    manifest = read_manifest(tiny_model_folder["folder"])
    (tmp_path / "photos" / "2024").mkdir(parents=True)
    Image.new("L", (28, 28), 9).save(tmp_path / "photos" / "2024" / "a.png")
    Image.new("L", (28, 28), 200).save(tmp_path / "photos" / "b.png")
    images = folder_images(tmp_path / "photos", manifest)
    assert [(p.path.name, p.label) for p in images] == [("a.png", None), ("b.png", None)]
    for name in ("T-shirt_top", "Bag"):  # the folder-safe spelling, and a plain name
        (tmp_path / "labelled" / name).mkdir(parents=True)
        Image.new("L", (28, 28), 9).save(tmp_path / "labelled" / name / "x.png")
    labelled = folder_images(tmp_path / "labelled", manifest)
    assert sorted(p.label for p in labelled) == [0, 8]


def _write_other_shape(folder: Path) -> None:
    """The weights of the same design built for CIFAR's 3x32x32 images, under this model's
    weights file name (and its recorded checksum left as it was)."""
    manifest = read_manifest(folder)
    run = manifest.run()
    model = build_cnn(manifest.design.architecture, (3, 32, 32), 10, seed=0)
    save_file(model.state_dict(), str(folder / run.weights))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def _weights(folder: Path) -> Path:
    return next(folder.glob("*.safetensors"))


def _onnx(folder: Path) -> Path:
    return next(folder.glob("*.onnx"))


BAD_MODEL_FOLDERS = {
    "corrupt safetensors": (lambda f: _truncate(_weights(f)), [],
                            "is not a readable safetensors file"),
    "changed weights": (lambda f: _flip_a_byte(_weights(f)), [], "has changed since"),
    "another dataset's shape": (_write_other_shape, [], "another dataset's shape"),
    "corrupt onnx": (lambda f: _truncate(_onnx(f)), ["--runtime", "onnx"],
                     "is not a readable ONNX model"),
    "missing onnx": (lambda f: _onnx(f).unlink(), ["--runtime", "onnx"], "is missing"),
    "damaged model.json": (lambda f: (f / "model.json").write_text("{not json"), [],
                           "model.json is not valid JSON"),
    "a manifest of something else": (lambda f: (f / "model.json").write_text('{"a": 1}'), [],
                                     "is not a cnnsearch model manifest"),
    "an older train's folder": (
        lambda f: ((f / "model.json").unlink(), (f / "B2-seed0.pt").write_bytes(b"x")), [],
        "older cnnsearch train"),
}


def _bad_inputs(tmp: Path, model: Path, fashion: dict) -> dict[str, tuple[list[str], str]]:
    (tmp / "not-an-image.png").write_text("hello, I am text")
    Image.new("L", (1, 1), 128).save(tmp / "one-pixel.png")
    (tmp / "mixed" / "Bag").mkdir(parents=True)
    (tmp / "mixed" / "Hats").mkdir()
    Image.new("L", (28, 28)).save(tmp / "mixed" / "Bag" / "a.png")
    (tmp / "empty").mkdir()
    image = str(fashion["paths"][0])
    return {
        "missing model folder": (["--model", str(tmp / "nowhere"), image], "does not exist"),
        "a folder without model.json": (["--model", str(tmp), image], "holds no model.json"),
        "a non-image": (["--model", str(model), str(tmp / "not-an-image.png")],
                        "cannot read image"),
        "a 1x1 image": (["--model", str(model), str(tmp / "one-pixel.png")],
                        "is 1x1 pixels: too small"),
        "a missing image": (["--model", str(model), str(tmp / "missing.png")],
                            "does not exist"),
        "a folder as an image": (["--model", str(model), str(tmp / "empty")],
                                 "give it with --folder"),
        "images and --folder": (["--model", str(model), image, "--folder", str(tmp)],
                                "one of the two"),
        "neither": (["--model", str(model)], "one of the two"),
        "an unknown class folder": (["--model", str(model), "--folder", str(tmp / "mixed")],
                                    "not classes of"),
        "an empty folder": (["--model", str(model), "--folder", str(tmp / "empty")],
                            "holds no images"),
        "--top beyond the classes": (["--model", str(model), "--top", "11", image],
                                     "has 10 classes"),
        "an unknown seed": (["--model", str(model), "--seed", "12345", image],
                            "no run with seed 12345"),
        "onnx on a GPU": (["--model", str(model), "--runtime", "onnx", "--device", "cuda",
                           image], "runs on the CPU"),
    }


def _damaged(template: Path, folder: Path, case: str) -> list[str]:
    """A copy of the model folder damaged as ``BAD_MODEL_FOLDERS[case]`` says; its flags."""
    shutil.copytree(template, folder)
    damage, flags, _ = BAD_MODEL_FOLDERS[case]
    damage(folder)
    return ["--model", str(folder), *flags]


def _all_cases(tmp: Path, model: Path, fashion: dict) -> dict[str, tuple[list[str], str]]:
    """Every bad input: predict's arguments and a part of the message expected."""
    cases = _bad_inputs(tmp, model, fashion)
    image = str(fashion["paths"][0])
    for index, (case, (_, _, message)) in enumerate(sorted(BAD_MODEL_FOLDERS.items())):
        cases[case] = ([*_damaged(model, tmp / f"model-{index}", case), image], message)
    return cases


def test_every_bad_input_is_one_line_exit_2(tiny_model_folder: dict, fashion_test_folder: dict,
                                            tmp_path: Path, capsys: pytest.CaptureFixture
                                            ) -> None:
    """Through the CLI's entry point in this process (the same code as the command, without
    a process start per case): each case prints one line and returns 2, nothing on stdout."""
    from search.cli import main

    failures = []
    for case, (args, message) in _all_cases(tmp_path, tiny_model_folder["folder"],
                                            fashion_test_folder).items():
        code = main(["predict", *args])
        out, err = capsys.readouterr()
        if not (code == 2 and err.count("\n") == 1 and err.startswith("cnnsearch: error: ")
                and message in err and out == ""):
            failures.append((case, code, err[-300:]))
    assert not failures, failures


ISSUE_CASES = ("missing model folder", "another dataset's shape", "a non-image", "a 1x1 image",
               "corrupt onnx")
"""The bad inputs the issue names: run as real processes too."""


def test_the_named_bad_inputs_in_real_processes(tiny_model_folder: dict,
                                                fashion_test_folder: dict,
                                                tmp_path: Path) -> None:
    cases = _all_cases(tmp_path, tiny_model_folder["folder"], fashion_test_folder)
    with ThreadPoolExecutor(max_workers=2) as pool:  # two at a time: the machine's cores
        results = dict(zip(ISSUE_CASES, pool.map(lambda case: run_cli("predict",
                                                                      *cases[case][0]),
                                                 ISSUE_CASES)))
    failures = []
    for case, result in results.items():
        if not (result.returncode == 2 and result.stderr.count("\n") == 1
                and cases[case][1] in result.stderr and "Traceback" not in result.stderr
                and result.stdout == ""):
            failures.append((case, result.returncode, result.stderr[-300:]))
    assert not failures, failures


def test_package_of_a_bad_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("package", "--model", str(tmp_path / "nowhere"), "--format", "onnx")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "does not exist" in result.stderr
