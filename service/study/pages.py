"""The rater's pages as plain HTML (no script, no external asset): every value escaped.
The pair page names no method anywhere (text, attributes, image URLs): its images are
addressed by random ids the store maps to the rater's session."""

from __future__ import annotations

from html import escape

from service.study.store import Pair
from service.study.survey import Question, Survey

CSS = """
body{font-family:system-ui,sans-serif;margin:0 auto;padding:1.5rem;max-width:960px;color:#222}
h1{font-size:1.4rem} .note{color:#555;font-size:.9rem} .error{color:#a40000;font-weight:600}
label{display:block;font-weight:600;margin-top:1rem} .help{color:#666;font-size:.85rem}
input[type=text],textarea,select{width:100%;max-width:640px;font:inherit;padding:.3rem}
textarea{min-height:5rem}
.pair{display:flex;gap:2rem;flex-wrap:wrap;margin:1rem 0}
.side{text-align:center} .side img{width:320px;height:320px;image-rendering:pixelated;
border:1px solid #bbb;background:#eee}
.votes button{font:inherit;padding:.5rem 1.2rem;margin-right:.6rem;cursor:pointer}
.progress{font-weight:600} nav{margin-top:2rem;font-size:.85rem}
"""


def page(title: str, body: str, refresh: int | None = None) -> str:
    """A whole page."""
    meta = f"<meta http-equiv='refresh' content='{int(refresh)}'>" if refresh else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"{meta}<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>"
    )


def _nav() -> str:
    return "<nav><a href='/study'>the study</a> · <a href='/study/data'>your data</a></nav>"


def _hidden(csrf: str) -> str:
    return f"<input type='hidden' name='csrf' value='{escape(csrf)}'>"


def _field(q: Question, value) -> str:
    name = escape(q.id)
    if isinstance(value, list):
        value = ", ".join(value)
    value = escape(str(value or ""))
    req = " required" if q.required else ""
    if q.kind == "textarea":
        widget = (
            f"<textarea id='{name}' name='{name}' maxlength='{q.max_chars}'{req}>{value}</textarea>"
        )
    elif q.kind == "choice":
        opts = "<option value=''>—</option>" + "".join(
            f"<option value='{escape(o.label)}'"
            + (" selected" if escape(o.label) == value else "")
            + f">{escape(o.label)}</option>"
            for o in q.options
        )
        widget = f"<select id='{name}' name='{name}'{req}>{opts}</select>"
    else:
        cap = q.max_chars * q.max_items if q.kind == "list" else q.max_chars
        widget = (
            f"<input type='text' id='{name}' name='{name}' maxlength='{cap}' value='{value}'{req}>"
        )
    help_ = f"<div class='help'>{escape(q.help)}</div>" if q.help else ""
    return f"<label for='{name}'>{escape(q.label)}</label>{help_}{widget}"


def survey_page(survey: Survey, csrf: str, answers: dict | None = None, error: str = "") -> str:
    """The intake survey (answers kept when it comes back with an error)."""
    answers = answers or {}
    fields = "".join(_field(q, answers.get(q.id)) for q in survey.questions)
    err = f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    body = (
        f"<h1>{escape(survey.title)}</h1><p>{escape(survey.intro)}</p>{err}"
        f"<form method='post' action='/study/survey' id='survey'>{_hidden(csrf)}{fields}"
        "<p><button type='submit'>Continue</button></p></form>" + _nav()
    )
    return page(survey.title, body)


def wait_page(made: int, total: int, error: str | None) -> str:
    """While the rater's persona and images are made (the page reloads itself)."""
    if error:
        body = (
            "<h1>Something went wrong</h1><p class='error'>Your pictures could not be made. "
            "The study team can see it on their progress page; please come back later "
            "with your invite link.</p>"
        )
        return page("Study: something went wrong", body + _nav())
    body = (
        "<h1>Making your pictures</h1><p>We are building your persona from your answers "
        "and drawing pictures for it. This page refreshes by itself.</p>"
        f"<p class='progress' id='rendered'>{made} of {total} pictures ready</p>"
    )
    return page("Study: making your pictures", body + _nav(), refresh=2)


def pair_page(pair: Pair, number: int, total: int, csrf: str) -> str:
    """One pair: the prompt, two pictures, three buttons; no method named."""
    body = (
        f"<p class='progress' id='progress'>{number} of {total}</p>"
        "<h1>Which picture fits you better?</h1>"
        f"<p>Both pictures were drawn for the prompt <q id='prompt'>{escape(pair.prompt)}</q>.</p>"
        "<div class='pair'>"
        f"<div class='side'><img id='left' src='/study/image/{escape(pair.left_image)}' "
        "alt='the left picture'><div>Left</div></div>"
        f"<div class='side'><img id='right' src='/study/image/{escape(pair.right_image)}' "
        "alt='the right picture'><div>Right</div></div></div>"
        f"<form method='post' action='/study/vote' class='votes'>{_hidden(csrf)}"
        f"<input type='hidden' name='pair' value='{escape(pair.id)}'>"
        "<button type='submit' name='vote' value='left' id='vote-left'>Left</button>"
        "<button type='submit' name='vote' value='right' id='vote-right'>Right</button>"
        "<button type='submit' name='vote' value='cant_tell' id='vote-cant-tell'>"
        "Can't tell</button></form>" + _nav()
    )
    return page(f"Study: pair {number} of {total}", body)


def done_page(total: int) -> str:
    body = (
        f"<h1>Thank you</h1><p id='finished'>You judged all {total} pairs. You can close "
        "this tab.</p>"
    )
    return page("Study: thank you", body + _nav())


DELETION = (
    "Deleting removes your survey answers, the persona built from them, the prompts "
    "rewritten for it and your pictures, and closes your invite link. Your votes are kept, "
    "anonymously: they are stored under a random rater id that is not your invite code and "
    "that nothing else links to you."
)


def data_page(
    survey: Survey, answers: dict | None, persona: dict | None, votes: int, csrf: str
) -> str:
    """What the study keeps about the rater, and the delete button."""
    labels = {q.id: q.label for q in survey.questions}
    rows = "".join(
        f"<tr><th>{escape(labels.get(k, k))}</th>"
        f"<td>{escape(', '.join(v) if isinstance(v, list) else str(v))}</td></tr>"
        for k, v in (answers or {}).items()
    )
    shown = escape(persona.get("text", "")) if persona else "not made yet"
    body = (
        "<h1>Your data</h1><h2>Your survey answers</h2>"
        + (f"<table id='answers'>{rows}</table>" if rows else "<p>not given yet</p>")
        + f"<h2>Your persona</h2><p id='persona'>{shown}</p>"
        f"<h2>Your votes</h2><p>{votes} so far.</p>"
        f"<h2>Delete my data</h2><p id='deletion'>{escape(DELETION)}</p>"
        f"<form method='post' action='/study/delete'>{_hidden(csrf)}"
        "<label><input type='checkbox' name='confirm' value='yes' required> "
        "Yes, delete my survey answers, persona and pictures</label>"
        "<p><button type='submit' id='delete'>Delete my data</button></p></form>" + _nav()
    )
    return page("Study: your data", body)


def deleted_page(files: int) -> str:
    body = (
        "<h1>Your data is deleted</h1><p id='deleted'>Your survey answers, persona and "
        f"{files} picture(s) are gone and your invite link is closed. Your votes stay, "
        "anonymously, under a random rater id.</p>"
    )
    return page("Study: data deleted", body)


def message_page(title: str, message: str, status: int) -> str:
    """A refusal or an error, for a browser."""
    body = f"<h1>{escape(title)}</h1><p class='error' id='message'>{escape(message)}</p>"
    return page(f"Study: {title}", body + _nav())
