"""edgecnn's terminal output: one kind of console, and tables that fit without cutting a number.

* :func:`console`: a rich Console. Colours and live redraws (spinners, progress bars) only on
  a terminal; a pipe or a file gets plain text, and ``NO_COLOR`` drops colours (rich's own
  rules). Its width is the terminal's, read from the stream it writes to (the CLI points
  file descriptors 1 and 2 elsewhere while native libraries run, so rich's own probe of fds
  0-2 can miss it); piped output is :data:`PIPE_WIDTH` columns unless ``COLUMNS`` says otherwise.
* :func:`print_table`: rich fits a table to the console by wrapping the columns that may wrap;
  columns marked ``no_wrap`` (numbers, names, paths) always keep their whole width. A table
  that cannot fit is printed wider than the console rather than cut (rich's last resort
  shortens every cell, e.g. ``2…``), and a title wider than its table goes on its own line.
"""

from __future__ import annotations

import os
import sys

PIPE_WIDTH = 100
_UNLIMITED = 10_000


def console(stderr: bool = False):
    """A rich Console for stdout (or stderr) with the width described in the module doc."""
    from rich.console import Console

    width = None
    if not os.environ.get("COLUMNS", "").isdigit():
        stream = sys.stderr if stderr else sys.stdout
        try:
            isatty = stream.isatty()
        except (AttributeError, ValueError):
            isatty = False
        if isatty:
            try:
                width = os.get_terminal_size(stream.fileno()).columns or None
            except (AttributeError, OSError, ValueError):
                width = None
        else:
            width = PIPE_WIDTH
    return Console(stderr=stderr, width=width)


def _width_of(con, renderable) -> int:
    from rich.measure import Measurement

    return Measurement.get(con, con.options.update_width(_UNLIMITED), renderable).maximum


def print_table(con, table) -> None:
    """Print ``table`` on ``con`` (see the module doc): fitted by rich, ``no_wrap`` columns whole."""
    from rich.measure import Measurement
    from rich.segment import Segments

    for column in table.columns:
        if column.no_wrap and column.min_width is None:
            column.min_width = max(_width_of(con, c) for c in (column.header, *column.cells))
    fit = Measurement.get(con, con.options.update_width(_UNLIMITED), table)
    width = max(con.width, fit.minimum)
    if isinstance(table.title, str) and _width_of(con, table.title) > min(fit.maximum, width):
        con.print(table.title, style="table.title")
        table.title = None
    if width <= con.width:
        con.print(table)
        return
    lines = con.render_lines(table, con.options.update_width(width), new_lines=True)
    con.print(Segments([seg for line in lines for seg in line]), crop=False, soft_wrap=True,
              end="")
