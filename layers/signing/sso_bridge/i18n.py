"""The reader's language: ``Accept-Language`` weighed against the catalogs the layer ships; English otherwise.

Messages are written in English where they are defined, marked with ``N_`` so that Babel finds them
(``make messages`` runs ``pybabel extract`` and updates each language's ``.po``), and translated where a page is
rendered (``sso_bridge.pages``). The catalogs are ``locale/<lang>/LC_MESSAGES/sso_bridge.po`` in the repository,
compiled to ``.mo`` when the layer is built (``sso_bridge.catalogs``, run by the layer's Makefile). At run time
only the standard library's ``gettext`` reads them: nothing new on the request path.

Each catalog is read once per container, when the first reader of that language arrives (English, the
messages' own language, needs none). In the source tree, where the tests and ``make run`` import the layer, no
``.mo`` exists: the ``.po`` is compiled in memory instead, with the build's own code, so a catalog edited a
moment ago is the one read, and nothing compiled sits in the repository.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gettext

__all__ = ["DEFAULT_LANGUAGE", "DOMAIN", "LANGUAGES", "LOCALE_DIR", "N_", "negotiate", "translation"]

# The languages the pages speak; each has a catalog under LOCALE_DIR (English's holds no translations).
LANGUAGES = ("en", "de", "fr", "es")
DEFAULT_LANGUAGE = "en"
DOMAIN = "sso_bridge"
LOCALE_DIR = Path(__file__).parent / "locale"

# A browser sends a handful of ranges; a longer header is read as far as this.
_MAX_HEADER = 512
_MAX_RANGES = 16
_RANGE = re.compile(r"(?:[a-z]{1,8}(?:-[a-z0-9]{1,8})*|\*)", re.ASCII)
_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)", re.ASCII)


def N_(message: str) -> str:
    """Marks ``message`` for extraction where it is defined (the name gettext tools look for); it is translated
    where it is shown."""
    return message


def negotiate(accept_language: str | None) -> str:
    """The shipped language the reader prefers most (RFC 9110 ``Accept-Language``, quality values weighed; a
    regional range such as ``de-CH`` counts for its language; ties go to the first listed), else English.

    Hostile headers (huge, malformed, not ASCII) are read as far as they make sense: never an error.
    """
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for item in (accept_language or "")[:_MAX_HEADER].split(",")[:_MAX_RANGES]:
        tag, *parameters = item.split(";")
        tag = tag.strip()
        if not tag.isascii() or not _RANGE.fullmatch(tag.lower()):
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                value = value.strip()
                quality = float(value) if _QVALUE.fullmatch(value) else 0.0
        language = tag.lower().split("-", 1)[0]
        language = DEFAULT_LANGUAGE if language == "*" else language
        if language in LANGUAGES and quality > best_q:
            best, best_q = language, quality
    return best


@functools.cache
def translation(language: str) -> gettext.NullTranslations:
    """The catalog for one of ``LANGUAGES`` (read once); English's messages are their own translation.

    The ``.po`` when it is there (the source tree: always current), else the ``.mo`` (the built layer ships only
    these). Neither (a layer built wrong; ``tests/artifacts`` checks it is not): English, rather than a 500.
    """
    # Imported here, with the first reader who is not English: a cold start serving English needs neither.
    import gettext

    if language not in LANGUAGES:
        raise ValueError(f"not a shipped language: {language!r}")
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if po.is_file():
        import io

        from .catalogs import compile_po

        return gettext.GNUTranslations(io.BytesIO(compile_po(po.read_text(encoding="utf-8"), source=str(po))))
    try:
        with po.with_suffix(".mo").open("rb") as catalog:
            return gettext.GNUTranslations(catalog)
    except OSError:
        return gettext.NullTranslations()
