"""Mint email links: a login token with ``use: "link"`` on a vendor's function URL, for one address or a CSV.

    python -m ops.link --provider clickfunnels --email jane@example.com [--name "Jane Doe"] [--ttl 7d]
        [--redirect-to URL] [--campaign spring-sale] [--via api] [--local] [--stack-name NAME]
    python -m ops.link --provider kustomer --in contacts.csv --out links.csv [--ttl 3d] [--campaign C] [--local]

``--via api`` puts the link on the HTTP API's public host (the stack's ``ApiUrl``: its custom domain when it has
one) and the vendor's sign-in route, which serves the same link flow; readers and mail filters trust a company's
own domain more than ``*.lambda-url.*.on.aws``. A vendor the stack was deployed without is refused before any key
is read, naming the switch (``EnableHappyFox=false``, or ``make run``'s ``VENDORS``).

A link sits in an inbox for days and is checked only when someone clicks it, so every check the bridge
will make is made here first, with the bridge's own functions (``check_email``, ``check_name``,
``check_campaign``) and the target's own lifetime cap: a link this command prints is one the bridge accepts.
The key, the function URL and the cap come from the stack itself (``ops.target``), never typed by hand.

The CSV mode is for a mailing: a contacts export goes in (header row; ``,``, ``;`` or tab; UTF-8, BOM or
not) and comes out with every row and column as it was, plus ``link`` and ``error``. It streams, so a
million rows cost no more memory than ten. A row the bridge would refuse gets no link, a fixed reason in
``error`` (never the cell: the file goes on to other tools) and ``line N: reason`` on stderr, and the run
goes on. Cells a spreadsheet would run as formulas are such rows. The output appears only whole: it is
written to a temporary file next to OUT and renamed at the end. OUT is readable by its owner only (0600),
because every link in it signs someone in.

Exit status: 0 when the link was printed or the file processed (bad rows are reported in the file), 1 when
OUT could not be written, 2 for usage errors (arguments, TTL, unreadable or malformed input), 3 when the
bridge's resources cannot be reached (no local stack, stack not found, no credentials, key unreadable).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import hmac
import json
import os
import re
import secrets
import sys
import tempfile
import time
from binascii import b2a_base64
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn, TextIO
from urllib.parse import quote, urlsplit

from ops.target import EXIT_TARGET, EXIT_USAGE, Target, TargetError, add_target_arguments, resolve, vendors
from ops.vendor_template import vendor_templates
from sso_bridge.errors import BridgeError
from sso_bridge.login_token import LINK_USE, MAX_TOKEN_LENGTH, check_campaign, check_email, check_name
from sso_bridge.redirects import allowed_url
from sso_bridge.settings import LINK_TTL_DEFAULT, LINK_TTL_MAX

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = [
    "MIN_TTL",
    "VIAS",
    "CsvLayout",
    "LinkMinter",
    "Summary",
    "UsageError",
    "inspect_csv",
    "main",
    "mint_csv",
    "parse_ttl",
]

EXIT_WRITE = 1
MIN_TTL = 300  # the bridge's floor for LINK_TOKEN_MAX_TTL; a shorter link would expire in the outbox
VIAS = ("url", "api")  # where links point: the vendor's function URL (default), or the HTTP API's sign-in route
EMAIL_HEADERS = ("email", "email address", "e-mail", "e-mail address")
NAME_HEADERS = ("name", "full name")
FIRST_NAME_HEADERS = ("first name", "firstname", "given name")
LAST_NAME_HEADERS = ("last name", "lastname", "surname", "family name")
ADDED_COLUMNS = ("link", "error")
DELIMITERS = (",", ";", "\t")
# Spreadsheets run a cell starting with one of these as a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_TTL = re.compile(r"^([0-9]{1,9})([dhms]?)$", re.ASCII)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}
_PROGRESS_EVERY = 4096


class UsageError(Exception):
    """Arguments or input the command cannot work with; exit status 2."""


# --- tokens -------------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> bytes:
    return b2a_base64(data, newline=False).rstrip(b"=").translate(_URLSAFE)


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_JTI_BYTES, _JTI_BATCH = 16, 1024
# PyJWT's header for HS256, byte for byte (sorted keys, compact): {"alg":"HS256","typ":"JWT"}.
_HEADER = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":"), sort_keys=True).encode())


class LinkMinter:
    """Links for one vendor, campaign, lifetime and issue time; ``link(email, name)`` per recipient.

    Not ``jwt.encode``: it costs ~54 µs a token on this project's 2-core machines (measured with PyJWT 2.15:
    it builds a header dict, a JSON encoder and an HMAC from the key on every call), which caps a mailing at
    ~18,000 rows/s before any CSV work. Here the header segment is encoded once, the claims every link shares
    are JSON-encoded once, each token only adds its email, name and jti (C-accelerated JSON string escaping),
    signs with a copy of one keyed ``hmac`` object, and jti values are cut from one ``secrets`` draw per
    1,024 tokens (``os.urandom`` per token was 1.3 µs of the budget): ~5 µs a token. The result is an
    ordinary HS256 JWT (compact JSON, base64url without padding); the tests verify tokens with PyJWT.
    """

    def __init__(
        self,
        key: str,
        *,
        vendor: str,
        function_url: str,
        issued_at: int,
        ttl: int,
        campaign: str | None = None,
        redirect_to: str | None = None,
    ) -> None:
        # A digest name, not hashlib.sha256: OpenSSL's own HMAC, whose copy() is the cheaper one (measured).
        self._mac = hmac.new(key.encode(), digestmod="sha256")
        self._jtis: list[str] = []
        self.issued_at, self.expires_at = issued_at, issued_at + ttl
        shared: dict[str, object] = {"aud": vendor, "iat": issued_at, "exp": self.expires_at, "use": LINK_USE}
        if campaign:
            shared["campaign"] = campaign
        query = ""
        if redirect_to and vendor == "kustomer":
            # Kustomer's destination is a query parameter the bridge checks on every click, not a claim.
            query = f"kustomerRedirectUri={quote(redirect_to, safe='')}&"
        elif redirect_to:
            shared["redirect_to"] = redirect_to
        # '{"aud":...}' -> ',"aud":...}': the tail every token of this run ends with.
        self._tail = "," + json.dumps(shared, separators=(",", ":"))[1:]
        self._prefix = f"{function_url}?{query}login_token="

    @property
    def max_link_length(self) -> int:
        """The bridge refuses a login token over ``MAX_TOKEN_LENGTH`` characters (a 414 page)."""
        return len(self._prefix) + MAX_TOKEN_LENGTH

    def token(self, email: str, name: str | None = None) -> str:
        jtis = self._jtis
        if not jtis:
            # 128 random bits per jti, as secrets.token_hex(16), drawn for 1,024 tokens at once.
            drawn = secrets.token_bytes(_JTI_BYTES * _JTI_BATCH).hex()
            jtis.extend(drawn[i : i + 2 * _JTI_BYTES] for i in range(0, len(drawn), 2 * _JTI_BYTES))
        named = f',"name":{encode_basestring_ascii(name)}' if name else ""
        payload = f'{{"email":{encode_basestring_ascii(email)}{named},"jti":"{jtis.pop()}"{self._tail}'
        signing_input = _HEADER + b"." + _b64url(payload.encode())
        mac = self._mac.copy()
        mac.update(signing_input)
        return (signing_input + b"." + _b64url(mac.digest())).decode("ascii")

    def link(self, email: str, name: str | None = None) -> str:
        return self._prefix + self.token(email, name)


# --- arguments ----------------------------------------------------------------------------------------------


def parse_ttl(text: str) -> int:
    """``7d``, ``36h``, ``90m``, ``3600s`` or plain seconds."""
    match = _TTL.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(f"--ttl {text!r}: use 7d, 36h, 90m, 3600s or plain seconds")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _check_ttl(ttl: int, cap: int, where: str) -> None:
    if ttl < MIN_TTL:
        raise UsageError(f"--ttl {_duration(ttl)} is too short: links live at least {_duration(MIN_TTL)}")
    if ttl > LINK_TTL_MAX:
        raise UsageError(f"--ttl {_duration(ttl)} is over {_duration(LINK_TTL_MAX)}, the longest any link may live")
    if ttl > cap:
        raise UsageError(
            f"--ttl {_duration(ttl)} is over the {_duration(cap)} that {where} accepts (LINK_TOKEN_MAX_TTL): "
            "the bridge would refuse every link"
        )


def _check_redirect(vendor: str, raw: str | None, target: Target | None = None) -> str | None:
    """The deep link rebuilt by the bridge's own URL check; against the target's hosts once they are known."""
    if not raw:
        return None
    if vendor == "happyfox":
        raise UsageError("--redirect-to: HappyFox has no deep links (its token has no destination claim)")
    hosts = {(urlsplit(raw).hostname or "").lower()}
    if target is not None:
        known = _allowed_hosts(vendor, target)
        if known is not None:
            hosts = known
    try:
        return allowed_url(raw, hosts)
    except BridgeError as exc:
        if target is not None and exc.reason == "url_host":
            raise UsageError(f"--redirect-to: host not allowed by {target.where} ({', '.join(sorted(hosts))})") from exc
        raise UsageError(f"--redirect-to: not a plain https URL the bridge accepts ({exc.reason})") from exc


def _allowed_hosts(vendor: str, target: Target) -> set[str] | None:
    """The hosts the bridge allows for this vendor's destinations, when the target says (else ``None``)."""
    if vendor == "clickfunnels":
        domain = target.setting("CLICKFUNNELS_WORKSPACE_DOMAIN")
        extra = target.setting("CLICKFUNNELS_REDIRECT_HOSTS")
        if domain is None:
            return None
        return {domain.lower(), *(h.strip().lower() for h in (extra or "").split(",") if h.strip())}
    if vendor == "kustomer":
        hosts = target.setting("KUSTOMER_REDIRECT_HOSTS")
        if hosts is None:
            return None
        portal = urlsplit(target.setting("KUSTOMER_PORTAL_URL") or "").hostname
        return {h.strip().lower() for h in hosts.split(",") if h.strip()} | ({portal.lower()} if portal else set())
    return None


def _check_kustomer_destination(vendor: str, redirect_to: str | None, target: Target) -> None:
    # Without a destination Kustomer's flow lands on KUSTOMER_PORTAL_URL; with neither, every click is a 400.
    if vendor == "kustomer" and not redirect_to and target.setting("KUSTOMER_PORTAL_URL") == "":
        raise UsageError(f"kustomer links need --redirect-to: {target.where} has no KUSTOMER_PORTAL_URL")


# --- CSV ----------------------------------------------------------------------------------------------------


def _header_key(cell: str) -> str:
    return " ".join(cell.strip().lower().replace("_", " ").split())


def _printable(text: str) -> str:
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)


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


def _find(keys: list[str], names: Sequence[str], what: str) -> int | None:
    found = [i for i, key in enumerate(keys) if key in names]
    if len(found) > 1:
        raise UsageError(f"several {what} columns ({', '.join(_printable(keys[i]) for i in found)}): keep one")
    return found[0] if found else None


def inspect_csv(source: Path) -> CsvLayout:
    """Read the header only: delimiter, email and name columns. Usage errors name what is wrong."""
    try:
        with source.open("rb") as raw:
            bom = raw.read(3) == codecs.BOM_UTF8
        with source.open(encoding="utf-8-sig", newline="") as text:
            first = text.readline()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: line 1 is not UTF-8 text: export the file as CSV UTF-8") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from exc
    if not first.strip():
        raise UsageError(f"{source} has no header row: the first line must name the columns (email, name, ...)")

    def parse(delimiter: str) -> list[str]:
        return next(csv.reader([first], delimiter=delimiter), [])

    # The delimiter that yields an email column; among those (or none), the one that splits the header most.
    delimiter = max(DELIMITERS, key=lambda d: (any(_header_key(c) in EMAIL_HEADERS for c in parse(d)), len(parse(d))))
    header = parse(delimiter)
    keys = [_header_key(cell) for cell in header]
    taken = [name for name in ADDED_COLUMNS if name in keys]
    if taken:
        raise UsageError(f"{source} already has a {' and '.join(taken)} column: rename it (it would be overwritten)")
    email = _find(keys, EMAIL_HEADERS, "email")
    if email is None:
        shown = ", ".join(_printable(cell)[:40] for cell in header[:12])
        raise UsageError(f"{source} has no email column (email, email address or e-mail); its header is: {shown}")
    name = _find(keys, NAME_HEADERS, "name")
    parts = (_find(keys, FIRST_NAME_HEADERS, "first name"), _find(keys, LAST_NAME_HEADERS, "last name"))
    return CsvLayout(
        delimiter=delimiter,
        bom=bom,
        line_terminator="\r\n" if first.endswith("\r\n") else "\n",
        header=header,
        email=email,
        name=name,
        name_parts=() if name is not None else tuple(i for i in parts if i is not None),
    )


@dataclass
class Summary:
    rows: int = 0
    links: int = 0
    bad: int = 0

    def line(self, dest: Path) -> str:
        return f"{self.rows} rows, {self.links} links, {self.bad} bad rows: wrote {dest}"


def _is_formula(cell: str) -> bool:
    return cell.startswith(FORMULA_STARTS)


def _row_name(row: list[str], layout: CsvLayout) -> str | None:
    """The display name, or raises ``_BadRow``; first + last name when there is no name column."""
    if layout.name is not None:
        cells = [row[layout.name]]
    elif layout.name_parts:
        cells = [row[i] for i in layout.name_parts]
    else:
        return None
    if any(_is_formula(cell) for cell in cells):
        raise _BadRow("name_formula")
    try:
        return check_name(" ".join(cell.strip() for cell in cells if cell.strip()))
    except BridgeError as exc:
        raise _BadRow(exc.reason.replace("claim_", "name_")) from exc


class _BadRow(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _row_link(row: list[str], layout: CsvLayout, minter: LinkMinter, limit: int) -> str:
    """The row's link, or raises ``_BadRow`` with a fixed reason (never the cell)."""
    raw = row[layout.email]
    if _is_formula(raw):
        raise _BadRow("email_formula")
    email = raw.strip()
    if not email:
        raise _BadRow("email_missing")
    try:
        check_email(email)
    except BridgeError as exc:
        raise _BadRow(exc.reason) from exc
    link = minter.link(email, _row_name(row, layout))
    if len(link) > limit:
        raise _BadRow("link_too_long")
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
            writer.writerow(next(reader))
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
                            raise _BadRow("too_many_columns")
                        link = _row_link(row, layout, minter, limit)
                    except _BadRow as bad:
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


# --- command ------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops.link",
        description="Mint email links that sign one person into one vendor portal, once.",
        epilog="Exit status: 0 done, 1 OUT not written, 2 usage error, 3 the bridge's resources unreachable.",
    )
    parser.add_argument(
        "--provider", required=True, metavar="VENDOR", help=f"the vendor portal the link opens: {', '.join(vendors())}"
    )
    one = parser.add_argument_group("one link (printed on stdout)")
    one.add_argument("--email", help="the recipient's address")
    one.add_argument("--name", help="display name (HappyFox shows it)")
    many = parser.add_argument_group("a CSV of contacts")
    many.add_argument("--in", dest="source", type=Path, metavar="IN", help="contacts export (header row)")
    many.add_argument("--out", dest="dest", type=Path, metavar="OUT", help="IN's rows with link and error added")
    parser.add_argument("--ttl", help="lifetime: 7d, 36h, 90m, 3600s or seconds (default 7d, or the bridge's cap)")
    parser.add_argument("--redirect-to", metavar="URL", help="ClickFunnels or Kustomer page to land on")
    parser.add_argument("--campaign", help="label counted in the bridge's metrics (letters, digits, ._:/+- )")
    parser.add_argument(
        "--via", default=VIAS[0], help="url: the vendor's function URL (default); api: the HTTP API's public host"
    )
    add_target_arguments(parser, default_stack="sso-bridge")
    return parser


@dataclass(frozen=True)
class _Request:
    vendor: str
    via: str
    ttl: int | None
    campaign: str | None
    redirect_to: str | None
    email: str | None
    name: str | None
    source: Path | None
    dest: Path | None
    layout: CsvLayout | None


def _check_arguments(args: argparse.Namespace) -> _Request:
    """Everything that needs no AWS: refused before the stack is even looked up."""
    known = vendors()
    if args.provider not in known:
        raise UsageError(f"--provider {_printable(args.provider)[:40]!r} is not a vendor portal: {', '.join(known)}")
    if args.via not in VIAS:
        raise UsageError(f"--via {_printable(args.via)[:40]!r}: url (the function URL, default) or api (the HTTP API)")
    if args.email is not None and args.source is not None:
        raise UsageError("give --email for one link or --in/--out for a CSV, not both")
    if args.email is None and args.source is None:
        raise UsageError("give --email for one link, or --in contacts.csv --out links.csv")
    ttl = parse_ttl(args.ttl) if args.ttl else None
    if ttl is not None:
        _check_ttl(ttl, LINK_TTL_MAX, "the bridge")
    try:
        campaign = check_campaign(args.campaign or None)
    except BridgeError as exc:
        raise UsageError(f"--campaign: letters, digits and ._:/+- only, at most 64 ({exc.reason})") from exc
    redirect_to = _check_redirect(args.provider, args.redirect_to)
    email = name = None
    source = dest = layout = None
    if args.email is not None:
        if args.dest is not None:
            raise UsageError("--out goes with --in (a CSV); one link is printed on stdout")
        email, name = _check_recipient(args.email, args.name)
    else:
        if args.name is not None:
            raise UsageError("--name is for one link; a CSV's names come from its name columns")
        source, dest = args.source, args.dest
        if dest is None:
            raise UsageError("--in needs --out (where to write the links)")
        _check_paths(source, dest)
        layout = inspect_csv(source)
    return _Request(args.provider, args.via, ttl, campaign, redirect_to, email, name, source, dest, layout)


def _check_recipient(raw_email: str, raw_name: str | None) -> tuple[str, str | None]:
    email = raw_email.strip()
    if not email:
        raise UsageError("--email needs an address")
    if _is_formula(raw_email) or (raw_name is not None and _is_formula(raw_name)):
        raise UsageError("--email and --name must not start with =, +, -, @, tab or CR")
    try:
        check_email(email)
    except BridgeError as exc:
        raise UsageError(f"--email is not an address the bridge accepts ({exc.reason})") from exc
    try:
        name = check_name(raw_name)
    except BridgeError as exc:
        raise UsageError(f"--name: one line of at most 200 characters ({exc.reason})") from exc
    return email, name


def _check_paths(source: Path, dest: Path) -> None:
    if not source.is_file():
        raise UsageError(f"--in {source}: no such file")
    if dest.is_dir():
        raise UsageError(f"--out {dest} is a directory")
    if not dest.parent.resolve().is_dir():
        raise UsageError(f"--out {dest}: no such directory {dest.parent}")
    same = dest.resolve() == source.resolve()
    if not same and dest.exists():
        with contextlib.suppress(OSError):
            same = os.path.samefile(dest, source)
    if same:
        raise UsageError("--out must not be --in: the contacts file would be replaced")


def _check_served(vendor: str, target: Target) -> None:
    """A vendor the stack was deployed (or started) without: said with the switch to flip, before any key is read."""
    if vendor in target.vendors:
        return
    if target.local:
        wanted = [name for name in vendors() if name in target.vendors or name == vendor]
        raise UsageError(f"the local stack runs without {vendor}: restart `make run` with VENDORS={','.join(wanted)}")
    switch = vendor_templates()[vendor].switch
    raise UsageError(
        f"{target.where} has no {vendor}: it was deployed with {switch}=false (redeploy with {switch}=true)"
    )


def _link_base(request: _Request, target: Target) -> str:
    """The URL links open: the vendor's function URL, or (``--via api``) its sign-in route on the API's public host."""
    if request.via != "api":
        return target.function_url(request.vendor)
    path = vendor_templates()[request.vendor].sign_in_path
    if path is None:
        raise UsageError(f"template.yaml gives {request.vendor} no sign-in route on the HTTP API: use --via url")
    if not target.api_url:
        if target.local:
            raise TargetError(f"{target.where} names no HTTP API URL: restart it with `make run`")
        raise TargetError(f"{target.where} has no output ApiUrl: deploy the current template.yaml")
    return target.api_url + path


def _mint(request: _Request, target: Target, *, err: TextIO, out: TextIO) -> int:
    _check_served(request.vendor, target)
    cap = target.link_max_ttl
    ttl = request.ttl if request.ttl is not None else min(LINK_TTL_DEFAULT, cap)
    _check_ttl(ttl, cap, target.where)
    redirect_to = _check_redirect(request.vendor, request.redirect_to, target)
    _check_kustomer_destination(request.vendor, redirect_to, target)
    base = _link_base(request, target)
    minter = LinkMinter(
        target.login_token_key(),
        vendor=request.vendor,
        function_url=base,
        issued_at=int(time.time()),
        ttl=ttl,
        campaign=request.campaign,
        redirect_to=redirect_to,
    )
    if request.email is not None:
        link = minter.link(request.email, request.name)
        if len(link) > minter.max_link_length:
            raise UsageError("the link would be longer than the bridge accepts: shorten --name or --redirect-to")
        print(link, file=out)
        return 0
    assert request.source is not None
    assert request.dest is not None
    try:
        summary = mint_csv(
            request.source,
            request.dest,
            minter,
            layout=request.layout,
            report=lambda message: print(message, file=err),
            progress=err if err.isatty() else None,
        )
    except OSError as exc:
        print(f"python -m ops.link: error: cannot write {request.dest}: {exc.strerror or exc}", file=err)
        return EXIT_WRITE
    print(summary.line(request.dest), file=err)
    return 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        request = _check_arguments(args)
        target = resolve(args.local, args.stack_name)
        return _mint(request, target, err=err, out=out)
    except UsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=err)
        return EXIT_USAGE
    except TargetError as exc:
        print(f"{parser.prog}: error: {exc}", file=err)
        return EXIT_TARGET
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted: nothing written", file=err)
        return 130


if __name__ == "__main__":
    sys.exit(main())
