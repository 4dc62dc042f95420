"""The rules a worker is serving, and how they change: validate first, then swap atomically.

A reload (file change, SIGHUP, or an API call) compiles the whole file; only a file with
no errors replaces the current rules — one attribute assignment, so a request sees the
old rules or the new, never a mix. A bad file is logged with every problem at
file:line:column and the old rules keep serving. The last good file is kept beside the
data, so a worker that starts while the file on disk is broken serves the last good
rules instead of refusing to start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from resolver.rules.compiler import CompiledRules, RulesInvalid, compile_rules, load_rules

log = logging.getLogger("serialink.resolver.rules")


class RulesHolder:
    def __init__(self, path: Path, data_dir: Path, on_reload: Callable[[str, str], None] | None = None) -> None:
        self.path = Path(path)
        self.last_good = Path(data_dir) / "rules.last-good.yaml"
        self._on_reload = on_reload
        self._stamp: tuple[int, int] | None = None
        self.current: CompiledRules = self._initial()

    def _initial(self) -> CompiledRules:
        try:
            rules = load_rules(self.path)
        except RulesInvalid as exc:
            for problem in exc.problems:
                log.error("rules: %s", problem)
            if not self.last_good.exists():
                raise
            log.error("rules: %s is invalid; serving the last good rules from %s", self.path, self.last_good)
            rules = compile_rules(self.last_good.read_text(encoding="utf-8"), str(self.path))
            self._stamp = self._file_stamp()
            self._report("rejected", rules.version)
            return rules
        self._stamp = self._file_stamp()
        self._save_last_good()
        self._report("loaded", rules.version)
        return rules

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
            self._on_reload(outcome, version)

    def reload(self) -> tuple[bool, list[str]]:
        """Validate the file and swap it in; (accepted, problems as text)."""
        self._stamp = self._file_stamp()
        try:
            rules = load_rules(self.path)
        except RulesInvalid as exc:
            problems = [str(p) for p in exc.problems]
            for problem in problems:
                log.error("rules reload rejected: %s", problem)
            log.error("rules reload rejected; still serving version %s", self.current.version)
            self._report("rejected", self.current.version)
            return False, problems
        self.current = rules  # the atomic swap
        self._save_last_good()
        log.info("rules reloaded: version %s from %s", rules.version, self.path)
        self._report("loaded", rules.version)
        return True, [str(p) for p in rules.warnings]

    def changed(self) -> bool:
        return self._file_stamp() != self._stamp

    async def watch(self, interval: float) -> None:
        """Reload when the file changes or the process gets SIGHUP (a background task)."""
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
            if hup.is_set() or self.changed():
                hup.clear()
                self.reload()
