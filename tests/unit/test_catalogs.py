"""The pages' languages: every message the pages use is in every catalog, the build compiles the catalogs as
Babel would, the runtime finds them in the source tree and in the built layer, and ``Accept-Language`` picks.

Extraction is Babel's own (``pybabel extract``, as ``make messages`` runs it), so a message added without a
translation, or added without the ``N_`` marker that extraction looks for, fails here before a reader meets it
in English on a German page.
"""

from __future__ import annotations

import gettext
import importlib
import io
import pkgutil
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po as babel_read_po

import sso_bridge
from local.template import load_template
from sso_bridge import catalogs, i18n
from sso_bridge.catalogs import CatalogError, compile_catalogs, compile_po, read_po
from sso_bridge.errors import BridgeError
from sso_bridge.i18n import LANGUAGES, LOCALE_DIR, negotiate, translation
from sso_bridge.pages import PORTAL_NAMES

LAYER_PACKAGE = Path(sso_bridge.__file__).parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def extracted() -> set[str]:
    """Every msgid in the layer and the vendors' functions (their own refusals), found as `make messages` does."""
    found = set()
    for folder in (LAYER_PACKAGE, LAYER_PACKAGE.parents[2] / "functions"):
        found |= {message for _, _, message, _, _ in extract_from_dir(str(folder)) if isinstance(message, str)}
    return found


def catalog(language: str) -> dict[str, catalogs.Message]:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "sso_bridge.po"
    return {message.msgid: message for message in read_po(po.read_text(encoding="utf-8"), source=str(po))}


def all_bridge_errors() -> set[type[BridgeError]]:
    for module in pkgutil.iter_modules([str(LAYER_PACKAGE)]):
        if module.name not in ("oidc_provider", "id_token"):  # these import the OIDC layer's packages lazily
            importlib.import_module(f"sso_bridge.{module.name}")
    found: set[type[BridgeError]] = set()
    todo: list[type[BridgeError]] = [BridgeError]
    while todo:
        kind = todo.pop()
        found.add(kind)
        todo += kind.__subclasses__()
    return found


# --- every catalog has every message ---------------------------------------------------------------------------


def test_the_shipped_languages_are_the_catalogs_in_the_repository() -> None:
    present = {path.parent.parent.name for path in LOCALE_DIR.glob("*/LC_MESSAGES/sso_bridge.po")}
    assert present == set(LANGUAGES)
    assert i18n.DEFAULT_LANGUAGE == "en"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_the_pages_use_is_in_the_catalog(language: str) -> None:
    entries = catalog(language)
    missing = extracted() - set(entries)
    assert not missing, f"{language}: run `make messages` and translate: {sorted(missing)}"


@pytest.mark.parametrize("language", [language for language in LANGUAGES if language != "en"])
def test_every_message_is_translated_with_the_same_placeholders(language: str) -> None:
    entries = catalog(language)
    for msgid in sorted(extracted()):
        entry = entries[msgid]
        assert entry.translated, f"{language}: {msgid!r} is untranslated or fuzzy"
        assert set(PLACEHOLDER.findall(entry.msgstr[0])) == set(PLACEHOLDER.findall(msgid)), (language, msgid)


def test_every_refusals_title_message_and_label_is_marked_for_translation() -> None:
    # A new error class whose strings lack N_ would show English on every page: extraction must see them
    messages = extracted()
    for kind in all_bridge_errors():
        for text in (kind.title, kind.message, kind.retry_label):
            assert text in messages, f"{kind.__name__}: mark {text!r} with N_ (sso_bridge.i18n)"


def test_every_portal_name_the_template_sets_is_translated() -> None:
    """PORTAL_NAME's values are translated when they are names the catalogs know ("the support centre")."""
    template = load_template()
    names = {
        resource["Properties"]["Environment"]["Variables"]["PORTAL_NAME"]
        for resource in template["Resources"].values()
        if "PORTAL_NAME" in resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
    }
    assert names
    assert names <= set(PORTAL_NAMES)
    for language in ("de", "fr", "es"):
        assert all(translation(language).gettext(name) != name for name in names), language


def test_the_template_for_new_languages_is_current() -> None:
    """``sso_bridge.pot`` (what `pybabel init` starts a new language from) holds exactly the messages in use."""
    with (LOCALE_DIR / "sso_bridge.pot").open("rb") as pot:
        template = {message.id for message in babel_read_po(pot) if message.id}
    assert template == extracted(), "run `make messages`"


# --- the build's compiler --------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_build_compiles_each_catalog_as_babel_does(language: str) -> None:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "sso_bridge.po"
    ours = gettext.GNUTranslations(io.BytesIO(compile_po(po.read_text(encoding="utf-8"))))
    with po.open("rb") as source:
        reference = io.BytesIO()
        write_mo(reference, babel_read_po(source))
    reference.seek(0)
    assert ours._catalog == gettext.GNUTranslations(reference)._catalog  # type: ignore[attr-defined]


TRICKY_PO = r"""# a comment
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

#. TRANSLATORS: continued lines and escapes
msgid ""
"Line one\n"
"and \"two\"\t\\"
msgstr ""
"Zeile eins\n"
"und „zwei“\t\\"

#, fuzzy
msgid "Fuzzy"
msgstr "Unsicher"

msgid "Untranslated"
msgstr ""

msgctxt "button"
msgid "Open"
msgstr "Öffnen"

msgid "one file"
msgid_plural "{n} files"
msgstr[0] "eine Datei"
msgstr[1] "{n} Dateien"

#~ msgid "Obsolete"
#~ msgstr "Veraltet"
"""


def test_the_compiler_reads_what_babel_and_gnu_gettext_write() -> None:
    ours = gettext.GNUTranslations(io.BytesIO(compile_po(TRICKY_PO)))
    assert ours.gettext('Line one\nand "two"\t\\') == "Zeile eins\nund „zwei“\t\\"
    assert ours.gettext("Fuzzy") == "Fuzzy"  # a fuzzy entry is a guess: English until someone checks it
    assert ours.gettext("Untranslated") == "Untranslated"
    assert ours.pgettext("button", "Open") == "Öffnen"
    assert ours.gettext("Open") == "Open"
    assert [ours.ngettext("one file", "{n} files", n) for n in (1, 2)] == ["eine Datei", "{n} Dateien"]
    assert ours.gettext("Obsolete") == "Obsolete"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('msgid "a"\nmsgstr "b', 2),  # unterminated string
        ('msgid "a"\nmsgstr "b"\n"c', 3),
        ('msgid "a"\nmsgstr "b"\nmsgstr "c"\n', 3),
        ('msgid "a"\nmsgstr "\\q"\n', 2),  # no such escape
        ('msgid "a"\nnonsense\n', 2),
    ],
)
def test_a_broken_catalog_stops_the_build_naming_its_line(text: str, line: int) -> None:
    with pytest.raises(CatalogError, match=rf"x\.po:{line}:"):
        compile_po(text, source="x.po")


def test_a_catalog_entry_without_msgstr_stops_the_build() -> None:
    with pytest.raises(CatalogError, match="without msgstr"):
        compile_po('msgid "a"\n', source="x.po")


def test_the_build_command_writes_a_mo_per_language_and_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What layers/signing/Makefile runs (python3.13 -m sso_bridge.catalogs SOURCE TARGET)
    assert catalogs.main([str(LOCALE_DIR), str(tmp_path / "out")]) == 0
    built = sorted(path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*.mo"))
    assert built == sorted(f"{language}/LC_MESSAGES/sso_bridge.mo" for language in LANGUAGES)

    broken = tmp_path / "broken" / "de" / "LC_MESSAGES"
    broken.mkdir(parents=True)
    (broken / "sso_bridge.po").write_text('msgid "a"\nmsgstr "b\n')
    assert catalogs.main([str(tmp_path / "broken"), str(tmp_path / "out2")]) == 1
    assert "sso_bridge.po:2:" in capsys.readouterr().err
    assert catalogs.main([str(tmp_path / "empty"), str(tmp_path / "out3")]) == 1
    assert catalogs.main(["one"]) == 2


# --- what the runtime reads --------------------------------------------------------------------------------------


def test_the_built_layer_reads_its_compiled_catalogs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a layer as the build leaves it: .mo files, no .po
    compile_catalogs(LOCALE_DIR, tmp_path)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    translation.cache_clear()
    try:
        # Then each language is read from its .mo
        assert {language: translation(language).gettext("Continue") for language in LANGUAGES} == {
            "en": "Continue",
            "de": "Weiter",
            "fr": "Continuer",
            "es": "Continuar",
        }
    finally:
        translation.cache_clear()


def test_a_layer_without_catalogs_speaks_english_rather_than_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    translation.cache_clear()
    try:
        assert translation("de").gettext("Continue") == "Continue"
    finally:
        translation.cache_clear()


def test_the_source_tree_reads_the_po_files_as_they_are() -> None:
    # No .mo is kept in the repository: development, tests and `make run` compile the .po in memory
    assert not list(LOCALE_DIR.rglob("*.mo"))
    translation.cache_clear()
    assert translation("fr").gettext("Continue") == "Continuer"


# --- Accept-Language -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("de", "de"),
        ("de-CH", "de"),
        ("DE-de", "de"),
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("en-US,en;q=0.9,es;q=0.8", "en"),
        ("it,es;q=0.3,de;q=0.5", "de"),  # Italian is not shipped: the best of the rest
        ("en;q=0.4, fr;q=0.8", "fr"),  # quality, not order
        ("es;q=0.8, de;q=0.8", "es"),  # a tie: the first listed
        ("it, pt", "en"),  # nothing shipped: English
        ("*", "en"),
        ("fr;q=0, de;q=0.001", "de"),  # q=0 means "not this one"
        ("fr;q=0", "en"),
        ("fr;q=1.5, de;q=0.2", "de"),  # an invalid quality counts as none
        ("fr;q=abc", "en"),
        ("fr;q=nan", "en"),
        ("fr;level=1;q=0.7, es;q=0.6", "fr"),
        ("zz-de, de-", "en"),  # not a language range
        ("dé, fr", "fr"),
        ("\udcff, es", "es"),  # a lone surrogate from an escaped event
        ("de" + ",x" * 5000, "de"),
        ("x," * 5000 + "de", "en"),  # read as far as a browser would send
    ],
)
def test_accept_language_picks_the_readers_language(header: str | None, language: str) -> None:
    assert negotiate(header) == language
