"""The intake survey: its questions from an editable YAML file, a rater's answers checked
(sizes, counts, choices: a form is hostile input) and turned into what the cold start
takes, `service.cold_start.NewUser` (the communities named, their texts as comments)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.cold_start import NewUser

#: a community name as a rater may write it: an optional r/ and Reddit's name characters
_COMMUNITY = re.compile(r"^(?:/?r/)?[A-Za-z0-9][A-Za-z0-9_]{0,49}$")
_SPLIT = re.compile(r"[,\n;]+")


class SurveyError(ValueError):
    """An answer the survey refuses; `field` names its question."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class Option(BaseModel):
    """A choice's option: its label and what it says about the rater ('': nothing)."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=80)
    say: str | None = Field(None, max_length=200)


class Question(BaseModel):
    """One question of the survey file."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    kind: Literal["list", "text", "textarea", "choice"]
    label: str = Field(min_length=1, max_length=200)
    help: str = Field("", max_length=400)
    required: bool = False
    max_chars: int = Field(500, ge=1, le=5000)
    max_items: int = Field(20, ge=1, le=100)
    options: list[Option] = Field(default_factory=list)
    use: Literal["subreddits", "comment", "profile", "none"] = "none"
    say: str | None = Field(None, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _plain_options(cls, data):
        if isinstance(data, dict) and isinstance(data.get("options"), list):
            data = dict(data)
            data["options"] = [{"label": o} if isinstance(o, str) else o for o in data["options"]]
        return data

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind == "choice" and not self.options:
            raise ValueError(f"question {self.id}: a choice needs options")
        if self.use == "subreddits" and self.kind != "list":
            raise ValueError(f"question {self.id}: use subreddits needs kind list")
        return self

    def sentence(self, label: str) -> str:
        """What a profile answer says about the rater ('' for nothing)."""
        opt = next((o for o in self.options if o.label == label), None)
        say = opt.say if opt is not None and opt.say is not None else self.say
        if say is None:
            return f"{self.label.rstrip('?:. ')}: {label}."
        return say.replace("{}", label) if say else ""


class Survey(BaseModel):
    """The survey file: a title, an introduction and the questions."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field("About you", max_length=200)
    intro: str = Field("", max_length=2000)
    questions: list[Question] = Field(min_length=1, max_length=40)

    @model_validator(mode="after")
    def _one_community_question(self):
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        if sum(q.use == "subreddits" for q in self.questions) != 1:
            raise ValueError("exactly one question must have use: subreddits")
        return self


def load_survey(path: str | Path) -> Survey:
    """The survey file, validated; ValueError naming the file and the problem."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return Survey.model_validate(data)
    except FileNotFoundError:
        raise ValueError(f"no survey file at {path}") from None
    except (yaml.YAMLError, ValidationError) as e:
        raise ValueError(f"{path}: {str(e).splitlines()[0]}: {e}") from None


def _text(q: Question, raw: str) -> str:
    text = " ".join(raw.split()) if q.kind != "textarea" else raw.strip()
    if len(text) > q.max_chars:
        raise SurveyError(q.id, f"{q.label}: at most {q.max_chars} characters")
    return text


def _items(q: Question, raw: str) -> list[str]:
    items = [i.strip() for i in _SPLIT.split(raw) if i.strip()]
    if len(items) > q.max_items:
        raise SurveyError(q.id, f"{q.label}: at most {q.max_items} entries")
    for i in items:
        if len(i) > q.max_chars:
            raise SurveyError(q.id, f"{q.label}: each entry at most {q.max_chars} characters")
        if q.use == "subreddits" and not _COMMUNITY.match(i):
            raise SurveyError(
                q.id, f"{q.label}: {i[:40]!r} is not a community name (letters, digits, _)"
            )
    return list(dict.fromkeys(items))


def clean_answers(survey: Survey, form: Mapping[str, str]) -> dict[str, str | list[str]]:
    """The answers to the survey's questions (other fields ignored), checked: required
    ones present, sizes and counts within the caps, a choice one of its options."""
    out: dict[str, str | list[str]] = {}
    for q in survey.questions:
        raw = form.get(q.id, "")
        if not isinstance(raw, str):
            raise SurveyError(q.id, f"{q.label}: one answer expected")
        if len(raw) > 20_000:
            raise SurveyError(q.id, f"{q.label}: the answer is too long")
        if q.kind == "list":
            value: str | list[str] = _items(q, raw)
        elif q.kind == "choice":
            value = raw.strip()
            if value and value not in {o.label for o in q.options}:
                raise SurveyError(q.id, f"{q.label}: choose one of the options")
        else:
            value = _text(q, raw)
        if q.required and not value:
            raise SurveyError(q.id, f"{q.label}: please answer this question")
        out[q.id] = value
    return out


def new_user(
    survey: Survey,
    answers: Mapping[str, str | list[str]],
    resolve: Callable[[list[str]], tuple[list[int], list[str]]],
    examples: list[str] = (),
) -> NewUser:
    """The rater as a new user of the cold start: the communities they named, and their
    texts (comment and profile answers) as comments in the first one the lake knows.
    `resolve` is `PersonaEngine.resolve`; SurveyError when it knows none of them."""
    q_subs = next(q for q in survey.questions if q.use == "subreddits")
    subs = list(answers.get(q_subs.id) or [])
    known, _unknown = resolve(subs)
    if not known:
        hint = f" (for example: {', '.join(examples[:8])})" if examples else ""
        raise SurveyError(
            q_subs.id,
            "none of the communities you named is one this study knows; please add at least "
            f"one more{hint}",
        )
    first = next(s for s in subs if resolve([s])[0])
    comments = [
        str(answers[q.id])
        for q in survey.questions
        if q.use == "comment" and str(answers.get(q.id) or "").strip()
    ]
    profile = " ".join(
        s
        for q in survey.questions
        if q.use == "profile" and answers.get(q.id)
        for s in [q.sentence(str(answers[q.id]))]
        if s
    )
    if profile:
        comments.append(profile)
    return NewUser(subreddits=tuple(subs), comments=tuple((first, c) for c in comments))
