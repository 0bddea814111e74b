"""`make links`: a contacts export in, the same rows with a link each out, for a mailing.

In: a header row (``,``, ``;`` or tab; UTF-8, BOM or not). Out: every row and column as it was, plus ``link``
and ``error``. It streams, so a million rows cost no more memory than ten. A row the bridge would refuse gets
no link, a fixed reason in ``error`` (never the cell: the file goes on to other tools) and ``line N: reason``
on the report, and the run goes on. Cells a spreadsheet would run as formulas are such rows, judged as they
would be signed (``ops.link_tokens``). The output appears only whole: it is written to a temporary file next
to OUT and renamed at the end. OUT is readable by its owner only (0600), because every link in it signs
someone in.

The header is the CSV reader's first record, as every later row is read: a quoted cell may span lines, and a
``link`` column on the header's second line is as much a ``link`` column as one on its first. Header names
are compared folded (format and other invisible characters removed, NFKC, case folded), so a fullwidth ``link`` or
``li<zero-width space>nk`` cannot sit beside the ``link`` column this adds and pass for it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn, TextIO

from ops.link_tokens import LinkMinter, RefusedRecipient, UsageError, printable, signed_email, signed_name

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = [
    "ADDED_COLUMNS",
    "CsvLayout",
    "Summary",
    "header_key",
    "inspect_csv",
    "mint_csv",
]

EMAIL_HEADERS = ("email", "email address", "e-mail", "e-mail address")
NAME_HEADERS = ("name", "full name")
FIRST_NAME_HEADERS = ("first name", "firstname", "given name")
LAST_NAME_HEADERS = ("last name", "lastname", "surname", "family name")
ADDED_COLUMNS = ("link", "error")
DELIMITERS = (",", ";", "\t")
_PROGRESS_EVERY = 4096
# How much text the header record may span: a quote left open would otherwise read the whole file as the header.
_HEADER_LIMIT = 65536
# Default-ignorable code points outside the Cf category (Unicode's DerivedCoreProperties): the combining grapheme
# joiner, Hangul fillers, Mongolian and other variation selectors, Khmer inherent vowels, unassigned ignorables.
_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\ufff0-\ufff8"
    "\U000e0000-\U000e0fff\U000e0100-\U000e01ef]"
)


def header_key(cell: str) -> str:
    """A header cell as compared with the names above: NFKC (fullwidth letters, NBSP), case folded, format and
    other invisible characters (zero-width space, soft hyphen, bidi controls) removed, ``_`` read as a space,
    blanks collapsed."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", cell).casefold())
    if not folded.isascii():
        folded = _IGNORABLE.sub("", "".join(char for char in folded if unicodedata.category(char) != "Cf"))
    return " ".join(folded.replace("_", " ").split())


@dataclass(frozen=True)
class CsvLayout:
    """What the header says: how to read the file and where the email and name are."""

    delimiter: str
    bom: bool
    line_terminator: str
    header: list[str]
    email: int
    name: int | None
    name_parts: tuple[int, ...]  # first name, last name (when there is no name column)


def _find(header: list[str], keys: list[str], names: Sequence[str], what: str) -> int | None:
    found = [i for i, key in enumerate(keys) if key in names]
    if len(found) > 1:
        raise UsageError(f"several {what} columns ({', '.join(printable(header[i])[:40] for i in found)}): keep one")
    return found[0] if found else None


def _first_record(source: Path, delimiter: str) -> tuple[list[str] | None, str]:
    """The first record read with ``delimiter`` (``None``: an empty file) and the text it spans."""
    spanned: list[str] = []

    def lines(text: TextIO) -> Iterator[str]:
        size = 0
        while line := text.readline(_HEADER_LIMIT + 1 - size):
            size += len(line)
            if size > _HEADER_LIMIT:
                raise UsageError(
                    f"{source}: the header row runs past {_HEADER_LIMIT} characters: is a quote left open?"
                )
            spanned.append(line)
            yield line

    with source.open(encoding="utf-8-sig", newline="") as text:
        record = next(csv.reader(lines(text), delimiter=delimiter), None)
    return record, "".join(spanned)


def inspect_csv(source: Path) -> CsvLayout:
    """Read the header record only: delimiter, email and name columns. Usage errors name what is wrong."""
    try:
        with source.open("rb") as raw:
            bom = raw.read(3) == codecs.BOM_UTF8
        records = {delimiter: _first_record(source, delimiter) for delimiter in DELIMITERS}
    except UnicodeDecodeError as exc:
        line = _first_undecodable_line(source)
        raise UsageError(f"{source}: line {line} is not UTF-8 text: export the file as CSV UTF-8") from exc
    except csv.Error as exc:
        raise UsageError(f"{source}: the header row is not valid CSV ({exc})") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from exc
    record, _ = records[DELIMITERS[0]]
    if not record or (len(record) == 1 and not record[0].strip()):
        raise UsageError(f"{source} has no header row: the first line must name the columns (email, name, ...)")

    def fit(delimiter: str) -> tuple[bool, int]:
        cells = records[delimiter][0] or []
        return any(header_key(cell) in EMAIL_HEADERS for cell in cells), len(cells)

    # The delimiter that yields an email column; among those (or none), the one that splits the header most.
    delimiter = max(DELIMITERS, key=fit)
    header, spanned = records[delimiter]
    assert header is not None  # the same file: every delimiter reads a first record
    keys = [header_key(cell) for cell in header]
    _refuse_added_columns(source, header, keys)
    email = _find(header, keys, EMAIL_HEADERS, "email")
    if email is None:
        shown = ", ".join(printable(cell)[:40] for cell in header[:12])
        raise UsageError(f"{source} has no email column (email, email address or e-mail); its header is: {shown}")
    name = _find(header, keys, NAME_HEADERS, "name")
    parts = (
        _find(header, keys, FIRST_NAME_HEADERS, "first name"),
        _find(header, keys, LAST_NAME_HEADERS, "last name"),
    )
    return CsvLayout(
        delimiter=delimiter,
        bom=bom,
        line_terminator="\r\n" if spanned.endswith("\r\n") else "\n",
        header=header,
        email=email,
        name=name,
        name_parts=() if name is not None else tuple(i for i in parts if i is not None),
    )


def _refuse_added_columns(source: Path, header: list[str], keys: list[str]) -> None:
    """A column that reads as ``link`` or ``error`` (however spelled) beside the ones this adds: refused."""
    taken = [name for name in ADDED_COLUMNS if name in keys]
    if not taken:
        return
    disguised = [
        f"{printable(cell)[:40]!r} reads as {key}"
        for cell, key in zip(header, keys, strict=True)
        if key in ADDED_COLUMNS and cell.strip().lower() != key
    ]
    shown = f" ({'; '.join(disguised)})" if disguised else ""
    raise UsageError(f"{source} already has a {' and '.join(taken)} column{shown}: rename it (the output adds its own)")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass
class Summary:
    rows: int = 0
    links: int = 0
    bad: int = 0

    def line(self, dest: Path) -> str:
        counts = (_plural(self.rows, "row"), _plural(self.links, "link"), _plural(self.bad, "bad row"))
        return f"{', '.join(counts)}: wrote {dest}"


def _row_link(row: list[str], layout: CsvLayout, minter: LinkMinter, limit: int) -> str:
    """The row's link, or raises ``RefusedRecipient`` with a fixed reason (never the cell)."""
    email = signed_email(row[layout.email])
    if layout.name is not None:
        name = signed_name((row[layout.name],))
    elif layout.name_parts:
        name = signed_name([row[i] for i in layout.name_parts])
    else:
        name = None
    link = minter.link(email, name)
    if len(link) > limit:
        raise RefusedRecipient("link_too_long")
    return link


def _first_undecodable_line(source: Path) -> int:
    """The physical line holding the first byte that is not UTF-8 (only read after a decode error)."""
    with source.open("rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


@contextlib.contextmanager
def _atomic_output(dest: Path, *, bom: bool) -> Iterator[IO[str]]:
    """A temporary file beside ``dest``, renamed over it only when the block ends without an exception."""
    temporary = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, on every path
        "w",
        dir=dest.parent,
        prefix=f".{dest.name}.",
        suffix=".part",
        delete=False,
        encoding="utf-8-sig" if bom else "utf-8",
        newline="",
    )
    try:
        yield temporary
        temporary.flush()
        os.fsync(temporary.fileno())
        temporary.close()
        os.replace(temporary.name, dest)
    except BaseException:
        temporary.close()
        with contextlib.suppress(OSError):
            os.unlink(temporary.name)
        raise


def mint_csv(
    source: Path,
    dest: Path,
    minter: LinkMinter,
    *,
    layout: CsvLayout | None = None,
    report: Callable[[str], None] | None = None,
    progress: TextIO | None = None,
) -> Summary:
    """Copy ``source`` to ``dest`` with ``link`` and ``error`` appended, one row at a time.

    ``report`` gets ``line N: reason`` for each bad row, N the physical line where the record starts (a
    quoted cell may span lines). Raises ``UsageError`` for input that is not CSV UTF-8; ``dest`` is then
    left as it was. ``progress``: a terminal to draw a progress bar on (reports then go there too).
    """
    layout = layout or inspect_csv(source)
    say = report or (lambda message: print(message, file=sys.stderr))
    summary = Summary()
    width = len(layout.header)
    limit = minter.max_link_length
    bar: tqdm[NoReturn] | None = None
    if progress is not None:
        from tqdm import tqdm  # only for a terminal: scripted runs never import it

        bar = tqdm(unit=" rows", unit_scale=True, file=progress, mininterval=0.5, dynamic_ncols=True)
        say = partial(tqdm.write, file=progress)
    try:
        with (
            source.open(encoding="utf-8-sig", newline="") as text,
            _atomic_output(dest, bom=layout.bom) as out,
        ):
            reader = csv.reader(text, delimiter=layout.delimiter)
            # csv encodes the contact's own cells; link and error are appended as plain text, because a
            # link never needs quoting (URL characters only, no delimiter) and csv's writer costs ~10 µs
            # for a 300-character cell, half the row's budget.
            writer = csv.writer(out, delimiter=layout.delimiter, lineterminator="")
            delimiter, newline, write = layout.delimiter, layout.line_terminator, out.write
            writer.writerow(next(reader))  # the header record inspect_csv read, whatever lines it spans
            write(f"{delimiter}{delimiter.join(ADDED_COLUMNS)}{newline}")
            end = reader.line_num
            try:
                for row in reader:
                    start, end = end + 1, reader.line_num
                    if not row:
                        continue  # a blank line is no record
                    summary.rows += 1
                    if len(row) < width:
                        row.extend([""] * (width - len(row)))  # exports drop empty trailing cells
                    try:
                        if len(row) > width:
                            raise RefusedRecipient("too_many_columns")
                        link = _row_link(row, layout, minter, limit)
                    except RefusedRecipient as bad:
                        summary.bad += 1
                        del row[width:]
                        writer.writerow(row)
                        write(f"{delimiter}{delimiter}{bad.reason}{newline}")
                        say(f"line {start}: {bad.reason}")
                    else:
                        summary.links += 1
                        writer.writerow(row)
                        write(f"{delimiter}{link}{delimiter}{newline}")
                    if bar is not None and summary.rows % _PROGRESS_EVERY == 0:
                        bar.update(summary.rows - bar.n)
            except csv.Error as exc:
                raise UsageError(f"{source}: line {end + 1}: not valid CSV ({exc})") from exc
    except UnicodeDecodeError as exc:
        line = _first_undecodable_line(source)
        raise UsageError(f"{source}: line {line} is not UTF-8 text: export the file as CSV UTF-8") from exc
    finally:
        if bar is not None:
            bar.update(summary.rows - bar.n)
            bar.close()
    return summary
