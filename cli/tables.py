"""Tables that fit where they are printed.

On a terminal a table takes the terminal's real width; when the natural width of its columns is
more than that, the least important columns are left out (the caption names them) rather than every
line wrapping into an unreadable block, and text columns marked foldable wrap inside their cell.
Printed to a pipe or a file, a table keeps all its columns at their natural width (or `COLUMNS`,
when set), so saved output is complete.
"""

import dataclasses
import os
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

_BORDERS = 4  # the table's outer edges
_PER_COLUMN = 3  # one separator and a space of padding on each side
_FOLDED_MIN = 24  # the narrowest a foldable column is squeezed to before columns are left out


@dataclasses.dataclass(frozen=True)
class Column:
    header: str
    justify: str = "left"
    keep: int = 0  # higher is kept longer when the table is too wide; columns of equal keep go right to left
    fold: bool = False  # long free text (errors, summaries) that may wrap inside its cell


def available_width() -> int | None:
    """Columns to fit the table in: the terminal's, COLUMNS when set, or None (no limit)."""
    if "COLUMNS" in os.environ:
        try:
            return max(int(os.environ["COLUMNS"]), 20)
        except ValueError:
            pass
    if sys.stdout.isatty():
        return Console().width
    return None


def _natural_width(column: Column, lines: list[list[str]], index: int) -> int:
    width = max([len(column.header), *(max((len(part) for part in line[index].splitlines()), default=0) for line in lines)])
    return min(width, _FOLDED_MIN) if column.fold else width


def fitted_table(columns: list[Column], lines: list[list[str]], title: str | None = None, width: int | None = None, **table_options) -> Table:
    """A rich Table of `lines` (plain text, escaped here), leaving out the least important columns
    until it fits `width` (default: `available_width()`)."""
    width = available_width() if width is None else width
    shown = list(range(len(columns)))
    if width is not None:
        widths = [_natural_width(column, lines, index) for index, column in enumerate(columns)]
        order = sorted(shown, key=lambda index: (columns[index].keep, -index))
        while len(shown) > 1 and _BORDERS + sum(widths[index] + _PER_COLUMN for index in shown) > width:
            shown.remove(order.pop(0))
    hidden = [columns[index].header for index in range(len(columns)) if index not in shown]
    caption = f"not shown for width: {', '.join(hidden)} (a wider terminal or --format json shows all)" if hidden else None
    table = Table(title=title, caption=caption, **table_options)
    for index in shown:
        column = columns[index]
        table.add_column(column.header, justify=column.justify, no_wrap=not column.fold, overflow="fold")
    for line in lines:
        table.add_row(*(escape(line[index]) for index in shown))
    return table


def table_console() -> Console:
    """The console tables go to: the terminal's width there, unlimited for a pipe or a file."""
    width = available_width()
    return Console(width=width if width is not None else 100_000, soft_wrap=False)
