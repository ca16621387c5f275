"""The admin's pages: log in with the admin token, create a study (its invite links are
shown once), and each study's progress (raters started and finished, votes, the render
queue) and results (win rates, two-sided binomial p per method pair), with exports."""

from __future__ import annotations

from html import escape

import pandas as pd

from evaluation.study_section import COLUMNS
from service.study.pages import page


def _hidden(csrf: str) -> str:
    return f"<input type='hidden' name='csrf' value='{escape(csrf)}'>"


def login_page(error: str = "") -> str:
    err = f"<p class='error'>{escape(error)}</p>" if error else ""
    body = (
        f"<h1>Study admin</h1>{err}<form method='post' action='/admin/login'>"
        "<label for='token'>Admin token</label>"
        "<input type='password' id='token' name='token' autocomplete='off' required>"
        "<p><button type='submit'>Log in</button></p></form>"
    )
    return page("Study admin: log in", body)


def home_page(studies: list[dict], methods: tuple[str, ...], csrf: str) -> str:
    """Every study with a link to its progress, and the form for a new one."""
    rows = "".join(
        f"<li><a href='/admin/studies/{escape(s['id'])}'>{escape(s['name'])}</a> "
        f"({escape(', '.join(s['methods']))}; {len(s['prompts'])} prompts)</li>"
        for s in studies
    )
    boxes = "".join(
        f"<label><input type='checkbox' name='methods' value='{escape(m)}'> {escape(m)}</label>"
        for m in methods
    )
    body = (
        "<h1>Studies</h1>"
        + (f"<ul id='studies'>{rows}</ul>" if rows else "<p>No study yet.</p>")
        + "<h2>New study</h2><form method='post' action='/admin/studies'>"
        + _hidden(csrf)
        + "<label for='name'>Name</label><input type='text' id='name' name='name' "
        "maxlength='120'><fieldset><legend>Methods to compare (two or more)</legend>"
        + boxes
        + "</fieldset><label for='prompts'>Prompts, one a line</label>"
        "<textarea id='prompts' name='prompts' required></textarea>"
        "<label for='votes'>Votes per rater</label>"
        "<input type='text' id='votes' name='votes' value='12' inputmode='numeric'>"
        "<label for='raters'>Invites</label>"
        "<input type='text' id='raters' name='raters' value='10' inputmode='numeric'>"
        "<p><button type='submit'>Create</button></p></form>"
    )
    return page("Study admin", body)


def invites_page(study: dict, links: list[str]) -> str:
    """New invite links: shown this once (the store keeps only their digests)."""
    items = "".join(f"<li><code>{escape(u)}</code></li>" for u in links)
    body = (
        f"<h1>{escape(study['name'])}: {len(links)} invite link(s)</h1>"
        "<p class='error'>Copy them now: they are shown once and stored only as digests.</p>"
        f"<ol id='invites'>{items}</ol>"
        f"<p><a href='/admin/studies/{escape(study['id'])}'>the study's progress</a></p>"
    )
    return page("Study admin: invites", body)


def _table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p>No votes yet.</p>"
    cols = [c for c in COLUMNS if c in df.columns]
    head = "".join(f"<th>{escape(COLUMNS[c])}</th>" for c in cols)

    def cell(v) -> str:
        if isinstance(v, float):
            return "—" if v != v else f"{v:.3g}"
        return escape(str(v))

    body = "".join(
        "<tr>" + "".join(f"<td>{cell(r[c])}</td>" for c in cols) + "</tr>"
        for r in df.to_dict("records")
    )
    return f"<table id='results'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def study_page(study: dict, progress: dict, results: pd.DataFrame, csrf: str) -> str:
    """A study's progress, results and exports."""
    sid = escape(study["id"])
    facts = "".join(
        f"<tr><th>{escape(k.replace('_', ' '))}</th><td id='{escape(k)}'>{v}</td></tr>"
        for k, v in progress.items()
    )
    body = (
        f"<h1>{escape(study['name'])}</h1><p class='note'>{sid} · methods "
        f"{escape(', '.join(study['methods']))} · {len(study['prompts'])} prompts · "
        f"{study['votes_per_rater']} votes per rater</p>"
        f"<h2>Progress</h2><table id='progress'>{facts}</table>"
        f"<h2>Results</h2>{_table(results)}"
        f"<p><a href='/admin/studies/{sid}/export.csv'>votes (CSV)</a> · "
        f"<a href='/admin/studies/{sid}/export.parquet'>votes (Parquet)</a></p>"
        f"<h2>More invites</h2><form method='post' action='/admin/studies/{sid}/invites'>"
        f"{_hidden(csrf)}<input type='text' name='n' value='5' inputmode='numeric'>"
        "<button type='submit'>Make invites</button></form>"
        "<p><a href='/admin'>all studies</a></p>"
    )
    return page(f"Study admin: {study['name']}", body)
