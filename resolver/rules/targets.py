"""Redirect targets: the one check every href passes, from the rules file or uploaded link data.

A target is only as safe as what a *browser* makes of it. ``urllib.parse`` reads
``https://evil.example.net\\@www.example.com/`` as host www.example.com; a browser (WHATWG
URL parsing, where ``\\`` is a path separator in http(s) URLs) goes to evil.example.net.
So the host is taken from the WHATWG parser (``ada-url``, the parser Node.js uses), and on
top of that anything a browser would silently rewrite is refused rather than guessed at:

- the text is printable ASCII only (no spaces, tabs, newlines, control characters or
  non-ASCII: internationalised hosts are written in their IDNA ``xn--`` form);
- no backslash anywhere, no userinfo (``@`` before the host), no ``%`` in the host;
- the scheme is https (http only where ``allowed_target_schemes`` says so) followed by
  exactly ``//`` and the host;
- the host the browser sees is the host as written (lower-cased): ``127.1``,
  ``0x7f.0.0.1``, full-width or ideographic dots are all rewritten by browsers, so refused;
- that host is on ``allowed_target_hosts`` (``*.example.com`` includes example.com and its
  subdomains); an empty list allows any host that passes the rest.

>>> check_target("https://www.example.com/pip", ("*.example.com",))
>>> check_target("https://evil.example.net\\\\@www.example.com/pip", ("*.example.com",))
'a backslash (browsers read it as /, so the host would not be the one written)'
>>> check_target("https://www.example.com.evil.net/", ("*.example.com",))
'host www.example.com.evil.net is not in resolver.allowed_target_hosts'
>>> check_target("http://www.example.com/", ("*.example.com",))
'scheme http is not allowed (allowed: https; see resolver.allowed_target_schemes)'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import ada_url

DEFAULT_SCHEMES = ("https",)
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]*")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def host_on_list(host: str, allowed: Iterable[str]) -> bool:
    """Is ``host`` (already lower-case) on the list? ``*.example.com`` covers the apex too."""
    for pattern in allowed:
        if pattern.startswith("*."):
            if host == pattern[2:] or host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def browser_host(url: str) -> str | None:
    """The host a browser would connect to for ``url`` (WHATWG parsing), or None if unparsable."""
    try:
        return ada_url.URL(url).hostname or None
    except ValueError:
        return None


def check_target(url: str, allowed_hosts: tuple[str, ...] = (), schemes: tuple[str, ...] = DEFAULT_SCHEMES) -> str | None:
    """Why ``url`` may not be a redirect target (None: it may). ``allowed_hosts`` lower-case."""
    if not isinstance(url, str) or not url:
        return "expected an absolute https URL"
    if len(url) > 2048:
        return "longer than 2048 characters"
    if not _PRINTABLE_ASCII.fullmatch(url):
        bad = next(c for c in url if not ("\x21" <= c <= "\x7e"))
        what = "a space" if bad == " " else ("a control character" if ord(bad) < 0x20 or ord(bad) == 0x7f
                                             else f"the non-ASCII character {bad!r} (write hosts in IDNA xn-- form "
                                                  "and percent-encode paths)")
        return f"{what} (U+{ord(bad):04X}); a browser would rewrite or reject the URL"
    if "\\" in url:
        return "a backslash (browsers read it as /, so the host would not be the one written)"
    scheme_match = _SCHEME.match(url)
    if scheme_match is None:
        return "expected an absolute URL starting with https://"
    scheme = scheme_match.group(1).lower()
    if scheme not in schemes:
        return (f"scheme {scheme} is not allowed (allowed: {', '.join(schemes)}; "
                "see resolver.allowed_target_schemes)")
    rest = url[scheme_match.end():]
    if not rest.startswith("//") or rest.startswith("///"):
        return f"expected {scheme}:// followed by the host"
    authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
    if "@" in authority:
        return "user information before the host (user@host) is not allowed: browsers would hide the real host"
    if "%" in authority:
        return "percent-encoded characters in the host are not allowed"
    written = authority.lower()
    if written.startswith("["):
        written = written[:written.find("]") + 1] if "]" in written else written
    elif ":" in written:
        written = written[:written.find(":")]
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        return "not a URL a browser can parse"
    host = parsed.hostname
    if parsed.protocol != scheme + ":" or not host:
        return "not an absolute URL with a host"
    if host != written:
        return f"a browser reads the host as {host!r}, not {written!r} as written"
    if allowed_hosts and not host_on_list(host, allowed_hosts):
        return f"host {host} is not in resolver.allowed_target_hosts"
    return None
