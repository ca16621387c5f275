"""Stage `report`'s domain: the ZIPBench HTML report, one self-contained folder
(relative images, no network) -> reports/zipbench/ (index.html, summary.parquet, plots,
image grids).

It holds the method × benchmark table (win rates vs `none` and vs the `swapped`
control on CLIPScore and the preference judge), per-LLM persona gains, the scorers'
agreement with the planted truth and each LLM's persona fidelity against it (only when
`report.ground_truth` is set: this stage is the only one that reads it), IPF
re-weighting, plots and image grids (same user and prompt: base vs each method) with the
persona beside them. Grids name users by pseudonym only ("benchmark user 3", numbered
in grid order): never the Reddit name, and not the raw user id either (it is the name's
rank, so the public dumps would rebuild it); the report reads no lake table that holds
names, and the ground truth's names are used only inside the truth joins
(`evaluation.agreement.truth_distances`, `evaluation.persona_fidelity`).
"""

from __future__ import annotations

import hashlib
import html
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contract.stage import Stage
from contract.stage_io import StageIO
from evaluation.references import media_file, reference_vectors
from evaluation.study_section import study_section
from evaluation.sweep_section import sweep_section
from schemas.methods import method_rank
from schemas.tables import MEDIA, REPORT, SMOKE_MODEL

OUT = REPORT

COLUMNS = {
    "method": "method",
    "llm": "LLM",
    "images": "images",
    "clip_ref": "CS ↑ (refs)",
    "clip_prompt": "CS ↑ (prompt)",
    "clip_history": "CLIP-I ↑ (history)",
    "dino_ref": "DINO ↑ (refs)",
    "dino_history": "DINO ↑ (history)",
    "preference": "pref ↑",
    "judge": "LLM judge ↑",
    "cmmd": "CMMD ↓",
    "cs_win_vs_none": "CS win vs none",
    "cs_p_vs_none": "p",
    "pref_win_vs_none": "pref win vs none",
    "pref_p_vs_none": "p",
    "cs_win_vs_swapped": "CS win vs swapped",
    "cs_p_vs_swapped": "p",
    "pref_win_vs_swapped": "pref win vs swapped",
    "pref_p_vs_swapped": "p",
}
GAIN_COLUMNS = {
    "llm": "LLM",
    "method": "method",
    "clip_ref_gain_vs_none": "Δ CS vs none",
    "preference_gain_vs_none": "Δ pref vs none",
    "judge_gain_vs_none": "Δ LLM judge vs none",
    "clip_ref_gain_vs_swapped": "Δ CS vs swapped",
    "preference_gain_vs_swapped": "Δ pref vs swapped",
    "judge_gain_vs_swapped": "Δ LLM judge vs swapped",
}
#: the IPF table (`evaluation.summary.ipf_table`; its ``known <attribute>`` coverage columns too)
IPF_COLUMNS = {
    "method": "method",
    "llm": "LLM",
    "images": "images",
    "clip_ref": "CS",
    "clip_ref_ipf": "CS (IPF)",
    "preference": "pref",
    "preference_ipf": "pref (IPF)",
}
AGREEMENT_COLUMNS = {
    "scorer": "scorer",
    "pairs": "pairs",
    "srocc": "SROCC (vs −distance)",
    "srocc_p": "p",
    "plcc": "PLCC (vs −distance)",
    "plcc_p": "p",
}
SHOT_COLUMNS = {
    "llm": "LLM",
    "shots": "shots",
    "method": "method",
    "images": "images",
    "clip_ref": "CS ↑ (refs)",
    "preference": "pref ↑",
    "cs_win_vs_none": "CS win vs none",
    "cs_p_vs_none": "p",
    "pref_win_vs_none": "pref win vs none",
    "pref_p_vs_none": "p",
}
SHOTS_NOTE = (
    "0-shot is zero_shot; k-shot adds the user's own K newest earlier titles (k_shot@K, one "
    "row per K of rewrite.k): win rates vs none, paired by user, prompt and seed."
)
CONTROL_NOTE = (
    "Personalisation is what the user's own persona adds over another benchmark user's "
    "persona: the win rates and gains vs swapped (zero_shot rewritten with a swapped "
    "persona by the same LLM, paired by user, prompt and seed)."
)


@dataclass
class Grid:
    """One user and base prompt: an image per method."""

    user: str
    prompt: str
    persona: str
    cells: list[dict] = field(default_factory=list)  # {method, llm, prompt, src, clip_ref}


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "—" if v != v else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
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


def _bars(ax, labels: list[str], values, title: str, colour: str) -> None:
    ax.bar(labels, values, color=colour)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)


def plot_methods(table: pd.DataFrame, gains: pd.DataFrame, out: Path) -> list[str]:
    """PNG plots next to the report; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    if not table.empty:
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        labels = [
            f"{m}\n{llm}" if llm != "-" else m
            for m, llm in zip(table["method"], table["llm"], strict=True)
        ]
        _bars(axes[0], labels, table["clip_ref"], "CLIPScore ×100 vs references ↑", "#4c72b0")
        _bars(axes[1], labels, table["preference"], "preference judge (history) ↑", "#8172b2")
        _bars(axes[2], labels, table["cmmd"], "CMMD vs references (lower is better)", "#dd8452")
        fig.tight_layout()
        fig.savefig(out / "methods.png", dpi=110)
        plt.close(fig)
        names.append("methods.png")
    if not gains.empty:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        labels = [f"{m}\n{llm}" for m, llm in zip(gains["method"], gains["llm"], strict=True)]
        x = np.arange(len(labels))
        for ax, col, what in (
            (axes[0], "clip_ref", "CLIPScore"),
            (axes[1], "preference", "preference judge"),
        ):
            ax.bar(x - 0.2, gains[f"{col}_gain_vs_none"], 0.4, label="vs none", color="#55a868")
            ax.bar(
                x + 0.2, gains[f"{col}_gain_vs_swapped"], 0.4, label="vs swapped", color="#c44e52"
            )
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xticks(x, labels, rotation=45, fontsize=7)
            ax.set_title(f"persona gain per LLM: {what}", fontsize=9)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "gains.png", dpi=110)
        plt.close(fig)
        names.append("gains.png")
    return names


def copy_image(src: Path, out: Path) -> str:
    """Copy a lake image into the report folder; returns its relative src."""
    name = Path(src).name
    dst = out / "images" / name
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
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
.note{color:#666;font-size:.85rem} img.plot{max-width:100%}
"""

_SCRIPT = """
window.addEventListener('load', () => {
  const imgs = [...document.querySelectorAll('img')];
  document.body.dataset.imagesTotal = imgs.length;
  document.body.dataset.imagesLoaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
});
"""


@dataclass
class Agreement:
    """The agreement section: the table (empty without the truth) and what it says."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    note: str = ""


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
    agreement: Agreement | None = None,
    shots: pd.DataFrame | None = None,
    fidelity: str = "",
    study: str = "",
    extra: str = "",
    sweep: str = "",
) -> Path:
    """Write out/index.html; returns its path. `extra`: HTML sections a caller adds after
    the study's (an external benchmark's, `service.external.report`)."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts += [f"<div class='banner'>{html.escape(b)}</div>" for b in banners]
    parts.append(
        "<p class='note'>"
        + " · ".join(f"{html.escape(k)}: {html.escape(v)}" for k, v in facts.items())
        + "</p>"
    )
    parts.append("<h2>Methods × benchmark</h2>")
    parts.append(f"<p class='note'>{html.escape(CONTROL_NOTE)}</p>")
    parts.append(table_html(table, COLUMNS, "methods"))
    parts.append("<h2>Persona gains per LLM</h2>")
    parts.append(table_html(gains, GAIN_COLUMNS, "gains"))
    parts.append(sweep)  # per LLM: win rates and gains vs none with intervals
    if shots is not None and not shots.empty:
        parts.append(f"<h2>0-shot vs k-shot</h2><p class='note'>{html.escape(SHOTS_NOTE)}</p>")
        parts.append(table_html(shots, SHOT_COLUMNS, "shots"))
    if agreement is not None:
        parts.append("<h2>Scorers vs the planted truth</h2>")
        parts.append(f"<p class='note'>{html.escape(agreement.note)}</p>")
        if not agreement.table.empty:
            parts.append(table_html(agreement.table, AGREEMENT_COLUMNS, "agreement"))
    parts.append(fidelity)
    parts.append(study)  # the human A/B study (bench/study_votes), when it has votes
    parts.append(extra)
    parts.append(f"<h2>IPF re-weighting</h2><p class='note'>{html.escape(ipf_note)}</p>")
    if not ipf.empty:
        parts.append(
            table_html(ipf, IPF_COLUMNS | {c: c for c in ipf if c.startswith("known ")}, "ipf")
        )
    parts += [f"<p><img class='plot' src='{p}' alt='{p}'></p>" for p in plots]
    parts.append("<h2>Same user, same prompt: base vs each method</h2>")
    for g in grids:
        cells = "".join(
            f"<figure><img src='{c['src']}' alt='{html.escape(c['method'])}'>"
            f"<figcaption><b>{html.escape(c['method'])}</b> {html.escape(c['llm'])}"
            f" · CS {_fmt(c['clip_ref'])} · pref {_fmt(c['preference'])}"
            f"<br>{html.escape(c['prompt'])}</figcaption></figure>"
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


def by_method_order(table: pd.DataFrame) -> pd.DataFrame:
    """Rows in the methods registry's order (`method_rank`: k_shot@K by K), then by LLM."""
    rank = {m: i for i, m in enumerate(sorted(set(table["method"]), key=method_rank))}
    key = table["method"].map(rank)
    return (
        table.assign(_rank=key)
        .sort_values(["_rank", "llm"], kind="stable")
        .drop(columns="_rank")
        .reset_index(drop=True)
    )


def pseudonym(n: int) -> str:
    """How the report names the n-th user of its grids (1-based)."""
    return f"benchmark user {n}"


def _shuffled(user_id: int, prompt_id: str) -> str:
    """A tie-break for the grid order that does not follow the user ids (name ranks)."""
    return hashlib.sha1(f"{user_id}\0{prompt_id}".encode()).hexdigest()


def grids(
    io: StageIO, images: pd.DataFrame, scores: pd.DataFrame, personas: pa.Table, out: Path
) -> list[Grid]:
    """Up to `report.grids` (user, prompt) pairs, one per user, those with the most
    methods made first: seed 0, the first configured LLM, base first, then each method;
    beside them the persona the LLM's methods were conditioned on (`persona_for`)."""
    from schemas.persona import persona_for, roleplay

    llm = io.config.llm.specs()[0].label
    done = images[(images["status"] == "done") & (images["seed_index"] == 0)]
    done = done[done["llm"].isin(["-", llm])]
    cs = dict(zip(scores["image_id"], scores["clip_ref"], strict=True))
    pref = dict(zip(scores["image_id"], scores["preference"], strict=True))
    counts = done.groupby(["user_id", "prompt_id"]).size().rename("n").reset_index()
    counts["tie"] = [
        _shuffled(u, p) for u, p in zip(counts["user_id"], counts["prompt_id"], strict=True)
    ]
    counts = counts.sort_values(["n", "tie"], ascending=[False, True], kind="stable")
    pairs = counts.drop_duplicates("user_id")[["user_id", "prompt_id"]]  # variety of users
    pairs = list(pairs.head(io.config.report.grids).itertuples(index=False, name=None))
    shown = persona_for([(int(u), llm) for u, _ in pairs], personas)
    order = {m: i for i, m in enumerate(sorted(set(done["method"]), key=method_rank))}
    out_grids = []
    for n, ((u, pid), persona) in enumerate(zip(pairs, shown, strict=True), 1):
        rows = done[(done["user_id"] == u) & (done["prompt_id"] == pid)]
        rows = rows.sort_values(
            "method", key=lambda s: s.map(lambda m: order.get(m, len(order))), kind="stable"
        )
        base = rows[rows["method"] == "base"]["prompt"]
        g = Grid(
            user=pseudonym(n),
            prompt=base.iloc[0] if len(base) else "",
            persona=roleplay(persona) if persona is not None else "(no persona)",
        )
        for r in rows.to_dict("records"):
            g.cells.append(
                {
                    "method": r["method"],
                    "llm": "" if r["llm"] == "-" else r["llm"],
                    "prompt": r["prompt"]
                    + (f" [neg: {r['negative_prompt']}]" if r["negative_prompt"] else ""),
                    "src": copy_image(media_file(io, r["path"]), out),
                    "clip_ref": cs.get(r["image_id"], float("nan")),
                    "preference": float(pref.get(r["image_id"], float("nan"))),
                }
            )
        out_grids.append(g)
    return out_grids


def agreement_section(io: StageIO, judge) -> Agreement:
    """SROCC/PLCC of every scorer on the agreement set against the planted taste distance
    when `report.ground_truth` is set (the report is the only stage that reads it)."""
    from evaluation.agreement import SCORERS, agreement_table, truth_distances

    agree = io.read("bench/agreement").to_pandas()
    truth = io.file("report.ground_truth")
    n_users = agree["user_id"].nunique() if len(agree) else 0
    where = (
        f"{len(agree):,} pairs: for each of {n_users} benchmark users, other benchmark "
        "users' held-out reference images (real posts, in no judge's training data), "
        "scored for that user by the score stage exactly as generated images are"
    )
    if truth is None:
        return Agreement(
            note=f"Agreement set: {where}. No ground truth configured (report.ground_truth): "
            "no agreement table."
        )
    agree.loc[agree["status"] != "done", "judge_score"] = np.nan
    scorers = dict(SCORERS)
    if judge.off:
        scorers.pop("judge_score")
    elif judge.backend == "template":
        scorers["judge_score"] = "template judge (CLIPScore / 10, not an LLM)"
    else:
        scorers["judge_score"] = f"LLM judge ({judge.label})"
    distance = truth_distances(agree, io.read("bench/references").to_pandas(), truth)
    table = agreement_table(agree, distance, scorers)
    note = (
        f"Agreement set: {where}. Truth: the planted taste distance between the user and "
        "the image (Euclidean over hue, hue2, saturation, brightness, contrast, grain; "
        "hues wrap around 1.0), joined here by the report stage from "
        f"report.ground_truth ({Path(truth).name}/); the report is the only stage that "
        "reads the ground truth, and no stage before it does. SROCC (Spearman) and PLCC "
        "(Pearson) are against −distance: a good scorer is positive. "
        f"{int(np.isnan(distance).sum())} pair(s) had no truth."
    )
    return Agreement(table=table, note=note)


def fidelity_section(io: StageIO, personas: pa.Table, out: Path) -> str:
    """The "Persona fidelity (planted truth)" section's HTML when `report.ground_truth` is
    set ('' when not): each LLM's personas against the planted communities, demographics
    and taste (`evaluation.persona_fidelity`), joined through the users' image posts
    (silver/user_images post ids -> the truth's authors), so the report reads no table of
    names; the table also goes to persona_fidelity.parquet, with a plot beside it."""
    from evaluation.persona_fidelity import (
        MissingTruth,
        fidelity_frame,
        fidelity_table,
        persona_fidelity,
        plot_fidelity,
    )

    truth = io.file("report.ground_truth")
    if truth is None:
        return ""
    head = "<h2>Persona fidelity (planted truth)</h2>"
    try:
        posts = io.read("silver/user_images", ["user_id", "post_id"]).to_pandas()
        results = persona_fidelity(personas, truth, posts=posts)
    except MissingTruth as e:
        return f"{head}<p class='note'>{html.escape(str(e))}</p>"
    note = (
        "Each LLM's done personas of users whose image posts lead to the planted truth "
        f"(report.ground_truth, {Path(truth).name}/; `zipp persona-check` joins every user). "
        "A persona names a community through a subreddit of it (an interest, a visual "
        "interest, or r/Name in its text) or a word of its vocabulary; precision and recall "
        "are over the personas naming at least one. Generic subreddits: interests, visual "
        "interests or r/ in text. Colour/light words of the visual interests are scored "
        "against the user's planted hue, saturation, brightness, contrast and grain, and "
        "against another user's (chance). Noise: visual-interest entries with no community "
        "subreddit, community word or colour word."
    )
    if not results:
        return f"{head}<p class='note'>{html.escape(note)} No personas.</p>"
    frame, table = fidelity_frame(results), fidelity_table(results)
    pq.write_table(
        pa.Table.from_pandas(frame.replace({np.nan: None}), preserve_index=False),
        out / "persona_fidelity.parquet",
    )
    plot = plot_fidelity(frame, out)
    columns = {c: c for c in table.columns}
    return (
        f"{head}<p class='note'>{html.escape(note)}</p>"
        + table_html(table, columns, "fidelity")
        + f"<p><img class='plot' src='{plot}' alt='{plot}'></p>"
    )


def smoke_banner(io: StageIO) -> str:
    """What the embedded default's model is, and how text-responsive its check found it."""

    text = (
        "Smoke model: a tiny Stable Diffusion pipeline (32 px) that stage smoke trained here "
        "for a few CPU minutes on this lake's history image posts and their titles. It learns "
        "which title words go with which colours, nothing more; it is no image model."
    )
    check = io.path(SMOKE_MODEL) / "check.parquet"
    if check.exists():
        c = pq.read_table(check).to_pandas()
        groups = int(c["groups"].iloc[0])
        text += (
            f" Community check: a prompt of one subreddit's title words makes images whose "
            f"nearest posted-image centroid among {groups} subreddits is its own for "
            f"{c['nearest_share'].mean():.0%} (chance {1 / groups:.0%}); mean rank of its own "
            f"{c['rank'].mean():.2f} (chance {(groups + 1) / 2:.1f})."
        )
    return text


def report(io: StageIO) -> None:
    """bench/* -> reports/zipbench/index.html (+ summary.parquet, plots, images)."""
    from evaluation.summary import ipf_table, method_table, persona_gains, shots_table
    from llm.demographic_targets import resolve
    from schemas.persona import persona_for

    cfg = io.config
    scores = io.read("bench/scores").to_pandas()
    images = io.read("bench/images").to_pandas()
    personas = io.read("gold/personas")
    # a failed judge call leaves the image's CLIPScore and CMMD standing: only its judge
    # score is missing (dropping the row would bias every method's other columns)
    judge_failed = int((scores["status"] == "failed").sum())
    scores.loc[scores["status"] != "done", "judge_score"] = np.nan
    refs, encoder = reference_vectors(io)
    out = io.lake.staging("report", "zipbench")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    table = by_method_order(method_table(scores, refs))
    gains = persona_gains(table)
    users = sorted(int(u) for u in scores["user_id"].unique())
    demo = {
        u: (p or {}).get("demographics") or {}
        for u, p in zip(users, persona_for([(u, "-") for u in users], personas), strict=True)
    }
    targets = resolve(cfg.report.ipf_targets_file, cfg.report.ipf_targets)  # the file wins
    ipf, ipf_note = ipf_table(
        scores, demo, targets.attributes if targets else {}, targets.label if targets else ""
    )
    plots = plot_methods(table, gains, out)
    grid = grids(io, images, scores, personas, out)
    judge = cfg.judge
    agreement = agreement_section(io, judge)
    fidelity = fidelity_section(io, personas, out)
    study = study_section(io.read("bench/study_votes").to_pandas(), out, table_html)
    persona_llm = judge.persona_llm or cfg.llm.specs()[0].label
    sweep = sweep_section(scores, judge.label, persona_llm, out, table_html)
    smoke = bool(images["smoke_model"].any()) if len(images) else False
    template_llm = any(s.backend == "template" for s in cfg.llm.specs())
    banners = []
    if smoke:
        banners.append(smoke_banner(io))
    if template_llm:
        banners.append(
            "Personas and rewrites are template-made (deterministic, no LLM): llm.backend=template."
        )
    if judge.backend == "template":
        banners.append(
            "Judge: template, not an LLM — the score is the image's similarity to the user's "
            f"reference images in the '{encoder}' feature space (×100 → 0–10)."
        )
    facts = {
        "users": str(scores["user_id"].nunique()),
        "images scored": str(len(scores)),
        "images failed": str(int((images["status"] != "done").sum())),
        "judge calls failed": str(judge_failed),
        "feature space": encoder,
        "LLM judge": "off (judge.backend: none)" if judge.off else judge.label,
        "preference judge": f"learned on history images (logistic regression, '{encoder}' space)",
        "diffusion": str(images["model"].iloc[0]) if len(images) else "-",
    }
    if not judge.off:
        facts["LLM judge sees personas by"] = judge.persona_llm or cfg.llm.specs()[0].label
    render(
        out,
        "ZIPBench report",
        banners,
        table,
        gains,
        ipf,
        ipf_note,
        plots,
        grid,
        facts,
        agreement,
        shots=shots_table(table, cfg.rewrite.k),
        fidelity=fidelity,
        study=study,
        sweep=sweep,
    )
    summary = pa.Table.from_pandas(table.replace({np.nan: None}), preserve_index=False)
    pq.write_table(summary, out / "summary.parquet")
    if not agreement.table.empty:
        agreement_out = agreement.table.replace({np.nan: None})
        pq.write_table(
            pa.Table.from_pandas(agreement_out, preserve_index=False), out / "agreement.parquet"
        )
    io.commit(OUT, out)
    index = io.path(OUT) / "index.html"
    io.details.update(report=str(index), methods=len(table), grids=len(grid))
    if not agreement.table.empty:
        io.details["agreement"] = agreement.table.round(4).to_dict("records")
    io.console.print(f"  report: {index}")


STAGE = Stage(
    name="report",
    run=report,
    engine="local",
    inputs=(
        "bench/scores",
        "bench/agreement",
        "bench/images",
        "gold/personas",
        "bench/users",
        "bench/references",
        "silver/image_embeddings",
        "silver/user_images",  # post ids only: the persona-fidelity join, no names
        "bench/study_votes",  # `zipp study export --lake`: the human A/B study, when run
        SMOKE_MODEL,
    ),
    files=("report.ground_truth", "report.ipf_targets_file"),
    outputs=(OUT,),
    folders=(MEDIA,),
    config=("report", "llm", "judge", "rewrite.k"),
    summary="ZIPBench HTML report: method x benchmark table, win rates vs none and swapped, "
    "gains, scorer agreement with the truth, plots, image grids",
)
