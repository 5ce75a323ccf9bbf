"""Reading a YAML (or JSON) file a person wrote or edited: bounded, text, unambiguous.

Search configs and ``cnnsearch export`` files are read by the same rules, so a file that is
not what it should be ends as a one-line ``UserError``, never as a traceback, a hung process
or a machine out of memory:

* the file is at most ``max_bytes`` long and is UTF-8 text (a leading BOM is fine);
* nesting is at most ``MAX_DEPTH`` levels deep;
* anchors and aliases (``&a`` / ``*a``) are allowed, but the document with every alias
  expanded has at most ``max_nodes`` nodes, so a "billion laughs" file is refused while
  it is read, before any value is built;
* a key given twice in one mapping is an error (YAML forbids it; PyYAML would keep the last);
* ``1e-4`` is a float, as everyone writes learning rates (YAML 1.1 wants ``1.0e-4``).

``short_repr`` is how every message quotes a value: at most about 80 characters.
"""

from __future__ import annotations

import re
import reprlib
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from search.errors import UserError

MAX_DEPTH = 32
"""Nesting levels of a document (a config needs 4, an export 6)."""
CONFIG_MAX_BYTES = 256 * 2**10
CONFIG_MAX_NODES = 20_000
"""A config is a few dozen values; the shipped ones are under 2 KB."""
EXPORT_MAX_BYTES = 4 * 2**20
EXPORT_MAX_NODES = 100_000
"""An export of the ``cnnsearch export --top`` maximum (1000 designs) is ~1.2 MB, 50,000 nodes.
Reading 4 MB of YAML takes PyYAML a few seconds."""

_QUOTE = reprlib.Repr()
_QUOTE.maxlevel = 3
_QUOTE.maxstring = 60
_QUOTE.maxother = 60
_QUOTE.maxlong = 40
for _attribute in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset"):
    setattr(_QUOTE, _attribute, 6)


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to at most ``limit`` characters (``...`` marks the cut), computed
    without ever building the full repr of a huge or deeply nested value."""
    try:
        text = _QUOTE.repr(value)
    except (RecursionError, ValueError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_text(text: str, limit: int = 200) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    line = " ".join(text[: limit * 4].split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class DocumentLimitError(yaml.YAMLError):
    """The document is too deep or, with its aliases expanded, too large."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class SafeYamlLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with the limits of the module docstring. One instance per
    document (``load_yaml``); ``max_nodes`` is set there."""

    max_nodes = CONFIG_MAX_NODES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._total = 0
        """Nodes composed so far, each alias counted as the size of what it stands for."""
        self._expanded: dict[int, tuple[int, int]] = {}
        """id(node) -> (nodes, depth) of the node with its aliases expanded."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise DocumentLimitError(f"nested more than {MAX_DEPTH} levels deep",
                                         self.peek_event().start_mark)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if id(node) in self._expanded:  # an alias: the anchored node, already measured
            self._total += self._expanded[id(node)][0]
        else:
            self._total += 1
            self._measure(node)
        if self._total > self.max_nodes:
            raise DocumentLimitError(
                f"more than {self.max_nodes} values once its aliases (*name) are expanded",
                node.start_mark)
        return node

    def _measure(self, node: Node) -> None:
        """Size and depth of ``node`` expanded; its children (aliases included: the composer
        returns the anchored node itself) were measured when they were composed."""
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [item for pair in node.value for item in pair]
        else:
            children = []
        sizes = [self._expanded[id(child)] for child in children]
        nodes = 1 + sum(size for size, _ in sizes)
        depth = 1 + max((level for _, level in sizes), default=0)
        if depth > MAX_DEPTH:
            raise DocumentLimitError(
                f"nested more than {MAX_DEPTH} levels deep once its aliases are expanded",
                node.start_mark)
        self._expanded[id(node)] = (nodes, depth)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as error:  # e.g. 2020-13-45, a 5000-digit int
            kind = node.tag.rsplit(":", 1)[-1]
            reason = short_text(str(error), 60)
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {short_repr(node.value)} as {kind} ({reason})",
                node.start_mark) from None

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: the base class reports it
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None,
                        f"key {short_repr(key)} appears twice in one mapping (first on line "
                        f"{first.line + 1}); keep one", key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


SafeYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.VERBOSE),
    list("-+0123456789."),
)


def load_yaml(text: str, *, max_nodes: int = CONFIG_MAX_NODES) -> object:
    """Parse ``text`` with the limits above; ``yaml.YAMLError`` (or a subclass) on failure."""
    loader = SafeYamlLoader(text)
    loader.max_nodes = max_nodes
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(error: yaml.YAMLError) -> str:
    """`` at line L, column C: problem`` (or ``: problem``) of a YAML error, on one line."""
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    if isinstance(error, yaml.reader.ReaderError):
        where, problem = "", f"character #x{error.character:04x} is not allowed in YAML"
    else:
        problem = getattr(error, "problem", None) or "invalid YAML"
    return f"{where}: {short_text(str(problem))}"


def read_text(path: Path, what: str, max_bytes: int) -> str:
    """The file as text; ``UserError`` naming ``what`` (``config``, ``export``) when it cannot
    be read, is longer than ``max_bytes`` or is not UTF-8."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise UserError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise UserError(f"{what} {path} is too large: more than {max_bytes} bytes "
                        f"(a {what} is a few kilobytes of YAML)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(
            f"{what} {path} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8"
        ) from None


def read_yaml_file(path: str | Path, what: str, *, max_bytes: int = CONFIG_MAX_BYTES,
                   max_nodes: int = CONFIG_MAX_NODES) -> object:
    """Read, decode and parse a YAML/JSON file under the limits of this module; every failure
    is a one-line ``UserError`` (``malformed YAML in PATH at line L, column C: problem``)."""
    path = Path(path)
    text = read_text(path, what, max_bytes)
    try:
        return load_yaml(text, max_nodes=max_nodes)
    except yaml.YAMLError as error:
        raise UserError(f"malformed YAML in {path}{yaml_problem(error)}") from None
    except RecursionError:  # a limit above should come first; never a traceback
        raise UserError(f"malformed YAML in {path}: nested too deeply") from None
