"""The brand theme of the built-in pages: config/brand.yaml, checked by config/brand.schema.json.

A manufacturer without its own site still ships these pages under its name, so what makes
them its own — name, logo, colours, fonts, support contact, privacy/imprint/cookie links,
and per product the model name, pictures, a short description, the moments of its life and
its recall campaigns — is configuration, not code. Brand texts may be one string or a map
from language to string; :func:`pick` chooses the visitor's.

The file is reloaded while serving, like the routing rules (resolver.rules.holder): a page
request that finds the file changed (checked at most once per poll interval, a ``stat``)
loads it; only a file that passes the schema and the colour checks replaces the theme, in
one assignment. A bad file is logged with every problem at file:line:column and the last
good theme keeps serving. Without a file the pages use :data:`DEFAULT`, a neutral theme.

>>> pick({"en": "Boiler", "de": "Kessel"}, "de-AT"), pick("Boiler", "de"), pick(None, "en")
('Kessel', 'Boiler', None)
>>> round(contrast("#0b5cad", "#ffffff"), 2) >= 4.5
True
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from jsonschema.exceptions import best_match

from resolver.rules.yaml_source import Positions, Problem, SourceError, load
from settings import default_config_dir

log = logging.getLogger("serialink.resolver.pages.brand")

IMAGE_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".webp": "image/webp", ".ico": "image/x-icon"}


def pick(value: Any, lang: str) -> str | None:
    """A brand text in ``lang``: the exact language, its primary subtag, English, else the first."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, Mapping) or not value:  # a template asking for a text the theme leaves out
        return None
    primary = lang.lower().split("-")[0]
    for key in (lang, primary, "en"):
        if key in value:
            return str(value[key])
    by_primary = {k.lower().split("-")[0]: v for k, v in value.items()}
    return str(by_primary.get(primary) or next(iter(value.values())))


def _luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@dataclass(frozen=True)
class Colours:
    primary: str = "#0b5cad"
    on_primary: str = "#ffffff"
    text: str = "#1b1b1b"
    muted: str = "#4d5560"
    background: str = "#ffffff"
    surface: str = "#f3f6fa"
    focus: str = "#1b1b1b"
    danger: str = "#a4161a"


#: (foreground, background, minimum ratio, why): what a theme's colours must reach
CONTRASTS = (
    ("on_primary", "primary", 4.5, "text on buttons"),
    ("text", "background", 4.5, "body text"),
    ("muted", "background", 4.5, "secondary text"),
    ("primary", "background", 4.5, "links"),
    ("text", "surface", 4.5, "text on cards"),
    ("primary", "surface", 4.5, "links on cards"),
    ("focus", "background", 3.0, "the focus ring (WCAG 2.4.13)"),
    ("focus", "surface", 3.0, "the focus ring on cards"),
    ("danger", "background", 4.5, "errors and the recall banner"),
)


@dataclass(frozen=True)
class Product:
    """One product's presentation: model name, pictures, description, moments, recall campaigns."""

    gtin: str
    model: Any = None
    description: Any = None
    images: tuple[Mapping[str, Any], ...] = ()
    moments: Mapping[str, Any] = field(default_factory=dict)
    recall: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Brand:
    name: str = ""
    logo: str | None = None
    favicon: str | None = None
    colours: Colours = Colours()
    font_stack: str = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'
    support: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    products: Mapping[str, Product] = field(default_factory=dict)
    assets: Path | None = None

    def product(self, gtin: str) -> Product:
        return self.products.get(gtin) or Product(gtin)

    def image_url(self, src: str | None) -> str | None:
        """An https picture as it is; a file of the assets folder under /u/assets/."""
        if src is None:
            return None
        return src if src.startswith("https://") else f"/u/assets/{src}"

    def asset_file(self, name: str) -> Path | None:
        """The file behind /u/assets/NAME: only names the theme itself uses, in its folder."""
        if self.assets is None or name not in self.asset_names:
            return None
        path = self.assets / name
        return path if path.is_file() else None

    @property
    def asset_names(self) -> frozenset[str]:
        names = {self.logo, self.favicon} | {img["src"] for p in self.products.values() for img in p.images}
        return frozenset(n for n in names if n and not n.startswith("https://"))

    @property
    def image_origins(self) -> tuple[str, ...]:
        """Hosts of https pictures, for the pages' Content-Security-Policy (img-src)."""
        urls = [self.logo, self.favicon] + [img["src"] for p in self.products.values() for img in p.images]
        return tuple(sorted({f"https://{urlsplit(u).netloc}" for u in urls if u and u.startswith("https://")}))


DEFAULT = Brand()


class BrandInvalid(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((default_config_dir() / "brand.schema.json").read_text(encoding="utf-8"))
    return loaded


def _schema_problems(data: Any, positions: Positions) -> list[Problem]:
    validator = jsonschema.Draft7Validator(schema())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: positions.lookup(e.absolute_path)):
        specific = best_match(error.context) if error.context else error
        path = list(specific.absolute_path)
        where = ".".join(str(p) for p in path) or "(top level)"
        problems.append(Problem(positions.at(path), f"{where}: {specific.message}"))
    return problems


def parse_brand(text: str, source: str, assets_base: Path | None = None) -> Brand:
    """A theme from YAML text; BrandInvalid listing every problem at file:line:column."""
    try:
        data, positions = load(text, source)
    except SourceError as exc:
        raise BrandInvalid([Problem(f"{exc.file}:{exc.line}:{exc.column}", exc.reason)]) from None
    problems = _schema_problems(data, positions)
    if problems:
        raise BrandInvalid(problems)
    raw = data["brand"]
    colours = Colours(**raw.get("colours", {}))
    for fg, bg, minimum, why in CONTRASTS:
        ratio = contrast(getattr(colours, fg), getattr(colours, bg))
        if ratio < minimum:
            problems.append(Problem(positions.at(("brand", "colours", fg)),
                                    f"brand.colours.{fg} on {bg} is {ratio:.2f}:1; {why} need at least {minimum}:1"))
    products: dict[str, Product] = {}
    for i, p in enumerate(data.get("products", [])):
        if p["gtin"] in products:
            problems.append(Problem(positions.at(("products", i, "gtin")), f"product {p['gtin']} is listed twice"))
        products[p["gtin"]] = Product(p["gtin"], p.get("model"), p.get("description"), tuple(p.get("images", ())),
                                      p.get("moments", {}), p.get("recall", {}))
    if problems:
        raise BrandInvalid(problems)
    base = assets_base or Path(source).resolve().parent
    return Brand(name=raw["name"], logo=raw.get("logo"), favicon=raw.get("favicon"), colours=colours,
                 font_stack=raw.get("font_stack", Brand.font_stack), support=raw.get("support", {}),
                 links=raw.get("links", {}), products=products, assets=base / raw.get("assets", "brand"))


def load_brand(path: Path) -> Brand:
    return parse_brand(path.read_text(encoding="utf-8"), str(path))


class BrandHolder:
    """The theme being served and its file; reloads on change (see the module docstring)."""

    def __init__(self, path: Path | None, interval: float = 1.0) -> None:
        self.path = Path(path) if path is not None else None
        self.interval = interval
        self.stale: str | None = None  # why the file on disk is not what is served
        self._checked = time.monotonic()
        self._stamp = self._file_stamp()
        self._current = DEFAULT
        if self._stamp is not None:
            self.reload()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path) if self.path is not None else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st is not None else None

    @property
    def current(self) -> Brand:
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._checked = now
            stamp = self._file_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                if stamp is None:
                    log.warning("brand: %s is gone; still serving the last good theme", self.path)
                else:
                    self.reload()
        return self._current

    def reload(self) -> tuple[bool, list[str]]:
        """Load the file; keep the current theme if it is refused. Never raises."""
        assert self.path is not None
        try:
            brand = load_brand(self.path)
        except BrandInvalid as exc:
            for problem in exc.problems:
                log.error("brand theme refused: %s", problem)
            self.stale = f"{self.path} was refused: {exc.problems[0]}"
            return False, [str(p) for p in exc.problems]
        except Exception as exc:  # unreadable file, anything else: keep serving
            log.exception("brand theme: loading %s failed", self.path)
            self.stale = f"loading {self.path} failed: {type(exc).__name__}: {exc}"
            return False, [self.stale]
        self._current, self.stale = brand, None
        log.info("brand theme loaded from %s", self.path)
        return True, []
