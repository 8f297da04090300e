"""Text tables and values as people read them, for summaries, grids and the command line."""

from __future__ import annotations

from collections.abc import Sequence


def format_value(value) -> str:
    """A setting as a table cell: (128, 64) -> 128-64, () -> none, None -> default."""
    if isinstance(value, tuple | list):
        return "-".join(map(str, value)) if value else "none"
    if isinstance(value, float):
        return f"{value:g}"
    return "default" if value is None else str(value)


def format_table(
    rows: Sequence[Sequence[str]], right_aligned: Sequence[int] = (), markdown: bool = False
) -> str:
    """Rows of cells (the first row is the header) as aligned text, or as a Markdown table.

    right_aligned: indexes of the columns to align right (numbers); the others align left.
    """
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join([lines[0], "|" + "---|" * len(rows[0]), *lines[1:]])
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if column in right_aligned else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )
