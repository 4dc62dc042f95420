"""The rules a worker is serving, and how they change: validate first, then swap atomically.

A reload (file change, SIGHUP, or an API call) compiles the whole file; only a file with
no errors replaces the current rules — one attribute assignment, so a request sees the
old rules or the new, never a mix. A bad file is logged with every problem at
file:line:column and the old rules keep serving; until a later change loads, the
holder is ``stale`` (since when, and why), which /readyz and /metrics show. The last good
file is kept beside the data, so a worker that starts while the file on disk is broken
serves the last good rules (and says so) instead of refusing to start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from resolver.rules.compiler import CompiledRules, RulesInvalid, compile_rules, load_rules
from resolver.rules.yaml_source import Problem

log = logging.getLogger("serialink.resolver.rules")


class RulesStale(NamedTuple):
    """The file on disk is not what is served: since when (epoch seconds) and why."""

    since: float
    reason: str

    def __str__(self) -> str:
        when = datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return f"rules stale since {when}: {self.reason}"


def _summary(problems: list[Problem]) -> str:
    errors = [str(p) for p in problems if getattr(p, "severity", "error") == "error"] or [str(p) for p in problems]
    return errors[0] + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else "")


class RulesHolder:
    def __init__(self, path: Path, data_dir: Path, on_reload: Callable[[str, str], None] | None = None) -> None:
        self.path = Path(path)
        self.last_good = Path(data_dir) / "rules.last-good.yaml"
        self._on_reload = on_reload
        self._stamp: tuple[int, int] | None = None
        self.stale: RulesStale | None = None  # shown by /readyz and /metrics
        self.current: CompiledRules = self._initial()

    def _initial(self) -> CompiledRules:
        """The file's rules; if it is invalid (or compiling it fails in any way), the last good
        copy's, saying so — a worker that refused to start here would only be respawned into
        the same refusal, over and over."""
        self._stamp = self._file_stamp()
        try:
            rules = load_rules(self.path)
        except Exception as exc:
            reason = _summary(exc.problems) if isinstance(exc, RulesInvalid) else f"{type(exc).__name__}: {exc}"
            for problem in getattr(exc, "problems", [reason]):
                log.error("rules: %s", problem)
            if not self.last_good.exists():
                raise
            try:
                rules = compile_rules(self.last_good.read_text(encoding="utf-8"), str(self.last_good))
            except RulesInvalid as bad:
                log.error("rules: the last good copy %s is invalid too: %s", self.last_good, _summary(bad.problems))
                raise exc from None
            log.error("rules: %s is invalid; serving the last good rules (version %s) from %s",
                      self.path, rules.version, self.last_good)
            self._mark_stale(f"{self.path} is invalid, serving the last good copy {self.last_good}: {reason}")
            self._report("rejected", rules.version)
            self._report("last_good", rules.version)
            return rules
        self._save_last_good()
        self._report("loaded", rules.version)
        return rules

    def _mark_stale(self, reason: str) -> None:
        self.stale = RulesStale(self.stale.since if self.stale else time.time(), reason)

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _save_last_good(self) -> None:
        try:
            self.last_good.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.last_good.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(self.path.read_bytes())
            os.replace(tmp, self.last_good)
        except OSError as exc:
            log.warning("rules: could not keep a copy of the last good rules: %s", exc)

    def _report(self, outcome: str, version: str) -> None:
        if self._on_reload is not None:
            try:
                self._on_reload(outcome, version)
            except Exception:
                log.exception("rules: could not record the %s reload", outcome)

    def reload(self) -> tuple[bool, list[str]]:
        """Validate the file and swap it in; (accepted, problems as text). Never raises:
        whatever goes wrong is logged, counted and shown by /readyz, and the current rules
        keep serving until a later change loads."""
        self._stamp = self._file_stamp()
        try:
            rules = load_rules(self.path)
        except RulesInvalid as exc:
            problems = [str(p) for p in exc.problems]
            for problem in problems:
                log.error("rules reload rejected: %s", problem)
            log.error("rules reload rejected; still serving version %s", self.current.version)
            self._mark_stale(f"{self.path} was refused, still serving version {self.current.version}: "
                             f"{_summary(exc.problems)}")
            self._report("rejected", self.current.version)
            return False, problems
        except Exception as exc:
            log.exception("rules reload failed; still serving version %s", self.current.version)
            self._mark_stale(f"reloading {self.path} failed, still serving version {self.current.version}: "
                             f"{type(exc).__name__}: {exc}")
            self._report("failed", self.current.version)
            return False, [f"{type(exc).__name__}: {exc}"]
        self.current = rules  # the atomic swap
        self.stale = None
        self._save_last_good()
        log.info("rules reloaded: version %s from %s", rules.version, self.path)
        self._report("loaded", rules.version)
        return True, [str(p) for p in rules.warnings]

    def changed(self) -> bool:
        return self._file_stamp() != self._stamp

    async def watch(self, interval: float) -> None:
        """Reload when the file changes or the process gets SIGHUP (a background task).

        The loop outlives any error: one that escaped it would end the task without a
        word, and every later edit would be ignored while /readyz said all was well."""
        loop = asyncio.get_running_loop()
        hup = asyncio.Event()
        try:
            loop.add_signal_handler(signal.SIGHUP, hup.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (e.g. tests): file watching still works
        while True:
            try:
                await asyncio.wait_for(hup.wait(), interval)
            except TimeoutError:
                pass
            try:
                if hup.is_set() or self.changed():
                    hup.clear()
                    self.reload()
            except Exception as exc:  # reload() catches its own; this is for anything around it
                log.exception("rules watcher: checking %s failed; retrying", self.path)
                self._mark_stale(f"watching {self.path} failed: {type(exc).__name__}: {exc}")
                self._report("failed", self.current.version)
