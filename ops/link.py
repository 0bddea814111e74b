"""Mint email links: a login token with ``use: "link"`` on a vendor's function URL, for one address or a CSV.

    python -m ops.link --provider clickfunnels --email jane@example.com [--name "Jane Doe"] [--ttl 7d]
        [--redirect-to URL] [--campaign spring-sale] [--via api] [--local] [--stack-name NAME]
    python -m ops.link --provider kustomer --in contacts.csv --out links.csv [--ttl 3d] [--campaign C] [--local]

``--via api`` puts the link on the HTTP API's public host (the stack's ``ApiUrl``: its custom domain when it has
one) and the vendor's sign-in route, which serves the same link flow; readers and mail filters trust a company's
own domain more than ``*.lambda-url.*.on.aws``. It is the default for a portal that starts sign-in itself and
sends the reader back to the route pasted in its admin (Discourse, Freshworks: ``LinkRules.on_route``): the
hand-off cookie lives on the host the link opened on, so on the function URL the reader would sign in once more.
A vendor the stack was deployed without is refused before any key is read, naming the switch
(``EnableHappyFox=false``, or ``make run``'s ``VENDORS``).

A link sits in an inbox for days and is checked only when someone clicks it, so every check the bridge
will make is made here first, with the bridge's own functions (``check_email``, ``check_name``,
``check_campaign``, ``allowed_url``), the target's own lifetime cap and its own destination settings
(``ops.link_destination``): a link this command prints is one the bridge accepts. The key, the function URL,
the cap and the allowed hosts come from the stack itself (``ops.target``), never typed by hand. The CSV mode
(``ops.link_csv``) is for a mailing; both modes check recipients with one rule (``ops.link_tokens``).

``make link`` and ``make links`` pass ``--make=link`` (or ``links``): messages then name the make variables
the operator typed (``EMAIL``, ``OUT is required``, ``LOCAL=1``) instead of this command's options, and
``make link`` without ``LOCAL=1`` that finds no deployed stack while ``make run`` is running says to add it.

Exit status: 0 when the link was printed or the file processed (bad rows are reported in the file), 1 when
OUT could not be written, 2 for usage errors (arguments, TTL, destination, unreadable or malformed input), 3
when the bridge's resources cannot be reached (no local stack, stack not found, no credentials, key
unreadable, a setting the stack does not report).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TextIO

from local.state import NoLocalStack, read_state
from local.vendors.operations import link_rules
from ops.link_csv import CsvLayout, inspect_csv, mint_csv
from ops.link_destination import check_destination, check_form
from ops.link_tokens import LinkMinter, RefusedRecipient, UsageError, printable, signed_email, signed_name
from ops.target import EXIT_TARGET, EXIT_USAGE, Target, TargetError, add_target_arguments, resolve, vendors
from ops.vendor_template import vendor_templates
from sso_bridge.errors import BridgeError
from sso_bridge.login_token import check_campaign
from sso_bridge.settings import LINK_TTL_DEFAULT, LINK_TTL_MAX

__all__ = ["MAKE_TARGETS", "MIN_TTL", "VIAS", "Spelling", "main", "parse_ttl"]

EXIT_WRITE = 1
MIN_TTL = 300  # the bridge's floor for LINK_TOKEN_MAX_TTL; a shorter link would expire in the outbox
VIAS = ("url", "api")  # where links point: the vendor's function URL (default), or the HTTP API's sign-in route
MAKE_TARGETS = ("link", "links")  # the Makefile's targets that run this command (--make)
# The Makefile variable that carries each option (the link and links targets).
MAKE_VARIABLES = {
    "--provider": "PROVIDER",
    "--email": "EMAIL",
    "--name": "NAME",
    "--in": "IN",
    "--out": "OUT",
    "--ttl": "TTL",
    "--redirect-to": "REDIRECT_TO",
    "--campaign": "CAMPAIGN",
    "--via": "VIA",
    "--local": "LOCAL=1",
    "--stack-name": "STACK_NAME",
}
# ops.target's advice, as make's user acts on it.
_MAKE_ADVICE = (
    ("pass --stack-name (or set STACK_NAME)", "set STACK_NAME="),
    ("pass --local", "LOCAL=1"),
    ("; --local for make run", "; LOCAL=1 for make run"),
)
_OPTION = re.compile(r"--[a-z][a-z-]*")
_TTL = re.compile(r"^([0-9]{1,9})([dhms]?)$", re.ASCII)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1, "": 1}
_FORMULA = "must not start with =, +, -, @, tab or CR, after any leading blanks either (a spreadsheet would run it)"


@dataclass(frozen=True)
class Spelling:
    """How messages name what the user typed: this command's options, or (``make_target``) make's variables."""

    make_target: str | None = None

    @property
    def prog(self) -> str:
        return f"make {self.make_target}" if self.make_target else "python -m ops.link"

    def __call__(self, option: str, value: object = None) -> str:
        """``--ttl 4m`` / ``TTL=4m``; without a value, ``--email`` / ``EMAIL``."""
        if self.make_target is None:
            return option if value is None else f"{option} {value}"
        variable = MAKE_VARIABLES[option]
        return variable if value is None else f"{variable}={value}"

    def advice(self, message: str) -> str:
        """ops.target's message with its advice as make's user acts on it (``LOCAL=1``, not ``--local``)."""
        if self.make_target is None:
            return message
        for old, new in _MAKE_ADVICE:
            message = message.replace(old, new)
        return message

    def parse_error(self, message: str) -> str:
        """argparse's message (``argument --stack-name: ...``) with make's variable names."""
        if self.make_target is None:
            return message
        message = message.replace("argument ", "", 1)
        return _OPTION.sub(lambda match: MAKE_VARIABLES.get(match.group(), match.group()), message)


ARGV = Spelling()


# --- arguments ----------------------------------------------------------------------------------------------


def parse_ttl(text: str, spell: Spelling = ARGV) -> int:
    """``7d``, ``36h``, ``90m``, ``3600s`` or plain seconds."""
    match = _TTL.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(f"{spell('--ttl', repr(printable(text)[:40]))}: use 7d, 36h, 90m, 3600s or plain seconds")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _check_ttl(ttl: int, cap: int, where: str, spell: Spelling) -> None:
    asked = spell("--ttl", _duration(ttl))
    if ttl < MIN_TTL:
        raise UsageError(f"{asked} is too short: links live at least {_duration(MIN_TTL)}")
    if ttl > LINK_TTL_MAX:
        raise UsageError(f"{asked} is over {_duration(LINK_TTL_MAX)}, the longest any link may live")
    if ttl > cap:
        raise UsageError(
            f"{asked} is over the {_duration(cap)} that {where} accepts (LINK_TOKEN_MAX_TTL): "
            "the bridge would refuse every link"
        )


# --- command ------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, whose own errors (a bad ``STACK_NAME``) name make's variables when make runs the command."""

    def __init__(self, spell: Spelling, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.spell = spell

    def error(self, message: str) -> NoReturn:
        if self.spell.make_target is None:
            super().error(message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {self.spell.parse_error(message)}\n")


def _make_target(argv: Sequence[str]) -> str | None:
    """``--make=link``: read before the real parse, so that the parse's own errors are worded for make too."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--make")
    known, _ = pre.parse_known_args(argv)
    return known.make if known.make in MAKE_TARGETS else None


def _parser(spell: Spelling, known: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        spell,
        prog=spell.prog,
        description="Mint email links that sign one person into one vendor portal, once.",
        epilog="Exit status: 0 done, 1 OUT not written, 2 usage error, 3 the bridge's resources unreachable.",
    )
    parser.add_argument(
        "--provider", required=True, metavar="VENDOR", help=f"the vendor portal the link opens: {', '.join(known)}"
    )
    one = parser.add_argument_group("one link (printed on stdout)")
    one.add_argument("--email", help="the recipient's address")
    one.add_argument("--name", help="display name (HappyFox shows it)")
    many = parser.add_argument_group("a CSV of contacts")
    many.add_argument("--in", dest="source", metavar="IN", help="contacts export (header row)")
    many.add_argument("--out", dest="dest", metavar="OUT", help="IN's rows with link and error added")
    parser.add_argument("--ttl", help="lifetime: 7d, 36h, 90m, 3600s or seconds (default 7d, or the bridge's cap)")
    parser.add_argument(
        "--redirect-to", metavar="URL", help="the portal page to land on, for a vendor that takes one (ClickFunnels)"
    )
    parser.add_argument("--campaign", help="label counted in the bridge's metrics (letters, digits, ._:/+- )")
    parser.add_argument(
        "--via",
        help="url: the vendor's function URL (default); api: the HTTP API's public host (default for a portal that "
        "starts sign-in itself)",
    )
    parser.add_argument("--make", choices=MAKE_TARGETS, help=argparse.SUPPRESS)  # the Makefile's target
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


def _required(spell: Spelling, missing: Mapping[str, str]) -> UsageError:
    """``OUT is required: where to write the links``, naming every missing one."""
    named = " and ".join(spell(option) for option in missing)
    verb = "is" if len(missing) == 1 else "are"
    return UsageError(f"{named} {verb} required: {', and '.join(missing.values())}")


def _check_arguments(args: argparse.Namespace, spell: Spelling, known: Sequence[str]) -> _Request:
    """Everything that needs no AWS: refused before the stack is even looked up."""
    if not args.provider:
        raise _required(spell, {"--provider": f"the vendor portal, one of {', '.join(known)}"})
    if args.provider not in known:
        shown = spell("--provider", repr(printable(args.provider)[:40]))
        raise UsageError(f"{shown} is not a vendor portal: {', '.join(known)}")
    via = args.via if args.via is not None else ("api" if link_rules(args.provider).on_route else VIAS[0])
    if via not in VIAS:
        shown = spell("--via", repr(printable(args.via)[:40]))
        raise UsageError(f"{shown}: url (the function URL, default) or api (the HTTP API)")
    if args.email is not None and args.source is not None:
        raise UsageError("give --email for one link or --in/--out for a CSV, not both")
    if args.email is None and args.source is None:
        raise UsageError("give --email for one link, or --in contacts.csv --out links.csv")
    ttl = parse_ttl(args.ttl, spell) if args.ttl else None
    if ttl is not None:
        _check_ttl(ttl, LINK_TTL_MAX, "the bridge", spell)
    try:
        campaign = check_campaign(args.campaign or None)
    except BridgeError as exc:
        raise UsageError(f"{spell('--campaign')}: letters, digits and ._:/+- only, at most 64 ({exc.reason})") from exc
    redirect_to = check_form(args.provider, args.redirect_to, spell("--redirect-to"))
    email = name = None
    source = dest = layout = None
    if args.email is not None:
        if args.dest is not None:
            raise UsageError("--out goes with --in (a CSV); one link is printed on stdout")
        email, name = _check_recipient(args.email, args.name, spell)
    else:
        if args.name is not None:
            raise UsageError(f"{spell('--name')} is for one link; a CSV's names come from its name columns")
        wanted = {"--in": (args.source, "the contacts export to read"), "--out": (args.dest, "the file to write")}
        missing = {option: what for option, (value, what) in wanted.items() if not value}
        if missing:
            raise _required(spell, missing)
        source, dest = Path(args.source), Path(args.dest)
        _check_paths(source, dest, spell)
        layout = inspect_csv(source)
    return _Request(args.provider, via, ttl, campaign, redirect_to, email, name, source, dest, layout)


def _check_recipient(raw_email: str, raw_name: str | None, spell: Spelling) -> tuple[str, str | None]:
    """The address and name a link signs: the CSV's rule for a row (``signed_email``, ``signed_name``)."""
    if not raw_email.strip():
        raise _required(spell, {"--email": "the recipient's address"})
    try:
        email = signed_email(raw_email)
    except RefusedRecipient as refused:
        if refused.reason == "email_formula":
            raise UsageError(f"{spell('--email')} {_FORMULA}") from refused
        raise UsageError(f"{spell('--email')} is not an address the bridge accepts ({refused.reason})") from refused
    try:
        name = signed_name((raw_name,)) if raw_name is not None else None
    except RefusedRecipient as refused:
        if refused.reason == "name_formula":
            raise UsageError(f"{spell('--name')} {_FORMULA}") from refused
        raise UsageError(f"{spell('--name')}: one line of at most 200 characters ({refused.reason})") from refused
    return email, name


def _check_paths(source: Path, dest: Path, spell: Spelling) -> None:
    if not source.is_file():
        raise UsageError(f"{spell('--in', source)}: no such file")
    if dest.is_dir():
        raise UsageError(f"{spell('--out', dest)} is a directory: name the file to write")
    if not dest.parent.resolve().is_dir():
        raise UsageError(f"{spell('--out', dest)}: no such directory {dest.parent}")
    same = dest.resolve() == source.resolve()
    if not same and dest.exists():
        with contextlib.suppress(OSError):
            same = os.path.samefile(dest, source)
    if same:
        raise UsageError(f"{spell('--out')} must not be {spell('--in')}: the contacts file would be replaced")


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


def _link_base(request: _Request, target: Target, spell: Spelling) -> str:
    """The URL links open: the vendor's function URL, or (``--via api``) its sign-in route on the API's public host."""
    if request.via != "api":
        return target.function_url(request.vendor)
    path = vendor_templates()[request.vendor].sign_in_path
    if path is None:
        raise UsageError(
            f"template.yaml gives {request.vendor} no sign-in route on the HTTP API: use {spell('--via', 'url')}"
        )
    if not target.api_url:
        if target.local:
            raise TargetError(f"{target.where} names no HTTP API URL: restart it with `make run`")
        raise TargetError(f"{target.where} has no output ApiUrl: deploy the current template.yaml")
    return target.api_url + path


def _mint(request: _Request, target: Target, spell: Spelling, *, err: TextIO, out: TextIO) -> int:
    _check_served(request.vendor, target)
    cap = target.link_max_ttl
    ttl = request.ttl if request.ttl is not None else min(LINK_TTL_DEFAULT, cap)
    _check_ttl(ttl, cap, target.where, spell)
    redirect_to = check_destination(request.vendor, request.redirect_to, target, spell("--redirect-to"))
    base = _link_base(request, target, spell)
    if request.via != "api" and link_rules(request.vendor).on_route:
        err.write(
            f"note: {request.vendor} sends readers back to the route pasted in its admin, not to the function URL: "
            f"after the portal they sign in once more ({spell('--via', 'api')} avoids it)\n"
        )
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
            shorten = f"{spell('--name')} or {spell('--redirect-to')}"
            raise UsageError(f"the link would be longer than the bridge accepts: shorten {shorten}")
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
        print(f"{spell.prog}: error: cannot write {request.dest}: {exc.strerror or exc}", file=err)
        return EXIT_WRITE
    print(summary.line(request.dest), file=err)
    return 0


def _local_stack_running() -> bool:
    """``make run`` is up here: its state file names a live process."""
    try:
        read_state()
    except NoLocalStack:
        return False
    return True


def _find(args: argparse.Namespace, spell: Spelling) -> Target:
    """``resolve``; when no deployed stack answers but ``make run`` is running, the error says to use it."""
    try:
        return resolve(args.local, args.stack_name)
    except TargetError as exc:
        if args.local or not _local_stack_running():
            raise
        raise TargetError(f"{exc}; `make run` is running here: add {spell('--local')} to use it") from exc


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    spell = Spelling(_make_target(argv))
    known = vendors()  # template.yaml's, read once (a third of a second)
    args = _parser(spell, known).parse_args(argv)
    try:
        request = _check_arguments(args, spell, known)
        target = _find(args, spell)
        return _mint(request, target, spell, err=err, out=out)
    except UsageError as exc:
        print(f"{spell.prog}: error: {exc}", file=err)
        return EXIT_USAGE
    except TargetError as exc:
        print(f"{spell.prog}: error: {spell.advice(str(exc))}", file=err)
        return EXIT_TARGET
    except KeyboardInterrupt:
        print(f"{spell.prog}: interrupted: nothing written", file=err)
        return 130


if __name__ == "__main__":
    sys.exit(main())
