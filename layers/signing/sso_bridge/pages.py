"""How every page the bridge shows looks: the company's brand, the reader's language, a strict policy.

A reader of a marketing email meets the link's confirmation page first; errors and the signed-out page follow
the same look, so nothing the bridge shows looks like phishing or like a dead end. One stylesheet per container,
made from the brand once (its colour checked by ``settings.Brand``) and allowed by its hash: the policy allows
no script at all, no other style, and images from the logo's origin only.

Nothing is written into a page unescaped: the brand and portal names, URLs and the request id are escaped, and
a translation (ours, from the catalogs) is escaped before its placeholders are filled with escaped values.

One kind of page carries a script: a form that posts a vendor token on to the vendor (``post_form_page`` in
``sso_bridge.responses``), so the token never sits in a URL. Its one fixed script is allowed by its hash, and the
policy names where the form may post (``form-action``); every other page still allows no script at all.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from .i18n import DEFAULT_LANGUAGE, N_, negotiate, translation
from .settings import Brand

__all__ = ["DEFAULT_COLOR", "PORTAL_NAMES", "PageContext", "Rendered", "actions_html", "contrast", "render_page"]

# The bridge's own colour when the company sets none (the local index page's).
DEFAULT_COLOR = "#3056d3"
# PORTAL_NAME's values in template.yaml and the code's defaults: translated when configured as they are.
PORTAL_NAMES = (
    # TRANSLATORS: a portal's name, for {portal} in the messages that have it: in the form those need
    # (German: dative, "dem Portal"; French, Spanish: with the article, "Continuar hacia el portal").
    N_("the portal"),
    # TRANSLATORS: a portal's name (see "the portal").
    N_("the customer center"),
    # TRANSLATORS: a portal's name (see "the portal").
    N_("the help center"),
    # TRANSLATORS: a portal's name (see "the portal").
    N_("the support centre"),
    # TRANSLATORS: a portal's name (see "the portal"): Canny's board of feature requests.
    N_("the feedback board"),
    # TRANSLATORS: a portal's name (see "the portal"): a Discourse forum.
    N_("the community"),
    # TRANSLATORS: a portal's name (see "the portal"): Freshdesk's or Freshservice's portal.
    N_("the support portal"),
)
_DARK_TEXT = "#111827"

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex,nofollow"><title>{title}</title>
<style>{css}</style></head>
<body>{header}<main><h1>{h1}</h1><p>{message}</p>{action}{footer}</main>{script}</body></html>
"""

_CSS = (
    "body{{margin:0;padding:0 1rem;background:#f4f5f7;color:#1d2330;"
    'font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}}'
    "header{{display:flex;align-items:center;gap:.75rem;max-width:34rem;margin:8vh auto 1.25rem;"
    "font-weight:600;font-size:1.125rem}}"
    "header img{{display:block;height:2.5rem;width:auto;max-width:10rem;object-fit:contain}}"
    "main{{max-width:34rem;margin:12vh auto;padding:2rem 2rem 1.5rem;background:#fff;border-top:4px solid {accent};"
    "border-radius:12px;box-shadow:0 2px 12px rgba(20,30,60,.08)}}"
    "header+main{{margin-top:0}}"
    "h1{{margin:0 0 .75rem;font-size:1.5rem;line-height:1.3}}p{{margin:0 0 1rem}}a{{color:{link}}}"
    "form{{margin:1.5rem 0 0}}"
    ".actions{{display:flex;flex-wrap:wrap;align-items:center;gap:.75rem 1.25rem;margin:1.5rem 0 0}}"
    "button,.actions a:first-child{{display:inline-block;box-sizing:border-box;padding:.75rem 1.5rem;border:0;"
    "border-radius:8px;background:{accent};color:{on_accent};font:inherit;font-weight:600;text-decoration:none;"
    "cursor:pointer}}"
    "form button{{width:100%}}"
    "button:hover,.actions a:first-child:hover{{background:{hover}}}"
    "a:focus-visible,button:focus-visible{{outline:3px solid {link};outline-offset:2px}}"
    "footer{{margin-top:2rem;padding-top:1rem;border-top:1px solid #e5e7eb;color:#5b6475;font-size:.875rem}}"
    "footer p{{margin:.25rem 0}}code{{font-size:.9em;word-break:break-all}}"
    "blockquote{{margin:0 0 1rem;padding:.5rem .875rem;border-left:4px solid #d1d5db;background:#f9fafb;"
    "overflow-wrap:anywhere}}"
    "@media (max-width:30rem){{header{{margin-top:4vh}}main{{padding:1.5rem 1.25rem 1.25rem}}}}"
)


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(channel):02x}" for channel in rgb)


def _luminance(color: str) -> float:
    """WCAG 2 relative luminance."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(channel) for channel in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _darker(color: str, amount: float) -> str:
    r, g, b = _rgb(color)
    return _hex((r * (1 - amount), g * (1 - amount), b * (1 - amount)))


def _readable_on_white(color: str) -> str:
    """``color``, darkened as little as needed for text on white (WCAG AA, 4.5:1): a pale brand colour still
    makes readable links."""
    shade = color
    for step in range(1, 11):
        if contrast(shade, "#ffffff") >= 4.5:
            break
        shade = _darker(color, step / 10)
    return shade


# What may follow ``form-action``: origins only, in the characters of a host name (no ';' to end the directive).
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]{1,5})?", re.ASCII)


def _digest(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@functools.cache
def _script_source(script: str) -> str:
    """``'sha256-...'`` for an inline script; made once per script (each caller has one fixed script)."""
    if "<" in script:  # "</script>" or "<!--" would end or change the element it sits in
        raise ValueError("an inline script must not contain '<'")
    return f"'sha256-{_digest(script)}'"


def _form_action(origins: Sequence[str]) -> str:
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(f"form-action takes origins like https://host, got {origin!r}")
    return " ".join(dict.fromkeys(origins))


@dataclass(frozen=True, slots=True)
class _Look:
    css: str
    csp: str


@functools.cache
def _look(brand: Brand) -> _Look:
    """The stylesheet and the policy that allows it (and the logo), made once per brand, so once per container."""
    accent = brand.color or DEFAULT_COLOR
    on_accent = "#ffffff" if contrast(accent, "#ffffff") >= contrast(accent, _DARK_TEXT) else _DARK_TEXT
    css = _CSS.format(accent=accent, on_accent=on_accent, hover=_darker(accent, 0.15), link=_readable_on_white(accent))
    digest = _digest(css)
    images = f"; img-src {brand.logo_origin}" if brand.logo_origin else ""
    csp = f"default-src 'none'; style-src 'sha256-{digest}'{images}; base-uri 'none'; frame-ancestors 'none'"
    return _Look(css=css, csp=csp)


@dataclass(frozen=True, slots=True)
class PageContext:
    """Whom a page is for (their language) and whose it is (the company's brand, its way back to the platform)."""

    language: str = DEFAULT_LANGUAGE
    brand: Brand = field(default_factory=Brand)
    home_url: str | None = None

    @classmethod
    def for_request(cls, accept_language: str | None, *, brand: Brand, home_url: str | None) -> PageContext:
        return cls(language=negotiate(accept_language), brand=brand, home_url=home_url)

    def text(self, message: str, **values: str) -> str:
        """``message`` (a msgid) in the reader's language, ``{name}`` placeholders filled: plain text."""
        translated = message if self.language == DEFAULT_LANGUAGE else translation(self.language).gettext(message)
        for name, value in values.items():
            translated = translated.replace(f"{{{name}}}", value)
        return translated

    def html(self, message: str, **markup: str) -> str:
        """``message`` translated and escaped, its placeholders filled with ``markup`` (HTML, escaped by the
        caller)."""
        translated = escape(self.text(message))
        for name, value in markup.items():
            translated = translated.replace(f"{{{name}}}", value)
        return translated

    def name(self, configured: str) -> str:
        """A configured name (``PORTAL_NAME``) in the reader's language when it is one the catalogs know ("the
        support centre"); a company's own name stays as it is."""
        if self.language == DEFAULT_LANGUAGE or not configured:
            return configured
        return translation(self.language).gettext(configured)

    def home_link(self) -> tuple[str, str] | None:
        """The way back to the platform, labelled with the company's name when it has one."""
        if self.home_url is None:
            return None
        brand = self.brand.name
        label = self.text(N_("Back to {brand}"), brand=brand) if brand else self.text(N_("Back to the home page"))
        return self.home_url, label


@dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    headers: dict[str, str]


def actions_html(links: Sequence[tuple[str, str]]) -> str:
    """Links as the page's ways forward, the first one shown as its button; ``(url, label)``, label plain text."""
    items = " ".join(f'<a href="{escape(url, quote=True)}">{escape(label)}</a>' for url, label in links)
    return f'<p class="actions">{items}</p>' if items else ""


def render_page(
    context: PageContext,
    *,
    title: str,
    message_html: str,
    action_html: str = "",
    request_id: str | None = None,
    script: str = "",
    form_action: Sequence[str] = (),
) -> Rendered:
    """A whole page: ``title`` plain text (translated), ``message_html`` and ``action_html`` HTML.

    ``script``: one fixed inline script, run after the page's content and allowed by its hash (never request data:
    the hash would allow whatever it holds). ``form_action``: the origins the page's forms may post to, and be
    redirected on to (browsers check each redirect after a form's POST against it).
    """
    brand = context.brand
    look = _look(brand)
    csp = look.csp
    if script:
        csp += f"; script-src {_script_source(script)}"
    if form_action:
        csp += f"; form-action {_form_action(form_action)}"
    logo = f'<img src="{escape(brand.logo_url, quote=True)}" alt="">' if brand.logo_url else ""
    name = f"<span>{escape(brand.name)}</span>" if brand.name else ""
    header = f"<header>{logo}{name}</header>" if logo or name else ""
    footer = []
    if brand.support_url:
        link = f'<a href="{escape(brand.support_url, quote=True)}">{escape(context.text(N_("Contact support")))}</a>'
        footer.append(f"<p>{escape(context.text(N_('Need help?')))} {link}</p>")
    if request_id:
        reference = context.html(N_("Reference: {reference}"), reference=f"<code>{escape(request_id)}</code>")
        footer.append(f"<p><small>{reference}</small></p>")
    body = _PAGE.format(
        lang=context.language,
        title=escape(f"{brand.name} · {title}" if brand.name else title),
        css=look.css,
        header=header,
        h1=escape(title),
        message=message_html,
        action=action_html,
        footer=f"<footer>{''.join(footer)}</footer>" if footer else "",
        script=f"<script>{script}</script>" if script else "",
    )
    headers = {
        "Content-Security-Policy": csp,
        "Content-Language": context.language,
        "Vary": "Accept-Language",
    }
    return Rendered(body=body, headers=headers)
