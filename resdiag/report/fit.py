"""Tables that stay readable at any terminal width: no name or number is ever cut.

Rich shrinks a table that is wider than the terminal by cutting cells ("stage1.0…", "1.63e+…", at 40
columns every number reads "0…"). A ``FitTable`` decides its layout when it is rendered, from the
width it is given: the full table when it fits; otherwise it drops the optional columns, least
important first (bars, then spreads and shapes); when even the essential columns do not fit it
prints one block of ``header value`` lines per row, wrapped between fields, never inside one.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "right"
    drop: int | None = None  # None: essential; otherwise dropped in increasing order when too wide


class FitTable:
    def __init__(self, title: str, columns: list[Column]):
        self.title = title
        self.columns = columns
        self.rows: list[list[str | Text]] = []

    def add_row(self, *cells: str | Text) -> None:
        self.rows.append(list(cells))

    def _table(self, keep: list[int]) -> Table:
        t = Table(title=self.title, title_justify="left")
        for i in keep:
            c = self.columns[i]
            t.add_column(c.header, justify=c.justify, no_wrap=True)  # type: ignore[arg-type]
        for row in self.rows:
            t.add_row(*(row[i] for i in keep))
        return t

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        keep = list(range(len(self.columns)))
        order = sorted((c.drop, i) for i, c in enumerate(self.columns) if c.drop is not None)
        while True:
            table = self._table(keep)
            wide = options.update(max_width=1_000_000)  # a measurement clamps to the width it gets
            if console.measure(table, options=wide).maximum <= options.max_width:
                yield table
                return
            if not order:
                break
            keep.remove(order.pop(0)[1])
        yield self._records(options.max_width)

    def _records(self, width: int) -> Group:
        """One block per row: the essential cells up to the name as a heading, then 'header value'
        fields of the other essential cells, wrapped between fields."""
        essential = [i for i, c in enumerate(self.columns) if c.drop is None]
        lines: list[Text] = [Text(self.title, style="italic")]
        names = [i for i in essential if self.columns[i].justify == "left"]
        cut = essential.index(names[0]) + 1 if names else 1
        head, rest = essential[:cut], essential[cut:]
        for row in self.rows:
            fields = [f"{self.columns[i].header} {_plain(row[i])}" for i in rest if _plain(row[i])]
            lines.append(Text("  ".join(_plain(row[i]) for i in head), style="bold"))
            line = " "
            for field in fields:
                if len(line) > 1 and len(line) + 3 + len(field) > width:
                    lines.append(Text(line))
                    line = " "
                line += ("   " if len(line) > 1 else " ") + field
            if len(line) > 1:
                lines.append(Text(line))
        return Group(*lines)


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else cell
