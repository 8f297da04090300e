"""format_value and format_table: settings and rows as people read them."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.tables import format_table, format_value

ROWS = [("name", "n"), ("a", "10"), ("bbb", "2")]


@pytest.mark.parametrize(
    "value, text",
    [
        ((128, 64), "128-64"),
        ([32], "32"),
        ((), "none"),
        (None, "default"),
        (0.001, "0.001"),
        (1e-6, "1e-06"),
        (0.5, "0.5"),
        (np.float64(0.25), "0.25"),
        (128, "128"),
        ("relu", "relu"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_columns_are_aligned_left_or_right_without_trailing_spaces():
    assert format_table(ROWS).splitlines() == ["name  n", "a     10", "bbb   2"]
    assert format_table(ROWS, right_aligned=(1,)).splitlines() == [
        "name   n",
        "a     10",
        "bbb    2",
    ]
    lines = format_table([("x", "long header"), ("1", "y")]).splitlines()
    assert lines == ["x  long header", "1  y"]  # the last column's padding is stripped


def test_markdown_table():
    assert format_table(ROWS, markdown=True).splitlines() == [
        "| name | n |",
        "|---|---|",
        "| a | 10 |",
        "| bbb | 2 |",
    ]
