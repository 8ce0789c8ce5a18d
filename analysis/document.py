"""The report as a document: sections of text, bullets, tables and images, built once
and rendered to Markdown, HTML (one self-contained file with images as data URIs, or,
for a big report, images linked as files beside it) and LaTeX. The section modules fill
it; nothing here knows what the sections say."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from analysis import plots
from analysis.render import latex_escape, to_html, to_latex, to_markdown


@dataclass
class Text:
    text: str  # `backticks` mark code


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    df: pd.DataFrame
    caption: str


@dataclass
class Image:
    path: Path
    caption: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, block) -> Section:
        self.blocks.append(block)
        return self


def add_plot(section: Section, make, caption: str) -> None:
    """The figure `make()` draws, or a sentence saying why there is none."""
    try:
        section.add(Image(make(), caption))
    except plots.NoDataError as exc:
        section.add(Text(f"{caption}: not plotted ({exc})."))


def slug(text: str) -> str:
    """`text` as a safe file-name part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"


# --- renderers ---------------------------------------------------------------------------------


def render_markdown(title: str, sections: list[Section], out: Path) -> str:
    lines = [f"# {title}", "", f"Generated {_now()}.", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for b in s.blocks:
            if isinstance(b, Text):
                lines += [b.text, ""]
            elif isinstance(b, Bullets):
                lines += [*(f"- {item}" for item in b.items), ""]
            elif isinstance(b, Table):
                lines += [f"**{b.caption}**", "", to_markdown(b.df)]
            elif isinstance(b, Image):
                rel = b.path.relative_to(out).as_posix()
                lines += [f"![{_plain(b.caption)}]({rel})", "", f"*{b.caption}*", ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; padding: 0 1em;
       color: #222; }
h1, h2 { font-weight: 600; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table.genbench { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
table.genbench th, table.genbench td { padding: 0.25em 0.7em; border-bottom: 1px solid #ddd; }
table.genbench th { border-bottom: 2px solid #888; text-align: left; }
table.genbench td.num, table.genbench th.num { text-align: right;
       font-variant-numeric: tabular-nums; }
caption, .caption { font-weight: 600; text-align: left; margin: 0.5em 0; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f3f3f3; padding: 0 0.2em; }
nav ul { columns: 2; }
""".strip()


def render_html(title: str, sections: list[Section], out: Path, inline: bool = True) -> str:
    """One self-contained page: styles inline, images as data URIs, no external references;
    with `inline=False` images are relative links to their files under `out` (a big
    report's hundreds of images would make one file no browser opens)."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>\n{_CSS}\n</style>", "</head>",
             "<body>", f"<h1>{html.escape(title)}</h1>",
             f"<p>Generated {html.escape(_now())}.</p>", "<nav><ul>"]
    parts += [f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>'
              for i, s in enumerate(sections)]
    parts.append("</ul></nav>")
    for i, s in enumerate(sections):
        parts.append(f'<section id="s{i}">')
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, Text):
                parts.append(f"<p>{_html_inline(b.text)}</p>")
            elif isinstance(b, Bullets):
                parts.append("<ul>" + "".join(f"<li>{_html_inline(t)}</li>" for t in b.items)
                             + "</ul>")
            elif isinstance(b, Table):
                parts.append(f'<p class="caption">{_html_inline(b.caption)}</p>')
                parts.append(to_html(b.df))
            elif isinstance(b, Image):
                parts.append(f'<figure><img src="{_image_src(b.path, out, inline)}" '
                             f'alt="{html.escape(_plain(b.caption))}"'
                             + ("" if inline else ' loading="lazy"') + ">"
                             f"<figcaption>{_html_inline(b.caption)}</figcaption></figure>")
        parts.append("</section>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def render_latex(title: str, sections: list[Section], out: Path) -> str:
    """A standalone article (booktabs + graphicx); figures linked relative to `out`."""
    lines = [r"\documentclass{article}", r"\usepackage[margin=2cm]{geometry}",
             r"\usepackage{booktabs}", r"\usepackage{graphicx}", r"\usepackage[T1]{fontenc}",
             r"\usepackage[utf8]{inputenc}", r"\begin{document}",
             rf"\section*{{{latex_escape(title)}}}", f"Generated {latex_escape(_now())}.", ""]
    for s in sections:
        lines += [rf"\subsection*{{{latex_escape(s.title)}}}", ""]
        for b in s.blocks:
            if isinstance(b, Text):
                lines += [_latex_inline(b.text), ""]
            elif isinstance(b, Bullets):
                lines += [r"\begin{itemize}", *(rf"\item {_latex_inline(t)}" for t in b.items),
                          r"\end{itemize}", ""]
            elif isinstance(b, Table):
                tabular = to_latex(b.df).rstrip("\n")
                if len(b.df.columns) + b.df.index.nlevels > 6:
                    tabular = "\\resizebox{\\linewidth}{!}{%\n" + tabular + "}"
                lines += [r"\begin{table}[ht]", r"\centering", r"\small",
                          rf"\textbf{{{_latex_inline(b.caption)}}}\par\medskip",
                          tabular, r"\end{table}", ""]
            elif isinstance(b, Image) and b.path.suffix == ".gif":  # LaTeX cannot animate
                rel = b.path.relative_to(out).as_posix()
                lines += [_latex_inline(f"{_plain(b.caption)}: animated GIF `{rel}`"), ""]
            elif isinstance(b, Image):
                rel = b.path.relative_to(out).as_posix()
                lines += [r"\begin{figure}[ht]", r"\centering",
                          rf"\includegraphics[width=\linewidth,height=0.8\textheight,"
                          rf"keepaspectratio]{{{rel}}}",
                          rf"\caption{{{_latex_inline(b.caption)}}}", r"\end{figure}", ""]
    lines += [r"\end{document}", ""]
    return "\n".join(lines)


_CODE = re.compile(r"`([^`]*)`")


def _image_src(path: Path, out: Path, inline: bool) -> str:
    if not inline:
        return html.escape(path.relative_to(out).as_posix(), quote=True)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    kind = "gif" if path.suffix == ".gif" else "png"  # GIFs: samples over time
    return f"data:image/{kind};base64,{data}"


def _html_inline(text: str) -> str:
    pieces = _CODE.split(text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p)
                   for i, p in enumerate(pieces))


def _latex_inline(text: str) -> str:
    pieces = _CODE.split(text)
    return "".join(rf"\texttt{{{latex_escape(p)}}}" if i % 2 else latex_escape(p)
                   for i, p in enumerate(pieces))


def _plain(text: str) -> str:
    return text.replace("`", "").replace("[", "(").replace("]", ")")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
