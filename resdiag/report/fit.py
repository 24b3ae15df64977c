"""Tables that stay readable at any terminal width: no name or number is ever cut.

Rich shrinks a table that is wider than the terminal by cutting cells ("stage1.0…", "1.63e+…", at 40
columns every number reads "0…"). A ``FitTable`` decides its layout when it is rendered, from the
width it is given: the full table when it fits; otherwise it drops the optional columns, least
important first (bars, then spreads and shapes); when even the essential columns do not fit it
prints one block of ``header value`` lines per row, wrapped between fields, never inside one.
A column of prose (``wrap=True``: a description, a claim) may wrap between its words; a table
fits only if every word of every cell and header is still whole in what is rendered.
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
    wrap: bool = False  # prose: may wrap between words (names and numbers never wrap)


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
            t.add_column(c.header, justify=c.justify, no_wrap=not c.wrap,  # type: ignore[arg-type]
                         overflow="fold" if c.wrap else "ellipsis")
        for row in self.rows:
            t.add_row(*(row[i] for i in keep))
        return t

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        keep = list(range(len(self.columns)))
        order = sorted((c.drop, i) for i, c in enumerate(self.columns) if c.drop is not None)
        while True:
            table = self._table(keep)
            if self._whole(console, options, table, keep):
                yield table
                return
            if not order:
                break
            keep.remove(order.pop(0)[1])
        yield self._records(options.max_width)

    def _whole(self, console: Console, options: ConsoleOptions, table: Table, keep: list[int]) -> bool:
        """Whether ``table`` shows every cell whole at this width: it fits unwrapped, or its prose
        columns wrap between words and no word is cut or split."""
        wide = options.update(max_width=1_000_000)  # a measurement clamps to the width it gets
        if console.measure(table, options=wide).maximum <= options.max_width:
            return True
        if not any(self.columns[i].wrap for i in keep):
            return False
        lines = console.render_lines(table, options, pad=False)
        text = "\n".join("".join(seg.text for seg in line) for line in lines)
        words = {w for i in keep for w in self.columns[i].header.split()}
        words |= {w for row in self.rows for i in keep for w in _plain(row[i]).split()}
        cut = "…" not in "".join(w for w in words)
        return all(w in text for w in words) and (not cut or "…" not in text)

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
