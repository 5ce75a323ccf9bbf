"""The new commands' arguments: their choices are the modules' own (the parser repeats them
so that parsing imports no torch), and their help lists them."""

from __future__ import annotations

import pytest

from search.cli.parser import (
    PORTABLE_FORMATS,
    PREDICT_FORMATS,
    PREDICT_RUNTIMES,
    build_parser,
)


def test_the_choices_are_the_modules_own() -> None:
    from search.jobs.predict import FORMATS, RUNTIMES
    from search.trained.portable import FORMATS as PORTABLE

    assert PORTABLE_FORMATS == PORTABLE
    assert PREDICT_FORMATS == FORMATS and PREDICT_RUNTIMES == RUNTIMES


def test_predict_package_and_train_options_parse() -> None:
    parser = build_parser()
    args = parser.parse_args(["predict", "--model", "m", "a.png", "b.png", "--top", "3",
                              "--format", "csv", "--runtime", "onnx", "--seed", "4"])
    assert (args.images, args.top, args.format, args.runtime, args.seed) == (
        ["a.png", "b.png"], 3, "csv", "onnx", 4)
    args = parser.parse_args(["package", "--model", "m"])
    assert args.format == "onnx" and args.seed is None
    assert parser.parse_args(["train", "--from", "x"]).portable == "onnx"
    assert parser.parse_args(["report", "--study", "s", "--models", "a", "--models",
                              "b"]).models == ["a", "b"]
    for bad in (["predict", "--model", "m", "--top", "0"],
                ["package", "--model", "m", "--format", "tflite"],
                ["train", "--from", "x", "--portable", "pickle"]):
        with pytest.raises(SystemExit) as caught:
            parser.parse_args(bad)
        assert caught.value.code == 2
