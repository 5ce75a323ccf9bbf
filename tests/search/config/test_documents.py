"""Hostile files: not UTF-8, binary, deeply nested, alias bombs, duplicate keys, too large:
each one bounded line, nothing else raised."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from search.config import (
    load_config,
)
from search.errors import UserError
from tests.search.config.conftest import (
    error_of,
    load_error,
    raw,
    write_file,
)


@pytest.mark.parametrize(
    "content",
    [
        "study: caf\xe9\n".encode("latin-1"),
        bytes(range(256)) * 4,
        "study: x\n".encode("utf-16"),
    ],
    ids=["latin-1", "all-bytes", "utf-16"],
)
def test_a_file_that_is_not_utf8_text_is_one_line(tmp_path: Path, content: bytes) -> None:
    message = load_error(write_file(tmp_path, content))
    assert "not UTF-8 text" in message and "c.yaml" in message


def test_a_binary_file_is_one_line(tmp_path: Path) -> None:
    import sys

    load_error(write_file(tmp_path, Path(sys.executable).read_bytes()[:100_000]))
    message = load_error(write_file(tmp_path, b"\x7fELF\x02\x01\x01" + bytes(200), "elf.yaml"))
    assert "not allowed" in message


def test_random_bytes_are_one_line(tmp_path: Path) -> None:
    import random

    generator = random.Random(7)
    for index in range(20):
        content = bytes(generator.randrange(256) for _ in range(generator.randrange(1, 400)))
        load_error(write_file(tmp_path, content, f"r{index}.yaml"))


@pytest.mark.parametrize(
    "content",
    ["[" * 100_000 + "]" * 100_000, "\n".join(" " * i + "a:" for i in range(500)) + " 1",
     "- " * 100_000 + "1",
     "{a: " * 40_000 + "1" + "}" * 40_000],
    ids=["flow-lists", "mappings", "block-lists", "flow-mappings"],
)
def test_very_deep_nesting_is_one_line(tmp_path: Path, content: str) -> None:
    assert "nested more than" in load_error(write_file(tmp_path, content))


def test_control_characters_in_the_file_are_one_line(tmp_path: Path) -> None:
    message = load_error(write_file(tmp_path, "study: a\x00b\n"))
    assert "not allowed" in message


def _bomb(levels: int = 9, width: int = 9) -> str:
    """The billion laughs as a mapping of anchors: each ``width`` aliases of the one before,
    ``l{levels - 1}`` standing for ``width ** levels`` strings."""
    items = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        items.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "{" + ", ".join(items) + "}"


@pytest.mark.parametrize("key", ["study", "blocks"])
def test_an_alias_bomb_is_refused_quickly_with_a_short_message(
    tmp_path: Path, key: str
) -> None:
    import time

    # The anchors sit in `model`, a section checked after the key that uses the bomb.
    document = (f"model: {_bomb()}\n"
                f"study: {'*l8' if key == 'study' else 'x'}\n"
                "dataset: {name: fashion-mnist}\n"
                f"space: {{blocks: {'*l8' if key == 'blocks' else '[1]'}, filters: [2], "
                "optimizer: [adam], lr_range: [[1.0e-4, 1.0e-2]]}\n")
    started = time.perf_counter()
    message = load_error(write_file(tmp_path, document))
    assert time.perf_counter() - started < 5
    assert "aliases" in message and "values" in message


def test_small_anchors_and_aliases_still_work(tmp_path: Path) -> None:
    path = write_file(tmp_path, yaml.safe_dump(raw()).replace(
        "lr_range:", "lr_range: &ranges").replace("study: unit", "study: unit"))
    assert load_config(path).space.lr_range == ((1e-4, 1e-2), (1e-2, 1e-1))
    shared = write_file(tmp_path, "x: &two [2, 3]\n", "a.yaml")
    with pytest.raises(UserError, match="'x' is unknown"):
        load_config(shared)


def test_a_value_quoted_in_a_message_is_cut_to_80_characters() -> None:
    message = error_of(raw(study=["x" * 100_000] * 1000))
    assert len(message) < 200 and "..." in message
    message = error_of(raw(space__blocks={"k" * 50_000: 1}))
    assert len(message) < 200
    message = error_of(raw(**{"space__" + "y" * 10_000: 1}))
    assert len(message) < 400 and "is unknown" in message


def test_a_file_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    path = write_file(tmp_path, "study: x\n" + "# padding\n" * 100_000)
    assert "too large" in load_error(path)


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ("study: a\nstudy: b\n", "study"),
        ("study: a\nspace: {blocks: [1]}\nspace: {blocks: [2]}\n", "space"),
        ("study: a\nspace:\n  blocks: [1]\n  blocks: [2]\n", "blocks"),
        ("study: a\n1: x\n0x1: y\n", "1"),
    ],
)
def test_a_key_given_twice_is_refused(tmp_path: Path, document: str, key: str) -> None:
    message = load_error(write_file(tmp_path, document))
    assert f"key {key!r} appears twice" in message.replace("key 1 ", "key '1' ")
    assert "line" in message


def test_yaml_values_python_cannot_build_are_one_line(tmp_path: Path) -> None:
    assert "as int" in load_error(write_file(tmp_path, "seed: " + "9" * 5000 + "\n"))
    assert "as timestamp" in load_error(write_file(tmp_path, "study: 2020-13-45\n"))
