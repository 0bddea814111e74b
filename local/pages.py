"""The local stack's own small HTML pages (index, demo platform): one look, nothing from the request unescaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from local.server import Reply

__all__ = ["Link", "Section", "html_reply", "index_page"]

Link = tuple[str, str]  # (url, description)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;background:#f5f6f8;color:#1d2330;margin:0}}
main{{max-width:34rem;margin:10vh auto;padding:2rem;background:#fff;border-radius:12px;
box-shadow:0 2px 12px rgba(20,30,60,.08)}}
h1{{font-size:1.4rem;margin-top:0}} .badge{{font-size:.75rem;background:#e8ecf7;color:#3a4a7a;padding:.15rem .5rem;
border-radius:999px;vertical-align:middle}}
label{{display:block;margin:1rem 0 .3rem;font-weight:600}}
input{{width:100%;box-sizing:border-box;padding:.6rem .7rem;font:inherit;border:1px solid #c7cdd9;border-radius:8px}}
button{{margin-top:1.4rem;width:100%;padding:.7rem;font:inherit;font-weight:600;color:#fff;background:#3056d3;
border:0;border-radius:8px;cursor:pointer}} button:hover{{background:#2445b0}}
small,.muted{{color:#667}} code{{word-break:break-all}} .error{{color:#b00020;font-weight:600}}
li{{margin:.3rem 0}}
</style></head><body><main>{body}</main></body></html>
"""

_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
]


def html_reply(status: int, title: str, body_html: str) -> Reply:
    """A page; ``body_html`` must already be escaped by the caller."""
    return Reply(status, list(_HEADERS), _PAGE.format(title=escape(title), body=body_html).encode())


def _link(url: str) -> str:
    # A templated path ({brand}) is shown, not linked: it needs a value first.
    return f"<code>{escape(url)}</code>" if "{" in url else f'<a href="{escape(url)}">{escape(url)}</a>'


def _links(links: Sequence[Link]) -> str:
    items = "".join(f"<li>{_link(url)} <small>{escape(what)}</small></li>" for url, what in links)
    return f"<ul>{items}</ul>" if items else "<p class=muted>None.</p>"


@dataclass(frozen=True)
class Section:
    """A list of links under a heading; ``note`` (plain text) under the heading."""

    title: str
    links: Sequence[Link]
    note: str = ""


def index_page(sections: Sequence[Section], *, notes: Sequence[str] = ()) -> Reply:
    """The index: every section's links, then ``notes`` (plain text, for what is not a page, like moto)."""
    parts = [
        "<h1>sso-bridge <span class=badge>local stack</span></h1>",
        "<p>Open a link below: without a login token you are sent to sign in first, then on to the vendor.</p>",
    ]
    for section in sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        if section.note:
            parts.append(f"<p class=muted>{escape(section.note)}</p>")
        parts.append(_links(section.links))
    parts += [f"<p><small>{_code_urls(text)}</small></p>" for text in notes]
    return html_reply(200, "sso-bridge local stack", "".join(parts))


def _code_urls(text: str) -> str:
    """``text`` escaped, with its URLs as code rather than links (they are not pages to open)."""
    return " ".join(f"<code>{escape(word)}</code>" if "://" in word else escape(word) for word in text.split(" "))
