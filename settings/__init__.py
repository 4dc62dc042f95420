"""Where Serialink finds its configuration and data, from a settings file and the environment.

12-factor: every setting can come from ``SERIALINK_<NAME>`` in the environment, which
wins over ``settings.yaml`` in the config directory, which wins over the defaults here.
With nothing configured, ``serialink serve`` runs the example rules on an embedded
SQLite store under ``./var``.

This is the one place that reads ``SERIALINK_*`` variables: the resolver, the serialiser
and the CLI all take a :class:`Settings`, so ``serialink config show`` prints everything
that is in effect. It imports nothing of Serialink's, so every package may use it.

>>> s = load_settings(env={"SERIALINK_STORE_URL": "redis://localhost:6379/0", "SERIALINK_PORT": "9000"})
>>> s.store_url, s.port, s.rules_file.name
('redis://localhost:6379/0', 9000, 'rules.yaml')
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
SECRET_FIELDS = ("token_secret", "store_url")


def default_config_dir() -> Path:
    """The repository's config/ (source checkout, editable install) or the copy in the wheel."""
    source = PACKAGE_DIR.parent / "config"
    if (source / "gs1" / "gs1-syntax-dictionary.txt").exists():
        return source
    return PACKAGE_DIR / "_config"


@dataclass(frozen=True, slots=True)
class Settings:
    config_dir: Path = field(default_factory=default_config_dir)
    data_dir: Path = Path("var")
    store_url: str = ""  # empty: sqlite:///<data_dir>/serialink.db
    rules_file: Path | None = None  # default: <config_dir>/rules.yaml
    brand_file: Path | None = None  # the built-in pages' theme; default: <config_dir>/brand.yaml
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    token_secret: str = ""  # empty: a secret generated once into <data_dir>/token-secret
    rules_poll_seconds: float = 1.0
    changes_poll_seconds: float = 0.5
    scan_buffer_size: int = 100_000
    scan_flush_seconds: float = 0.2
    max_body_bytes: int = 1_048_576
    max_report_bytes: int = 67_108_864  # line reports and EPCIS capture: a shift's serials in one body
    debug_header: bool = True  # manufacturer tokens may ask for the decision trace
    log_level: str = "info"
    key_dir: Path | None = None  # per-GTIN serial keys; default: <data_dir>/keys
    dl_stem: str = ""  # stem of minted codes' DL URIs; empty: the rules' resolver.root
    notifier: str = "file"  # file | console | module:callable (see resolver.journeys.notify)
    rate_limits: str = ""  # over the defaults, e.g. "register=10/600,claim=5/600"
    metrics_dir: Path | None = None  # set by `serialink serve`: every worker's /metrics snapshot
    fault_codes_file: Path | None = None  # default: <config_dir>/fault-codes.yaml (absent: no catalogue)
    parts_file: Path | None = None  # default: <config_dir>/parts.yaml, or parts.csv if only that exists
    # a trusted header carrying the scanner's country (a CDN's, e.g. CF-IPCountry); empty: none recorded
    country_header: str = ""
    analytics_dir: Path | None = None  # Parquet export read by /v1/analytics; default: <data_dir>/analytics
    clone_rules: Path | None = None  # clone detection rules; default: <config_dir>/clone-rules.yaml

    def __post_init__(self) -> None:
        object.__setattr__(self, "config_dir", Path(self.config_dir))
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.rules_file is None:
            object.__setattr__(self, "rules_file", self.config_dir / "rules.yaml")
        else:
            object.__setattr__(self, "rules_file", Path(self.rules_file))
        object.__setattr__(self, "brand_file", Path(self.brand_file) if self.brand_file
                           else self.config_dir / "brand.yaml")
        if not self.store_url:
            object.__setattr__(self, "store_url", f"sqlite:///{self.data_dir / 'serialink.db'}")
        object.__setattr__(self, "key_dir", Path(self.key_dir) if self.key_dir else self.data_dir / "keys")
        if self.metrics_dir is not None:
            object.__setattr__(self, "metrics_dir", Path(self.metrics_dir))
        object.__setattr__(self, "fault_codes_file", Path(self.fault_codes_file) if self.fault_codes_file
                           else self.config_dir / "fault-codes.yaml")
        if self.parts_file:
            object.__setattr__(self, "parts_file", Path(self.parts_file))
        else:
            yaml_file, csv_file = self.config_dir / "parts.yaml", self.config_dir / "parts.csv"
            object.__setattr__(self, "parts_file", csv_file if csv_file.exists() and not yaml_file.exists() else yaml_file)
        object.__setattr__(self, "analytics_dir",
                           Path(self.analytics_dir) if self.analytics_dir else self.data_dir / "analytics")
        object.__setattr__(self, "clone_rules",
                           Path(self.clone_rules) if self.clone_rules else self.config_dir / "clone-rules.yaml")
        object.__setattr__(self, "country_header", self.country_header.strip().lower())

    def secret(self) -> bytes:
        """The token signing secret; generated once (0600 file) when none is configured."""
        if self.token_secret:
            return self.token_secret.encode()
        path = self.data_dir / "token-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip().encode()

    def masked(self) -> dict[str, Any]:
        """Every setting, secrets masked: what `serialink config show` prints."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = _mask(str(value))
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out


def _mask(value: str) -> str:
    if "://" in value:  # a URL: hide only the password
        parts = urlsplit(value)
        if parts.password:
            return value.replace(f":{parts.password}@", ":***@")
        return value
    return "***"


def stem_problem(stem: object) -> str | None:
    """Why ``stem`` cannot start the DL URIs printed on labels (None: it can).

    A stem is where a phone goes when it scans the code: an ``https`` URL with a host and
    at most a path, no query or fragment (the URI's own ``?17=…`` follows it), no user info.

    >>> stem_problem("https://id.example.com/dl"), stem_problem("not a url")
    (None, "expected an https URL such as https://id.example.com, got 'not a url'")
    """
    from urllib.parse import urlsplit

    if not isinstance(stem, str) or not stem.isascii() or any(c.isspace() or ord(c) < 32 for c in stem):
        return f"expected an https URL such as https://id.example.com, got {stem!r}"
    try:
        parts = urlsplit(stem)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return f"expected an https URL such as https://id.example.com, got {stem!r}"
    if parts.scheme != "https" or not parts.hostname:
        return f"expected an https URL such as https://id.example.com, got {stem!r}"
    if parts.query or parts.fragment or "?" in stem or "#" in stem:
        return f"a stem has no query or fragment (the code's own ?17=… follows it), got {stem!r}"
    if "@" in parts.netloc or "\\" in stem:
        return f"a stem has no user info or backslash, got {stem!r}"
    return None


class SettingsError(ValueError):
    """A setting that cannot be used; the message names where it came from and what fits."""


_KINDS = {"bool": "true or false", "int": "a whole number", "float": "a number"}


def _kind(name: str) -> str:
    kind = str({f.name: f.type for f in fields(Settings)}[name])
    if "Path" in kind:
        return "path"
    for simple in ("bool", "float", "int"):
        if simple in kind:
            return simple
    return "str"


def _coerce(name: str, raw: Any, source: str) -> Any:
    """``raw`` as the type of setting ``name``; a value that does not fit names its source."""
    if raw is None:
        return None
    kind = _kind(name)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
    elif kind in ("int", "float") and not isinstance(raw, bool):
        try:
            return int(str(raw).strip()) if kind == "int" else float(str(raw).strip())
        except ValueError:
            pass
    elif isinstance(raw, (str, Path)) or (kind == "str" and isinstance(raw, (int, float))):
        return str(raw) if kind == "str" else raw
    raise SettingsError(f"{source}: expected {_KINDS.get(kind, 'text')}, got {raw!r}")


def load_settings(config_dir: Path | str | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Defaults, then <config_dir>/settings.yaml, then SERIALINK_* variables, then overrides.

    Raises :class:`SettingsError` naming the file or variable at fault.
    """
    env = os.environ if env is None else env
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    cdir = Path(config_dir or env.get("SERIALINK_CONFIG_DIR") or default_config_dir())
    if not cdir.is_dir():
        source = "SERIALINK_CONFIG_DIR" if not config_dir and env.get("SERIALINK_CONFIG_DIR") else "config directory"
        raise SettingsError(f"{source}: {cdir} is not a directory; give the directory that holds rules.yaml "
                            f"and settings.yaml")
    values["config_dir"] = cdir
    settings_file = cdir / "settings.yaml"
    if settings_file.exists():
        try:
            loaded = yaml.safe_load(settings_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{settings_file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(settings_file)
            raise SettingsError(f"{where}: not readable as YAML ({getattr(exc, 'problem', None) or exc})") from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{settings_file}: expected a mapping of settings")
        unknown = set(loaded) - names
        if unknown:
            raise SettingsError(f"{settings_file}: unknown settings {', '.join(sorted(map(str, unknown)))}; "
                                f"known: {', '.join(sorted(names))}")
        values.update({k: _coerce(k, v, f"{settings_file}: {k}") for k, v in loaded.items()})
    for name in names - {"config_dir"}:
        key = f"SERIALINK_{name.upper()}"
        if key in env:
            values[name] = _coerce(name, env[key], key)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if int(values.get("port", 8080)) not in range(0, 65536):
        raise SettingsError(f"port: expected 0-65535, got {values['port']}")
    if values.get("dl_stem") and (problem := stem_problem(values["dl_stem"])):
        raise SettingsError(f"dl_stem (SERIALINK_DL_STEM): {problem}")
    if int(values.get("workers", 1)) < 1:
        raise SettingsError(f"workers: expected at least 1, got {values['workers']}")
    return Settings(**values)
