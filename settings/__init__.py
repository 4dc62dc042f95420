"""Where Serialink finds its configuration and data, from a settings file and the environment.

12-factor: every setting can come from ``SERIALINK_<NAME>`` in the environment, which
wins over ``settings.yaml`` in the config directory, which wins over the defaults here.
With nothing configured, ``serialink serve`` runs the example rules on an embedded
SQLite store under ``./var``.

>>> s = load_settings(env={"SERIALINK_STORE_URL": "redis://localhost:6379/0", "SERIALINK_PORT": "9000"})
>>> s.store_url, s.port, s.rules_file.name
('redis://localhost:6379/0', 9000, 'rules.yaml')
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

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
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    token_secret: str = ""  # empty: a secret generated once into <data_dir>/token-secret
    rules_poll_seconds: float = 1.0
    changes_poll_seconds: float = 0.5
    scan_buffer_size: int = 100_000
    scan_flush_seconds: float = 0.2
    max_body_bytes: int = 1_048_576
    debug_header: bool = True  # manufacturer tokens may ask for the decision trace
    log_level: str = "info"

    def __post_init__(self) -> None:
        object.__setattr__(self, "config_dir", Path(self.config_dir))
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.rules_file is None:
            object.__setattr__(self, "rules_file", self.config_dir / "rules.yaml")
        else:
            object.__setattr__(self, "rules_file", Path(self.rules_file))
        if not self.store_url:
            object.__setattr__(self, "store_url", f"sqlite:///{self.data_dir / 'serialink.db'}")

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
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.password:
            return value.replace(f":{parts.password}@", ":***@")
        return value
    return "***"


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if raw is None:
        return None
    if "bool" in str(kind):
        return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
    if "int" in str(kind) and "Path" not in str(kind):
        return int(raw)
    if "float" in str(kind):
        return float(raw)
    return raw


def load_settings(config_dir: Path | str | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Defaults, then <config_dir>/settings.yaml, then SERIALINK_* variables, then overrides."""
    env = os.environ if env is None else env
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    cdir = Path(config_dir or env.get("SERIALINK_CONFIG_DIR") or default_config_dir())
    values["config_dir"] = cdir
    settings_file = cdir / "settings.yaml"
    if settings_file.exists():
        loaded = yaml.safe_load(settings_file.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{settings_file}: expected a mapping of settings")
        unknown = set(loaded) - names
        if unknown:
            raise ValueError(f"{settings_file}: unknown settings {', '.join(sorted(unknown))}")
        values.update({k: _coerce(k, v) for k, v in loaded.items()})
    for name in names - {"config_dir"}:
        key = f"SERIALINK_{name.upper()}"
        if key in env:
            values[name] = _coerce(name, env[key])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
