"""Gettext catalogs without GNU gettext or Babel: the ``.po`` reader and ``.mo`` writer the layer's build runs.

At run time the bridge reads its translations with the standard library's ``gettext``, which reads ``.mo`` files
only. Python ships its ``msgfmt.py`` in source trees only, and ``sam build`` runs the layer's Makefile with a bare
``python3.13`` (no Babel), so the build compiles with this module::

    python3.13 -m sso_bridge.catalogs SOURCE_DIR TARGET_DIR

writes ``TARGET_DIR/<lang>/LC_MESSAGES/<domain>.mo`` for each ``SOURCE_DIR/<lang>/LC_MESSAGES/<domain>.po``.
In the source tree (development, tests, ``make run``) there is no ``.mo``: ``sso_bridge.i18n`` compiles the
``.po`` in memory with the same code, once per process and language, so what the tests read is what ships.

The subset of the format read is what Babel and GNU gettext write: comments, ``#, fuzzy`` (left out, as
``msgfmt`` does), ``msgctxt``, ``msgid``, ``msgid_plural``, ``msgstr`` and ``msgstr[n]``, strings continued on
the next lines, and C escapes. Obsolete entries (``#~``) are comments.
"""

from __future__ import annotations

import re
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CatalogError", "Message", "compile_catalogs", "compile_po", "main", "read_po"]

_MAGIC = 0x950412DE
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", '"': '"', "\\": "\\"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.DOTALL)
_KEYWORD = re.compile(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")\s*$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"\s*$')


class CatalogError(ValueError):
    """A ``.po`` file that cannot be read; the message names the file and line. (A build-time fault, outside the
    bridge's exception tree: ``sso_bridge.errors`` marks its messages with ``i18n.N_``, which imports this module.)"""


@dataclass(frozen=True, slots=True)
class Message:
    """One entry: ``msgid`` (and its plural), its translations (one per plural form), and the ``fuzzy`` flag."""

    msgid: str
    msgstr: tuple[str, ...]
    context: str | None = None
    plural: str | None = None
    fuzzy: bool = False

    @property
    def translated(self) -> bool:
        return all(self.msgstr) and not self.fuzzy


def _unescape(raw: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] == "x" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        if code in _ESCAPES:
            return _ESCAPES[code]
        raise ValueError(f"unknown escape \\{code}")

    return _ESCAPE.sub(one, raw)


class _Entry:
    """An entry being read."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}
        self.fuzzy = False
        self.last: str | None = None

    def message(self) -> Message | None:
        if "msgid" not in self.fields:
            if self.fields:
                raise ValueError("an entry without msgid")
            return None
        forms = sorted((int(name[7:-1]), name) for name in self.fields if name.startswith("msgstr["))
        if [index for index, _ in forms] != list(range(len(forms))):
            raise ValueError("msgstr[n] forms must be numbered from 0")
        names = [name for _, name in forms] or ["msgstr"]
        if any(name not in self.fields for name in names):
            raise ValueError("an entry without msgstr")
        text = {name: "".join(parts) for name, parts in self.fields.items()}
        return Message(
            msgid=text["msgid"],
            msgstr=tuple(text[name] for name in names),
            context=text.get("msgctxt"),
            plural=text.get("msgid_plural"),
            fuzzy=self.fuzzy,
        )


def read_po(text: str, *, source: str = "<po>") -> list[Message]:
    """Every entry of a ``.po`` file's text, the header (``msgid ""``) first if it has one."""
    messages: list[Message] = []
    entry = _Entry()

    def finish() -> None:
        nonlocal entry
        message = entry.message()
        if message is not None:
            messages.append(message)
        entry = _Entry()

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        try:
            if not stripped or stripped.startswith("#"):
                if entry.fields and entry.last is not None and not stripped.startswith("#~"):
                    finish()  # a comment or blank line after a msgstr starts the next entry
                if stripped.startswith("#,") and "fuzzy" in (flag.strip() for flag in stripped[2:].split(",")):
                    entry.fuzzy = True
                continue
            keyword = _KEYWORD.match(stripped)
            if keyword:
                name = keyword.group(1)
                if name in ("msgctxt", "msgid") and any(field.startswith("msgstr") for field in entry.fields):
                    finish()
                if name in entry.fields:
                    raise ValueError(f"{name} twice in one entry")
                string = _STRING.fullmatch(keyword.group(3))
                if string is None:
                    raise ValueError("not a quoted string")
                entry.fields[name] = [_unescape(string.group(1))]
                entry.last = name
                continue
            string = _STRING.fullmatch(stripped)
            if string is None or entry.last is None:
                raise ValueError(f"cannot read {stripped[:40]!r}")
            entry.fields[entry.last].append(_unescape(string.group(1)))
        except ValueError as exc:
            raise CatalogError(f"{source}:{number}: {exc}") from exc
    try:
        finish()
    except ValueError as exc:
        raise CatalogError(f"{source}: {exc}") from exc
    return messages


def compile_po(text: str, *, source: str = "<po>") -> bytes:
    """The ``.mo`` file for a ``.po`` file's text: its translated entries (the header included), as ``msgfmt``
    writes it (keys sorted, no hash table), readable by ``gettext.GNUTranslations``."""
    pairs: dict[bytes, bytes] = {}
    for message in read_po(text, source=source):
        if message.msgid and not message.translated:
            continue  # untranslated or fuzzy: gettext falls back to the msgid (English)
        key = message.msgid if message.plural is None else f"{message.msgid}\0{message.plural}"
        if message.context is not None:
            key = f"{message.context}\x04{key}"
        pairs[key.encode()] = "\0".join(message.msgstr).encode()
    keys = sorted(pairs)
    count = len(keys)
    originals_at = 7 * 4
    translations_at = originals_at + count * 8
    data_at = translations_at + count * 8
    offsets: list[int] = []
    blob = bytearray()
    for string in (*keys, *(pairs[key] for key in keys)):
        offsets += [len(string), data_at + len(blob)]
        blob += string + b"\0"
    header = struct.pack("<7I", _MAGIC, 0, count, originals_at, translations_at, 0, data_at)
    return header + struct.pack(f"<{len(offsets)}I", *offsets) + bytes(blob)


def compile_catalogs(source: Path, target: Path) -> list[Path]:
    """Compile every ``<lang>/LC_MESSAGES/*.po`` under ``source`` to the same place under ``target``."""
    written = []
    for po in sorted(source.glob("*/LC_MESSAGES/*.po")):
        mo = target / po.relative_to(source).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        mo.write_bytes(compile_po(po.read_text(encoding="utf-8"), source=str(po)))
        written.append(mo)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sso_bridge.catalogs SOURCE_DIR TARGET_DIR``: exit 0, 1 for a broken catalog, 2 for usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m sso_bridge.catalogs SOURCE_DIR TARGET_DIR", file=sys.stderr)
        return 2
    source, target = Path(args[0]), Path(args[1])
    try:
        written = compile_catalogs(source, target)
    except (CatalogError, OSError, UnicodeDecodeError) as exc:
        print(f"sso_bridge.catalogs: {exc}", file=sys.stderr)
        return 1
    if not written:
        print(f"sso_bridge.catalogs: no <lang>/LC_MESSAGES/*.po under {source}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
