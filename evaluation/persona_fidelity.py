"""Persona fidelity against the sample world's planted truth, per LLM (only checks and
reports read the truth: `zipp persona-check` and the report's section).

A persona names a planted community when one of its interests or visual interests is one
of the community's subreddits (written as `schemas.subreddit_names.readable` writes it, or
`r/Name`; compared case-, space- and punctuation-insensitively) or holds one of the
community's vocabulary words, or when its text mentions `r/Name` or holds a vocabulary
word. Plain words of the text are never read as subreddit names (`funny` in a sentence
is not r/funny). Per persona of a user the truth knows:

- community precision (share of the communities it names that are the user's planted
  ones) and recall (share of the user's planted communities it names), averaged over the
  personas that name at least one community; the others are counted;
- the share naming a generic subreddit (interests, visual interests, or `r/` in text);
- the share naming the user's disliked community as a like (interests, visual interests);
- demographics per attribute: coverage (share stated) and accuracy among the stated;
- colour and light words of the visual interests (`evaluation.colour_lexicon`) against
  the planted taste, beside the same words scored against another user's taste (the chance level);
- noise: visual-interest entries that are neither a planted community's subreddit, nor
  hold a community word, nor a colour/light word (a generic subreddit is noise there);
  their share and the commonest ones.

Usernames are used only inside the join (`_authors`); nothing returned holds one, and a
noise entry that is some user's name is left out of the top list.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from evaluation.colour_lexicon import agrees, colour_words

#: persona demographics field -> the truth's users.parquet column
DEMOGRAPHICS = {"age": "age_band", "gender": "gender", "region": "region"}
#: stated values that state nothing
UNSTATED = {
    "",
    "unknown",
    "none",
    "null",
    "na",
    "n a",
    "not stated",
    "unspecified",
    "prefer not to say",
}


#: each measure's title, in the order the command and the report show them
FIDELITY_COLUMNS = {
    "personas": "personas (of users in the truth)",
    "failed": "failed persona rows",
    "unjoined": "personas not joined to the truth",
    "precision": "community precision ↑",
    "recall": "community recall ↑",
    "naming_none": "personas naming no community",
    "generic_share": "naming a generic subreddit ↓",
    "disliked_share": "disliked community as a like ↓",
    "age_coverage": "age stated",
    "age_accuracy": "age correct (of stated)",
    "gender_coverage": "gender stated",
    "gender_accuracy": "gender correct (of stated)",
    "region_coverage": "region stated",
    "region_accuracy": "region correct (of stated)",
    "colour_coverage": "with colour/light words",
    "colour_words": "colour/light words scored",
    "colour_agreement": "colour agreement with own taste ↑",
    "colour_agreement_shuffled": "colour agreement with another user's taste",
    "noise_share": "noise in visual interests ↓",
    "noise_top": "commonest noise",
}


def _key(text: str) -> str:
    """How a subreddit is matched: lower case, letters and digits only, no `r/`."""
    text = text.strip().lower()
    return re.sub(r"[^a-z0-9]", "", text[2:] if text.startswith("r/") else text)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _mentions(text: str) -> list[str]:
    """The subreddits a text names as `r/Name`, as `_key` writes them."""
    return [_key(m) for m in re.findall(r"(?<![A-Za-z0-9_])r/([A-Za-z0-9_]+)", text)]


def _list(value: object) -> list[str]:
    """A list column's value (a list, an array, or None) as a list."""
    return [] if value is None else [str(v) for v in value]


def _phrase(text: str) -> str:
    return " ".join(_words(text))


class MissingTruth(ValueError):
    """The ground-truth folder lacks what persona fidelity needs."""


@dataclass
class Truth:
    """What fidelity reads from a ground-truth folder (names stay in `authors`)."""

    subreddit: dict[str, tuple[str | None, bool]]  # _key(name) -> (community, generic)
    vocab: dict[str, str]  # word -> community
    users: pd.DataFrame  # one row per user, indexed by lower-cased author
    fields: tuple[str, ...]  # the taste vector's layout
    images: Path  # images.parquet: post -> author, for the join through posts

    @property
    def authors(self) -> set[str]:
        return set(self.users.index)


def load_truth(ground_truth: str | Path) -> Truth:
    """Communities, subreddits and users of a sample world's ground_truth folder."""
    root = Path(ground_truth)
    need = ("communities.parquet", "subreddits.parquet", "users.parquet")
    missing = [n for n in need if not (root / n).is_file()]
    users = pq.read_table(root / "users.parquet") if "users.parquet" not in missing else None
    cols = {"author", "communities", "taste", "disliked_community", *DEMOGRAPHICS.values()}
    if missing or not cols <= set(users.column_names):
        raise MissingTruth(
            f"no planted world's truth for persona fidelity in {root.name}/ (it needs "
            f"{', '.join(need)} with the users' communities, taste and demographics)"
        )
    meta = users.schema.metadata or {}
    fields = tuple(
        meta.get(b"taste_fields", b"hue,hue2,saturation,brightness,contrast,grain")
        .decode()
        .split(",")
    )
    comms = pq.read_table(root / "communities.parquet").to_pylist()
    subs = pq.read_table(root / "subreddits.parquet").to_pylist()
    subreddit = {_key(s["subreddit"]): (s["community"], bool(s["generic"])) for s in subs}
    for c in comms:  # a community's own list wins over a stray row
        subreddit.update({_key(s): (c["community"], False) for s in c["subreddits"]})
    vocab = {w.lower(): c["community"] for c in comms for w in c["vocab"]}
    frame = users.to_pandas()
    frame.index = frame.pop("author").str.lower()
    users = frame[~frame.index.duplicated()]
    return Truth(subreddit, vocab, users, fields, root / "images.parquet")


def _authors(
    user_ids: pd.Series, truth: Truth, users: pd.DataFrame | None, posts: pd.DataFrame | None
) -> pd.Series:
    """Each user id's row label in `truth.users` (lower-cased author), or NaN: through
    silver/users (`users`: user_id, author) or through posted images (`posts`: user_id,
    post_id) and the truth's images.parquet authors, as `agreement.truth_distances` does."""
    if users is not None:
        name = users.drop_duplicates("user_id").set_index("user_id")["author"].str.lower()
    elif posts is not None:
        images = pd.read_parquet(truth.images, columns=["post_id", "author"])
        by_post = images.drop_duplicates("post_id").set_index("post_id")["author"].str.lower()
        owner = posts[["user_id", "post_id"]].drop_duplicates()
        owner = owner.assign(author=owner["post_id"].map(by_post)).dropna(subset=["author"])
        name = owner.groupby("user_id")["author"].agg(lambda s: s.mode().iloc[0])
    else:
        raise ValueError("persona fidelity joins the truth through users or posts")
    name = name[name.isin(truth.users.index)]
    return user_ids.map(name)


@dataclass
class Named:
    """What one persona names: communities (as likes, and anywhere), generic subreddits."""

    likes: set[str] = field(default_factory=set)  # through interests / visual interests
    anywhere: set[str] = field(default_factory=set)  # likes and the text
    generic: bool = False


def named(persona: dict, truth: Truth) -> Named:
    """The planted communities and generic subreddits a persona names."""
    out = Named()
    for entry in [*_list(persona.get("interests")), *_list(persona.get("visual_interests"))]:
        hits = [
            truth.subreddit[k] for k in [_key(entry), *_mentions(entry)] if k in truth.subreddit
        ]
        for community, generic in hits:
            out.generic |= generic
            out.likes |= {community} - {None}
        if not hits:
            out.likes |= {truth.vocab[w] for w in _words(entry) if w in truth.vocab}
    out.anywhere |= out.likes
    text = persona.get("text") or ""
    for community, generic in (truth.subreddit[k] for k in _mentions(text) if k in truth.subreddit):
        out.generic |= generic
        out.anywhere |= {community} - {None}
    out.anywhere |= {truth.vocab[w] for w in _words(text) if w in truth.vocab}
    return out


def _demographic(value: object) -> str | None:
    """A stated demographic value as compared (letters, digits and `+` only), or None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = _phrase(str(value).replace("+", " plus "))
    if text in UNSTATED:
        return None
    return text.replace(" plus", "+").replace(" ", "")


def _age_band(value: str, bands: list[str]) -> str:
    """A stated age (as `_demographic` writes it) as the truth's band (`18-24`, `55+`): a
    plain number goes to the band holding it; anything else (`30s`) stays as stated."""
    if not value.isdigit():
        return value
    age = int(value)
    for band in bands:
        lo, _, hi = band.replace("+", "-").partition("-")
        if lo.strip().isdigit() and int(lo) <= age <= (int(hi) if hi.strip().isdigit() else 999):
            return _demographic(band) or value
    return value


@dataclass
class PersonaFidelity:
    """One LLM's personas against the planted truth."""

    llm: str
    personas: int  # done personas of users the truth knows
    failed: int  # this LLM's failed persona rows
    unjoined: int  # done personas whose user the join did not find in the truth
    precision: float
    recall: float
    naming_none: int  # personas naming no planted community
    generic_share: float
    disliked_share: float
    demographics: dict[str, tuple[float, float]]  # attribute -> (coverage, accuracy)
    colour_coverage: float
    colour_agreement: float
    colour_agreement_shuffled: float
    colour_words: int  # colour/light words scored
    noise_share: float
    noise_top: list[tuple[str, int]]

    def to_row(self) -> dict:
        """One flat row (FIDELITY_COLUMNS' keys and the counts)."""
        row = {k: v for k, v in self.__dict__.items() if k not in ("demographics", "noise_top")}
        for attr, (coverage, accuracy) in self.demographics.items():
            row[f"{attr}_coverage"], row[f"{attr}_accuracy"] = coverage, accuracy
        row["noise_top"] = ", ".join(f"{w} ({n})" for w, n in self.noise_top)
        return row

    def summary(self) -> str:
        demo = "; ".join(
            f"{a} stated {c:.1%}, correct {acc:.2f}" for a, (c, acc) in self.demographics.items()
        )
        return (
            f"{self.llm}: {self.personas:,} personas of users in the truth "
            f"({self.failed} failed, {self.unjoined} not joined). Communities: precision "
            f"{self.precision:.3f}, recall {self.recall:.3f} ({self.naming_none} name none). "
            f"Naming a generic subreddit: {self.generic_share:.1%}; the disliked community as "
            f"a like: {self.disliked_share:.1%}. Demographics: {demo}. Colour/light words in "
            f"visual interests: {self.colour_coverage:.1%} of personas, {self.colour_words} "
            f"words scored, agreement with the planted taste {self.colour_agreement:.2f} "
            f"(with another user's: {self.colour_agreement_shuffled:.2f}). Noise: "
            f"{self.noise_share:.1%} of visual-interest entries"
            + (f", commonest {self.to_row()['noise_top']}" if self.noise_top else "")
        )


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _share(values: list[bool]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _without_names(noise: Counter, truth: Truth, top: int = 10) -> list[tuple[str, int]]:
    """The commonest noise entries, leaving out any that holds a user's name."""
    names = [f" {_phrase(a)} " for a in truth.authors]
    out = []
    for entry, n in noise.most_common():
        if len(out) == top:
            break
        if not any(name in f" {entry} " for name in names):
            out.append((entry, n))
    return out


def _one_llm(llm: str, rows: pd.DataFrame, truth: Truth) -> PersonaFidelity:
    done = rows[rows["status"] == "done"]
    joined = done[done["_author"].notna()]
    planted_rows = truth.users.loc[joined["_author"]]
    bands = sorted({str(b) for b in truth.users["age_band"].dropna()})
    precision, recall, generic, disliked = [], [], [], []
    demo: dict[str, list[bool | None]] = {a: [] for a in DEMOGRAPHICS}
    colour_sets, tastes, noise, entries = [], [], Counter(), 0
    for persona, (_, user) in zip(joined.to_dict("records"), planted_rows.iterrows(), strict=True):
        names = named(persona, truth)
        planted = set(user["communities"])
        if names.anywhere and planted:
            hit = len(names.anywhere & planted)
            precision.append(hit / len(names.anywhere))
            recall.append(hit / len(planted))
        generic.append(names.generic)
        disliked.append(user["disliked_community"] in names.likes)
        stated = persona.get("demographics") or {}
        for attr, col in DEMOGRAPHICS.items():
            value = _demographic(stated.get(attr))
            if value is not None and attr == "age":
                value = _age_band(value, bands)
            demo[attr].append(None if value is None else value == _demographic(user[col]))
        visual = _list(persona.get("visual_interests"))
        words = colour_words(visual)
        if words:
            colour_sets.append(words)
            tastes.append(dict(zip(truth.fields, map(float, user["taste"]), strict=False)))
        for entry in visual:
            entries += 1
            if not (
                truth.subreddit.get(_key(entry), (None,))[0] is not None
                or any(w in truth.vocab for w in _words(entry))
                or colour_words([entry])
            ):
                noise[_phrase(entry)] += 1

    def agreement(shift: int) -> float:
        if len(colour_sets) <= shift:
            return float("nan")
        own = [tastes[(i + shift) % len(tastes)] for i in range(len(tastes))]
        return _mean(
            [_share([agrees(w, t) for w in ws]) for ws, t in zip(colour_sets, own, strict=True)]
        )

    return PersonaFidelity(
        llm=llm,
        personas=len(joined),
        failed=int((rows["status"] != "done").sum()),
        unjoined=len(done) - len(joined),
        precision=_mean(precision),
        recall=_mean(recall),
        naming_none=len(joined) - len(precision),
        generic_share=_share(generic),
        disliked_share=_share(disliked),
        demographics={
            a: (
                _share([v is not None for v in vals]),
                _share([v for v in vals if v is not None]),
            )
            for a, vals in demo.items()
        },
        colour_coverage=len(colour_sets) / len(joined) if len(joined) else float("nan"),
        colour_agreement=agreement(0),
        colour_agreement_shuffled=agreement(1),
        colour_words=sum(map(len, colour_sets)),
        noise_share=sum(noise.values()) / entries if entries else float("nan"),
        noise_top=_without_names(noise, truth),
    )


def persona_fidelity(
    personas: pa.Table | pd.DataFrame,
    ground_truth: str | Path,
    *,
    users: pa.Table | pd.DataFrame | None = None,
    posts: pa.Table | pd.DataFrame | None = None,
) -> list[PersonaFidelity]:
    """Each LLM's personas (gold/personas rows) against the planted truth, in LLM order.
    The truth is joined through `users` (silver/users: user_id, author) or, naming no one
    in the lake, through `posts` (user_id, post_id of their image posts)."""
    truth = load_truth(ground_truth)

    def frame(t):
        return t.to_pandas() if isinstance(t, pa.Table) else t

    rows = frame(personas)
    rows = rows.assign(_author=_authors(rows["user_id"], truth, frame(users), frame(posts)))
    return [_one_llm(llm, group, truth) for llm, group in rows.groupby("llm", sort=True)]


def fidelity_frame(results: list[PersonaFidelity]) -> pd.DataFrame:
    """One row per LLM."""
    return pd.DataFrame([r.to_row() for r in results])


def fidelity_table(results: list[PersonaFidelity]) -> pd.DataFrame:
    """One row per measure (FIDELITY_COLUMNS' titles), one column per LLM."""
    rows = [r.to_row() for r in results]
    return pd.DataFrame(
        [
            {"measure": title} | {r["llm"]: r[key] for r in rows}
            for key, title in FIDELITY_COLUMNS.items()
        ]
    )


def plot_fidelity(frame: pd.DataFrame, out: Path, name: str = "persona_fidelity.png") -> str:
    """Bars per LLM: precision, recall, generic share, disliked share, colour agreement
    (and its chance level); returns the file name written under `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = {
        "precision": "precision",
        "recall": "recall",
        "generic_share": "generic",
        "disliked_share": "disliked",
        "colour_agreement": "colour",
        "colour_agreement_shuffled": "colour\n(another's)",
    }
    fig, ax = plt.subplots(figsize=(5 + 1.5 * len(frame), 3.6))
    x = np.arange(len(bars))
    width = 0.8 / max(len(frame), 1)
    for i, row in enumerate(frame.to_dict("records")):
        ax.bar(x + i * width, [row[k] for k in bars], width, label=row["llm"])
    ax.set_xticks(x + width * (len(frame) - 1) / 2, list(bars.values()), fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title("persona fidelity vs the planted truth, per LLM", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name
