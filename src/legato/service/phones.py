"""The virtual phones of `legato serve --driver sim`: `--phones FILE` or a friendly default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from legato.core.policy.permissions import InvalidNumber, normalize_number
from legato.sim import PhoneBehaviour

#: Without --phones every phone answers after 3 s and hangs up after 20 s, so a first
#: click-to-call placed by a new user connects and ends by itself.
DEFAULT_BEHAVIOUR = PhoneBehaviour(answer_after=3, hangup_after=20)


class PhonesError(ValueError):
    """The phones file is unreadable or invalid; the message names the key and the rule."""


def load_phones(path: Path | None) -> tuple[dict[str, PhoneBehaviour], PhoneBehaviour | None]:
    """The phones map and the default behaviour for numbers not in it.

    The file is either the `phones` map of the scenario format (numbers to behaviours,
    plus an optional `default`), or a scenario-like document with a `phones:` key.
    """
    if path is None:
        return {}, DEFAULT_BEHAVIOUR
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PhonesError(f"{path}: {exc}") from exc
    if isinstance(doc, dict) and isinstance(doc.get("phones"), dict):
        default = doc.get("default", doc["phones"].get("default"))
        entries: dict[str, Any] = {k: v for k, v in doc["phones"].items() if k != "default"}
    elif isinstance(doc, dict):
        default = doc.get("default")
        entries = {k: v for k, v in doc.items() if k != "default"}
    else:
        raise PhonesError(f"{path}: expected a mapping of numbers to phone behaviours")
    phones: dict[str, PhoneBehaviour] = {}
    for raw, behaviour in entries.items():
        try:
            number = normalize_number(str(raw))
        except InvalidNumber as exc:
            raise PhonesError(f"{path}: phones.{raw}: {exc}") from exc
        phones[number] = _behaviour(path, f"phones.{raw}", behaviour)
    return phones, None if default is None else _behaviour(path, "default", default)


def _behaviour(path: Path, key: str, value: Any) -> PhoneBehaviour:
    try:
        return PhoneBehaviour.model_validate(value or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in (key, *first["loc"]))
        raise PhonesError(f"{path}: {where}: {first['msg']} ({first['type']})") from exc
