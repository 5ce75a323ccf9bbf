"""What the config tests share: the shipped configs, a minimal config and its variants, the
message a bad one gives."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from search.config import (
    load_config,
    parse_config,
)
from search.errors import UserError

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


SHIPPED = sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.endswith(".export.yaml"))


"""The shipped search configs (``*.export.yaml`` are exports, for ``cnnsearch train``)."""


MINIMAL: dict[str, Any] = {
    "study": "unit",
    "dataset": {"name": "fashion-mnist"},
    "space": {
        "blocks": [2, 3],
        "filters": [4, 8],
        "optimizer": ["adam", "sgd"],
        "lr_range": [[1.0e-4, 1.0e-2], [1.0e-2, 1.0e-1]],
    },
}


def raw(**changes: Any) -> dict[str, Any]:
    """A deep copy of MINIMAL with ``section__key=value`` (or ``key=value``) changes."""
    values = copy.deepcopy(MINIMAL)
    for name, value in changes.items():
        section, _, key = name.partition("__")
        if key:
            values.setdefault(section, {})[key] = value
        else:
            values[section] = value
    return values


def error_of(values: Any) -> str:
    with pytest.raises(UserError) as raised:
        parse_config(values)
    return str(raised.value)


def load_error(path: Path) -> str:
    """The message of the UserError ``load_config`` raises (it must raise one, nothing else)."""
    with pytest.raises(UserError) as raised:
        load_config(path)
    message = str(raised.value)
    assert "\n" not in message and len(message) < 500, message[:1000]
    return message


def write_file(tmp_path: Path, content: str | bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path
