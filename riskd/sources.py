"""Reading the configuration's sources: the YAML file, the `.env` file, the environment.

Why it exists: pydantic-settings reads all three, but a file it cannot use, or a value
it cannot parse, reaches the user as a traceback or a SettingsError naming neither the
file nor the variable; PyYAML keeps the last of two equal keys without a word, and
python-dotenv skips a line it cannot parse. riskd reads the two files itself first, and
explains what pydantic-settings could not parse, so that every such problem is one line
naming its file and line, or its variable. Values are never repeated in a message: they
may be secrets.
"""

from __future__ import annotations

import io
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from dotenv.parser import parse_stream
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsError


class UnusableSource(Exception):
    """A configuration source cannot be used at all; the message is one line per problem."""


def _duplicate_keys(node: yaml.Node, where: tuple[str, ...] = (), seen: set[int] | None = None) -> list[tuple[str, int, int]]:
    """Every key written twice in one mapping of the composed YAML: (dotted key, line, first line).

    PyYAML keeps the last of them without a word, so a second `live: true` lower in the
    file would switch riskd to LIVE unseen. Keys brought in by a `<<` merge may still be
    overridden: that is what merging is for.
    """
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias of a node already walked (or of itself)
        return []
    seen.add(id(node))
    found = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            name = key.value if isinstance(key, yaml.ScalarNode) else f"<{key.id}>"
            line = key.start_mark.line + 1
            if name in first:
                found.append((".".join((*where, name)), line, first[name]))
            first.setdefault(name, line)
            found += _duplicate_keys(value, (*where, name), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found += _duplicate_keys(item, (*where, str(index)), seen)
    return found


def shown(path: Path) -> str:
    """A path for a message: whole unless absurdly long, when its start and end are enough."""
    text = str(path)
    return text if len(text) <= 120 else f"{text[:50]}…{text[-50:]}"


def _read_text(path: Path, what: str, hint: str = "") -> str:
    """The text of a configuration file, or UnusableSource saying why it cannot be used."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise UnusableSource(f"{shown(path)}: {what} not found{hint}") from None
    except IsADirectoryError:
        raise UnusableSource(f"{shown(path)}: is a folder; the {what} must be a file") from None
    except OSError as error:
        raise UnusableSource(f"{shown(path)}: the {what} cannot be read: {error.strerror or error}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnusableSource(f"{shown(path)}: is UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8")
    if b"\0" in data:
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise UnusableSource(f"{shown(path)}: line {line}: a NUL byte: this is a binary file, not a {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UnusableSource(
            f"{shown(path)}: line {line}: byte 0x{data[error.start]:02x} is not UTF-8; save the {what} as UTF-8"
        ) from None


def read_yaml(path: Path) -> dict:
    """The YAML document, checked to be a mapping with no key written twice."""
    text = _read_text(path, "configuration file", " (choose one with --config or RISKD_CONFIG)")
    try:
        duplicates = _duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        document = None if duplicates else yaml.safe_load(text)
    except yaml.reader.ReaderError as error:  # a character YAML does not allow, such as a control character
        line = text[: error.position].count("\n") + 1
        raise UnusableSource(
            f"{shown(path)}: line {line} is not valid YAML: character {error.character:#04x} is not allowed ({error.reason})"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UnusableSource(f"{shown(path)}:{where} is not valid YAML: {getattr(error, 'problem', None) or error}") from None
    if duplicates:
        raise UnusableSource("\n".join(
            f"{shown(path)}: line {line}: {key} is written twice (first at line {first}); "
            "YAML would silently keep the last one, so say it once"
            for key, line, first in duplicates
        ))
    document = {} if document is None else document
    if not isinstance(document, dict):
        raise UnusableSource(f"{shown(path)}: expected a mapping of settings at the top level")
    return document


def read_dotenv(path: Path) -> dict[str, tuple[str, int]]:
    """The `.env` file's variables, each with its line; none when there is no file.

    python-dotenv skips a line it cannot parse with a warning, which would drop a
    setting unnoticed, so such a line is refused here, naming it (not its text, which
    may hold a secret).
    """
    try:
        exists = path.exists()
    except OSError as error:
        raise UnusableSource(f"{shown(path)}: the env file cannot be read: {error.strerror or error}") from None
    if not exists:
        return {}
    found = {}
    for binding in parse_stream(io.StringIO(_read_text(path, "env file"))):
        if binding.error:
            raise UnusableSource(f"{shown(path)}: line {binding.original.line}: cannot be parsed; write NAME=value")
        if binding.key is not None:
            found[binding.key] = (binding.value or "", binding.original.line)
    return found


def unparsed_environment(
    error: SettingsError, model: type[BaseSettings], env_file: Path | None, dotenv: dict[str, tuple[str, int]]
) -> list[str]:
    """Which variable holds a value pydantic-settings could not parse as JSON, and why.

    pydantic-settings names only the setting and the source; the person needs the
    variable (and for `.env`, the line). Values are never repeated: they may be secrets.
    """
    problems = []
    written = [(name, value, "") for name, value in os.environ.items()]
    if env_file is not None:
        written += [(name, value, f"{shown(env_file)}: line {line}: ") for name, (value, line) in dotenv.items()]
    for name, value, where in written:
        prefix = model.model_config["env_prefix"]
        if not name.upper().startswith(prefix):
            continue
        parts = name[len(prefix):].lower().split(model.model_config["env_nested_delimiter"])
        if not _structured(model, parts):
            continue
        try:
            json.loads(value)
        except json.JSONDecodeError as reason:
            problems.append(
                f"{where}{name}: not valid JSON ({reason.msg} at character {reason.pos + 1}); write it like {_example(model, parts)}"
            )
    return problems or [f"environment: {error}"]


def set_by(loc: tuple, model: type[BaseSettings], env_file: Path | None, dotenv: dict[str, tuple[str, int]]) -> str:
    """Where a refused value came from when it was not the YAML file: the variable, and its line in `.env`."""
    prefix, delimiter = model.model_config["env_prefix"], model.model_config["env_nested_delimiter"]
    parts = [str(part) for part in loc]
    candidates = {(prefix + delimiter.join(parts[:length])).upper() for length in range(1, len(parts) + 1)}
    for name in os.environ:
        if name.upper() in candidates:
            return f" (set by {name})"
    for name, (_, line) in dotenv.items():
        if name.upper() in candidates and env_file is not None:
            return f" (set by {name}, {shown(env_file)} line {line})"
    return ""


def _annotation(model: type[BaseModel], parts: list[str]) -> Any:
    """The type a `RISKD_A__B__C` variable sets, or None where the settings have no such place."""
    annotation: Any = model
    for part in parts:
        annotation = _unoptional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            annotation = field.annotation if field else None
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return None
    return _unoptional(annotation)


def _unoptional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
        return arguments[0] if len(arguments) == 1 else annotation
    return annotation


def _structured(model: type[BaseModel], parts: list[str]) -> bool:
    """Whether pydantic-settings reads this variable as JSON (a mapping, a list, a model)."""
    annotation = _annotation(model, parts)
    origin = typing.get_origin(annotation)
    return origin in (dict, list, tuple, set) or (isinstance(annotation, type) and issubclass(annotation, (BaseModel, dict, list, tuple)))


def _example(model: type[BaseModel], parts: list[str]) -> str:
    """What a JSON value for this variable looks like."""
    annotation = _annotation(model, parts)
    if typing.get_origin(annotation) in (list, tuple, set):
        return "[123456789, -1001234567890]" if int in typing.get_args(annotation) else '["BNB", "ETH"]'
    return '{"key": "value"}, or set one field at a time with __ (RISKD_ACCOUNTS__MAIN__EXCHANGE=binance)'
