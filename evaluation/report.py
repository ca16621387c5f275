"""The ZIPBench HTML report: one self-contained folder (relative images, no network) with
the method × benchmark table, per-LLM persona gains, plots and image grids (same user
and prompt: base vs each method) with the persona beside them."""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

COLUMNS = {
    "method": "method",
    "llm": "LLM",
    "images": "images",
    "clip_ref": "CS ↑ (refs)",
    "clip_prompt": "CS ↑ (prompt)",
    "judge": "judge ↑",
    "cmmd": "CMMD ↓",
    "win_rate_vs_none": "win rate vs none",
    "p_value": "p",
}


@dataclass
class Grid:
    """One user and base prompt: an image per method."""

    user: str
    prompt: str
    persona: str
    cells: list[dict] = field(default_factory=list)  # {method, llm, prompt, src, clip_ref}


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "—" if v != v else f"{v:.3g}" if abs(v) < 0.01 else f"{v:.2f}"
    return html.escape(str(v))


def table_html(df: pd.DataFrame, columns: dict[str, str], klass: str) -> str:
    """A DataFrame as an HTML table with the given column titles."""
    if df.empty:
        return "<p class='note'>nothing to show</p>"
    cols = [c for c in columns if c in df.columns]
    head = "".join(f"<th>{html.escape(columns[c])}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r[c])}</td>" for c in cols) + "</tr>"
        for r in df.to_dict("records")
    )
    return f"<table class='{klass}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plot_methods(table: pd.DataFrame, gains: pd.DataFrame, out: Path) -> list[str]:
    """PNG plots next to the report; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    if not table.empty:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        labels = [
            f"{m}\n{llm}" if llm != "-" else m
            for m, llm in zip(table["method"], table["llm"], strict=True)
        ]
        axes[0].bar(labels, table["clip_ref"], color="#4c72b0")
        axes[0].set_title("CLIPScore ×100 vs references (higher is better)")
        axes[1].bar(labels, table["cmmd"], color="#dd8452")
        axes[1].set_title("CMMD vs references (lower is better)")
        for ax in axes:
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        fig.tight_layout()
        fig.savefig(out / "methods.png", dpi=110)
        plt.close(fig)
        names.append("methods.png")
    if not gains.empty:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        labels = [f"{m}\n{llm}" for m, llm in zip(gains["method"], gains["llm"], strict=True)]
        ax.bar(labels, gains["clip_ref_gain"], color="#55a868")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title("persona gain per LLM: CLIPScore minus the no-persona rewrite")
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        fig.tight_layout()
        fig.savefig(out / "gains.png", dpi=110)
        plt.close(fig)
        names.append("gains.png")
    return names


def copy_image(lake_root: Path, rel: str, out: Path) -> str:
    """Copy a lake image into the report folder; returns its relative src."""
    name = Path(rel).name
    dst = out / "images" / name
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lake_root / rel, dst)
    return f"images/{name}"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{margin-bottom:.2rem}
.banner{background:#fff3cd;border:1px solid #e0c36c;padding:.6rem 1rem;margin:.4rem 0}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th{background:#f3f3f3} td:first-child,td:nth-child(2){text-align:left}
.grid{display:flex;gap:1rem;align-items:flex-start;border-top:1px solid #ddd;padding:1rem 0}
.persona{width:260px;font-size:.8rem;white-space:pre-wrap;flex:none}
.cells{display:flex;flex-wrap:wrap;gap:.6rem} figure{margin:0;width:150px;font-size:.72rem}
figure img{width:150px;height:150px;image-rendering:pixelated;border:1px solid #bbb}
.note{color:#666;font-size:.85rem}
"""

_SCRIPT = """
window.addEventListener('load', () => {
  const imgs = [...document.querySelectorAll('img')];
  document.body.dataset.imagesTotal = imgs.length;
  document.body.dataset.imagesLoaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
});
"""


def render(
    out: Path,
    title: str,
    banners: list[str],
    table: pd.DataFrame,
    gains: pd.DataFrame,
    ipf: pd.DataFrame,
    ipf_note: str,
    plots: list[str],
    grids: list[Grid],
    facts: dict[str, str],
) -> Path:
    """Write out/index.html; returns its path."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<div class='banner'>{html.escape(b)}</div>" for b in banners]
    parts.append(
        "<p class='note'>"
        + " · ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in facts.items())
        + "</p>"
    )
    parts.append("<h2>Methods × benchmark</h2>")
    parts.append(table_html(table, COLUMNS, "methods"))
    parts.append("<h2>Persona gains per LLM</h2>")
    parts.append(
        table_html(
            gains,
            {"llm": "LLM", "method": "method", "clip_ref_gain": "Δ CS", "judge_gain": "Δ judge"},
            "gains",
        )
    )
    parts.append(f"<h2>IPF re-weighting</h2><p class='note'>{html.escape(ipf_note)}</p>")
    if not ipf.empty:
        parts.append(
            table_html(
                ipf,
                {"method": "method", "llm": "LLM", "clip_ref": "CS", "clip_ref_ipf": "CS (IPF)"},
                "ipf",
            )
        )
    parts += [f"<p><img class='plot' src='{p}' alt='{p}'></p>" for p in plots]
    parts.append("<h2>Same user, same prompt: base vs each method</h2>")
    for g in grids:
        cells = "".join(
            f"<figure><img src='{c['src']}' alt='{html.escape(c['method'])}'>"
            f"<figcaption><b>{html.escape(c['method'])}</b> {html.escape(c['llm'])}"
            f" · CS {_fmt(c['clip_ref'])}<br>{html.escape(c['prompt'])}</figcaption></figure>"
            for c in g.cells
        )
        parts.append(
            f"<div class='grid'><div class='persona'><b>{html.escape(g.user)}</b> — "
            f"“{html.escape(g.prompt)}”\n\n{html.escape(g.persona)}</div>"
            f"<div class='cells'>{cells}</div></div>"
        )
    doc = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + f"<script>{_SCRIPT}</script></body></html>"
    )
    path = out / "index.html"
    path.write_text(doc, encoding="utf-8")
    return path
