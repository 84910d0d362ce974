"""What a user's terminal shows: run a command on a real pseudo-terminal of a given width and
replay its bytes on a small screen model (carriage returns, cursor moves and erases applied,
as rich's spinners and progress bars use them; colours dropped; the terminal's own line wrap
remembered). Tests read the screen as a screenshot: table rows, wrapped cells, cut numbers."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CSI = re.compile(r"\x1b\[([0-9;?]*)([@-~])")
OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
TABLE_BORDER = re.compile(r"^\s*[┏┡└┌├╭╰][━─┳┯╇┼┴┻┬╈╋]*[┓┩┘┐┤╮╯]\s*$")
TABLE_ROW = re.compile(r"^\s*[┃│].*[┃│]\s*$")


def edgecnn_env(columns: int = 100, **extra) -> dict[str, str]:
    """The environment a user's shell gives ``edgecnn`` (this checkout first, no verbose)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("EDGECNN_VERBOSE", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES")}
    env.update(PYTHONPATH=str(ROOT), TERM="xterm-256color", COLUMNS=str(columns), **extra)
    return env


def run_in_pty(args, env, cwd=None, columns: int = 100, timeout: float = 600) -> tuple[int, str]:
    """Run ``args`` with a pseudo-terminal of ``columns`` x 50 as stdin, stdout and stderr."""
    import pty

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                            close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    else:
        proc.kill()
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


class Screen:
    """The text a terminal of ``columns`` shows after receiving ``text`` (scrollback included)."""

    def __init__(self, text: str, columns: int = 100):
        self.columns = columns
        self.rows: list[list[str]] = [[]]
        self.row = self.col = 0
        self.wrapped: set[int] = set()  # rows the terminal continued on the next row
        self._feed(text)

    def _line(self) -> list[str]:
        while len(self.rows) <= self.row:
            self.rows.append([])
        return self.rows[self.row]

    def _feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                m = CSI.match(text, i)
                if m:
                    self._csi(m.group(1), m.group(2))
                    i = m.end()
                    continue
                m = OSC.match(text, i)
                i = m.end() if m else i + 2  # a title/hyperlink, or a two-byte escape
                continue
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self.row, self.col = self.row + 1, 0
            elif ch == "\b":
                self.col = max(0, self.col - 1)
            elif ch >= " ":
                if self.col >= self.columns:  # the terminal's own wrap
                    self.wrapped.add(self.row)
                    self.row, self.col = self.row + 1, 0
                line = self._line()
                line.extend(" " * (self.col + 1 - len(line)))
                line[self.col] = ch
                self.col += 1
            i += 1

    def _csi(self, params: str, final: str) -> None:
        n = int(params) if params.isdigit() else None
        if final == "A":
            self.row = max(0, self.row - (n or 1))
        elif final == "B":
            self.row += n or 1
        elif final == "C":
            self.col += n or 1
        elif final == "D":
            self.col = max(0, self.col - (n or 1))
        elif final == "G":
            self.col = (n or 1) - 1
        elif final == "K":
            line = self._line()
            if n in (None, 0):
                del line[self.col:]
            elif n == 1:
                line[:self.col] = " " * min(self.col, len(line))
            else:
                line.clear()
        # 'm' (colours), 'h'/'l' (cursor shown/hidden): nothing visible changes

    @property
    def lines(self) -> list[str]:
        return ["".join(r).rstrip() for r in self.rows]

    def logical_lines(self) -> list[str]:
        """The lines as written: rows the terminal wrapped joined with their continuation."""
        out, rows = [], self.lines
        for i, row in enumerate(rows):
            if i - 1 in self.wrapped and out:
                out[-1] += row
            else:
                out.append(row)
        return out

    def wrapped_lines(self) -> list[str]:
        return [self.lines[i] for i in sorted(self.wrapped)]


def table_lines(lines: list[str]) -> list[str]:
    return [ln for ln in lines if TABLE_BORDER.match(ln) or TABLE_ROW.match(ln)]


def wrapped_cells(lines: list[str]) -> list[str]:
    """Table lines that continue a cell of the line above: a second header line, or a body row
    whose first cell is empty while another is not (every table checked here names its row
    in the first column; a header's first cell may be empty)."""
    out, header_lines = [], 0
    for ln in lines:
        stripped = ln.strip()
        if stripped.startswith("┏"):
            header_lines = 0
        elif stripped.startswith("┃") and TABLE_ROW.match(ln):
            header_lines += 1
            if header_lines > 1:
                out.append(ln)
        elif stripped.startswith("│") and TABLE_ROW.match(ln):
            cells = re.split(r"[│]", stripped)[1:-1]
            if cells and not cells[0].strip() and any(c.strip() for c in cells[1:]):
                out.append(ln)
    return out


def cut_numbers(lines: list[str]) -> list[str]:
    """Lines where rich shortened something with an ellipsis (e.g. a latency shown as '2…')."""
    return [ln for ln in lines if "…" in ln]
