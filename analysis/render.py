"""Render a DataFrame as markdown, LaTeX (booktabs), HTML or CSV text.

A named index (e.g. the rows of a `compare` table) becomes leading columns;
a default RangeIndex is dropped. MultiIndex columns are joined with " / ".
Nulls render as empty cells; floats with 4 significant digits (no exponent
below 1e15). Numeric columns are right-aligned.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def format_value(value: Any) -> str:
    """One cell as text: "" for null, yes/no for bools, 4 significant digits for floats."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return ""
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if 1e4 <= abs(v) < 1e15:
            return f"{v:.0f}"
        return f"{v:.4g}"
    return str(value)


def table_cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """(header, rows of formatted cells, numeric flag per column)."""
    flat = _flatten(df)
    header = [str(c) for c in flat.columns]
    numeric = [pd.api.types.is_numeric_dtype(flat[c]) and not pd.api.types.is_bool_dtype(flat[c])
               for c in flat.columns]
    rows = [[format_value(v) for v in row] for row in flat.itertuples(index=False, name=None)]
    return header, rows, numeric


def to_markdown(df: pd.DataFrame) -> str:
    header, rows, numeric = table_cells(df)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(_md_escape(c) for c in cells) + " |"

    rule = "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)]) + "\n"


def to_latex(df: pd.DataFrame, caption: str | None = None) -> str:
    """A booktabs tabular (inside a table float when a caption is given)."""
    header, rows, numeric = table_cells(df)
    spec = "".join("r" if n else "l" for n in numeric)

    def line(cells: list[str]) -> str:
        return " & ".join(latex_escape(c) for c in cells) + r" \\"

    body = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", line(header), r"\midrule",
            *(line(r) for r in rows), r"\bottomrule", r"\end{tabular}"]
    if caption is not None:
        body = [r"\begin{table}[ht]", r"\centering", rf"\caption{{{latex_escape(caption)}}}",
                *body, r"\end{table}"]
    return "\n".join(body) + "\n"


def to_html(df: pd.DataFrame, table_class: str = "genbench") -> str:
    header, rows, numeric = table_cells(df)

    def td(cell: str, num: bool, tag: str = "td") -> str:
        cls = ' class="num"' if num else ""
        return f"<{tag}{cls}>{html.escape(cell)}</{tag}>"

    lines = [f'<table class="{html.escape(table_class)}">', "<thead>",
             "<tr>" + "".join(td(h, n, "th") for h, n in zip(header, numeric, strict=True))
             + "</tr>", "</thead>", "<tbody>"]
    for r in rows:
        lines.append("<tr>" + "".join(td(c, n) for c, n in zip(r, numeric, strict=True)) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines) + "\n"


def to_csv(df: pd.DataFrame) -> str:
    """Full precision (no display rounding); nulls as empty fields."""
    return _flatten(df).to_csv(index=False, lineterminator="\n")


RENDERERS: dict[str, Callable[[pd.DataFrame], str]] = {
    "md": to_markdown, "markdown": to_markdown, "latex": to_latex, "tex": to_latex,
    "html": to_html, "csv": to_csv,
}


def render(df: pd.DataFrame, fmt: str) -> str:
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(RENDERERS)}") from None
    return renderer(df)


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "—": "---",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


def _md_escape(text: str) -> str:
    return text.replace("|", r"\|").replace("\n", " ")


def _flatten(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" / ".join(str(v) for v in c if str(v) != "") for c in out.columns]
    else:
        out.columns = [str(c) for c in out.columns]
    named = any(n is not None for n in out.index.names)
    if named or not isinstance(out.index, pd.RangeIndex):
        names = [n if n is not None else f"level_{i}" for i, n in enumerate(out.index.names)]
        if not named and len(names) == 1:
            names = [""]
        out.index = out.index.set_names(names)
        out = out.reset_index()
    return out
