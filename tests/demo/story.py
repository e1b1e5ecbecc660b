"""How the demo talks: one line per step, a progress line while waiting, the final table."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

STEP_WIDTH = 16
RESOURCE_WIDTH = 44


def shorten(text: str, width: int) -> str:
    """Keeps both ends of a long string: `churn-3f9a…-v2-a1`."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep - keep // 2] + "…" + text[-(keep // 2) :]


class Narrator:
    """Prints story lines from any thread; `progress` shows what the demo waits for."""

    def __init__(self, out: TextIO = sys.stdout, progress_every: float = 1.0):
        self.out = out
        self.tty = out.isatty()
        self.progress_every = progress_every
        self._lock = threading.Lock()
        self._last_output = time.monotonic()
        self._progress_shown = 0  # width of the \r progress line on a TTY
        self._progress_text = ""
        self._progress_drawn = 0.0

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self.out.write("\r" + " " * self._progress_shown + "\r")
            self._progress_shown = 0

    def clear(self) -> None:
        """Removes a TTY progress line, before others write to the terminal."""
        with self._lock:
            self._clear_progress()
            self.out.flush()

    def say(self, step: str, resource: str, outcome: str) -> None:
        line = f"{time.strftime('%H:%M:%S')}  {step:<{STEP_WIDTH}} {shorten(resource, 60):<{RESOURCE_WIDTH}}  {outcome}"
        self.line(line.rstrip())

    def line(self, text: str = "") -> None:
        with self._lock:
            self._clear_progress()
            self.out.write(text + "\n")
            self.out.flush()
            self._last_output = time.monotonic()

    def progress(self, text: str) -> None:
        """At most one line per `progress_every` seconds of silence; redrawn in place on a TTY."""
        with self._lock:
            now = time.monotonic()
            if self.tty:
                if self._progress_shown and text == self._progress_text and now - self._progress_drawn < 1.0:
                    return
                self._progress_text, self._progress_drawn = text, now
                line = f"{time.strftime('%H:%M:%S')}  … {text}"
                self._clear_progress()
                self.out.write(line)
                self.out.flush()
                self._progress_shown = len(line)
            elif now - self._last_output >= self.progress_every:
                self.out.write(f"{time.strftime('%H:%M:%S')}  … {text}\n")
                self.out.flush()
                self._last_output = now


def table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines.extend(fmt.format(*row) for row in cells)
    return [line.rstrip() for line in lines]


def summarize(response: Any, limit: int = 110) -> str:
    """A handler's Outcome in one clause: the last thing it did, skips, failures."""
    if not isinstance(response, dict):
        return str(response)[:limit]
    parts = []
    done = response.get("done") or []
    if done:
        parts.append(done[-1] + (f" (+{len(done) - 1} more)" if len(done) > 1 else ""))
    skipped = response.get("skipped") or []
    if skipped:
        reason = str(skipped[0].get("reason", "")) if isinstance(skipped[0], dict) else str(skipped[0])
        parts.append(f"{len(skipped)} skipped ({shorten(reason, 60)})")
    failures = response.get("batchItemFailures") or []
    if failures:
        parts.append(f"{len(failures)} failed → back to the queue")
    return shorten("; ".join(parts) or "nothing to do", limit)
