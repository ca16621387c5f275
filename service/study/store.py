"""The study's store: studies and their invites, raters and their sessions, survey
answers, pairs and votes, and what deleting a rater's data removes. Invite codes and
session tokens are kept only as digests; a rater is known everywhere by a random id."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from schemas.study import VOTES
from service.study.db import Database
from service.study.pairs import PlannedPair, images_needed
from service.study.tokens import csrf_token, digest, new_id, new_secret

MAX_PROMPTS = 200
MAX_PROMPT_CHARS = 300
MAX_VOTES = 2000
MAX_INVITES = 10_000


class StudyError(ValueError):
    """A request the study's rules refuse; `status` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class AlreadyVoted(StudyError):
    status = 409


@dataclass(frozen=True)
class Rater:
    """A rater: random id, study, where they are in the flow."""

    id: str
    study: str
    state: str
    error: str | None


@dataclass(frozen=True)
class Pair:
    """A pair as the rater sees it (no method is shown; the store keeps them)."""

    id: str
    ordinal: int
    prompt: str
    left_image: str | None
    right_image: str | None
    vote: str | None


def check_study(
    methods: list[str], prompts: list[str], votes: int, allowed: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """(methods, prompts) of a new study, cleaned; StudyError saying what is wrong."""
    methods = list(dict.fromkeys(m.strip() for m in methods if m.strip()))
    bad = [m for m in methods if m not in allowed]
    if bad:
        raise StudyError(f"unknown method {bad[0]!r}: a new user can have {', '.join(allowed)}")
    if len(methods) < 2:
        raise StudyError("a study compares at least two methods")
    prompts = [" ".join(p.split()) for p in prompts if p.strip()]
    if not prompts or len(prompts) > MAX_PROMPTS:
        raise StudyError(f"a study has 1 to {MAX_PROMPTS} prompts (got {len(prompts)})")
    long = [p for p in prompts if len(p) > MAX_PROMPT_CHARS]
    if long:
        raise StudyError(f"a prompt has at most {MAX_PROMPT_CHARS} characters: {long[0][:40]}…")
    if not 1 <= votes <= MAX_VOTES:
        raise StudyError(f"votes per rater: 1 to {MAX_VOTES} (got {votes})")
    return methods, list(dict.fromkeys(prompts))


class Store:
    """Everything the web app and the CLI read and write, over one `Database`."""

    def __init__(self, db: Database):
        self.db = db

    # -- studies and invites --------------------------------------------------------------

    def create_study(
        self,
        name: str,
        methods: list[str],
        prompts: list[str],
        votes: int,
        invites: int,
        allowed: tuple[str, ...],
    ) -> tuple[str, list[str]]:
        """(study id, its invite codes: shown once, kept only as digests)."""
        methods, prompts = check_study(methods, prompts, votes, allowed)
        name = " ".join(name.split())[:120] or "study"
        study = new_id("s_", 6)
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO studies VALUES (?, ?, ?, ?, ?)",
                (study, name, json.dumps(methods), votes, self.db.clock()),
            )
            c.executemany(
                "INSERT INTO prompts VALUES (?, ?, ?)",
                [(study, i, p) for i, p in enumerate(prompts)],
            )
        return study, self.add_invites(study, invites)

    def add_invites(self, study: str, n: int) -> list[str]:
        """`n` new invite codes of a study."""
        if not 0 <= n <= MAX_INVITES:
            raise StudyError(f"invites: 0 to {MAX_INVITES} (got {n})")
        if self.study(study) is None:
            raise StudyError(f"no study {study!r}", 404)
        codes = [new_secret() for _ in range(n)]
        with self.db.tx() as c:
            c.executemany(
                "INSERT INTO invites (code_digest, study, created) VALUES (?, ?, ?)",
                [(digest(code), study, self.db.clock()) for code in codes],
            )
        return codes

    def study(self, study: str) -> dict | None:
        row = self.db.one("SELECT * FROM studies WHERE id = ?", (study,))
        if row is None:
            return None
        prompts = self.db.all(
            "SELECT text FROM prompts WHERE study = ? ORDER BY position", (study,)
        )
        return dict(row) | {
            "methods": json.loads(row["methods"]),
            "prompts": [p["text"] for p in prompts],
        }

    def studies(self) -> list[dict]:
        rows = self.db.all("SELECT id FROM studies ORDER BY created")
        return [self.study(r["id"]) for r in rows]

    # -- raters and sessions ----------------------------------------------------------------

    def open_invite(self, code: str) -> str:
        """A new session token for the invite's rater (made on the first open); an invite
        opened again resumes the same rater. StudyError for an unknown or closed one."""
        if not code or len(code) > 200:
            raise StudyError("this invite link is not valid", 404)
        with self.db.tx() as c:
            inv = c.execute(
                "SELECT * FROM invites WHERE code_digest = ?", (digest(code),)
            ).fetchone()
            if inv is None:
                raise StudyError("this invite link is not valid", 404)
            if inv["closed"] is not None:
                raise StudyError(
                    "this invite is closed: its rater's data was deleted at their request", 410
                )
            rater = inv["rater"]
            if rater is None:
                rater = new_id("r_", 6)
                c.execute(
                    "INSERT INTO raters (id, study, state, started) VALUES (?, ?, 'survey', ?)",
                    (rater, inv["study"], self.db.clock()),
                )
                c.execute(
                    "UPDATE invites SET rater = ? WHERE code_digest = ?", (rater, digest(code))
                )
            token = new_secret()
            c.execute(
                "INSERT INTO sessions VALUES (?, ?, ?)", (digest(token), rater, self.db.clock())
            )
        return token

    def rater(self, session: str | None) -> Rater | None:
        """The rater of a session token (None: no such session)."""
        if not session or len(session) > 200:
            return None
        row = self.db.one(
            "SELECT r.id, r.study, r.state, r.error FROM sessions s JOIN raters r "
            "ON r.id = s.rater WHERE s.digest = ?",
            (digest(session),),
        )
        return Rater(**dict(row)) if row else None

    def csrf(self, session: str) -> str:
        """The form token that goes with a session."""
        return csrf_token(self.db.csrf_key, digest(session))

    def survey(self, rater: str) -> dict | None:
        row = self.db.one("SELECT survey FROM raters WHERE id = ?", (rater,))
        return json.loads(row["survey"]) if row and row["survey"] else None

    def persona(self, rater: str) -> dict | None:
        row = self.db.one("SELECT persona FROM raters WHERE id = ?", (rater,))
        return json.loads(row["persona"]) if row and row["persona"] else None

    def start(self, rater: str, answers: dict, pairs: list[PlannedPair]) -> None:
        """Keep the survey answers, the rater's pairs (order and sides) and the images
        they need, and queue the persona job; only from the survey step."""
        with self.db.tx() as c:
            state = c.execute("SELECT state FROM raters WHERE id = ?", (rater,)).fetchone()
            if state is None or state["state"] != "survey":
                raise StudyError("the survey was already answered", 409)
            now = self.db.clock()
            c.execute(
                "UPDATE raters SET survey = ?, state = 'rendering' WHERE id = ?",
                (json.dumps(answers), rater),
            )
            c.executemany(
                "INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?)",
                [(new_id("p_"), rater, p.ordinal, p.position, p.left, p.right) for p in pairs],
            )
            c.executemany(
                "INSERT INTO images (id, rater, position, method, status) "
                "VALUES (?, ?, ?, ?, 'pending')",
                [(new_id("i_", 16), rater, pos, m) for pos, m in images_needed(pairs)],
            )
            c.execute(
                "INSERT INTO jobs (kind, rater, state, created, updated) "
                "VALUES ('persona', ?, 'pending', ?, ?)",
                (rater, now, now),
            )

    # -- pairs and votes -------------------------------------------------------------------

    def pairs(self, rater: str) -> list[Pair]:
        """The rater's pairs in their order, each with its images and vote."""
        rows = self.db.all(
            "SELECT p.id, p.ordinal, pr.text AS prompt, li.id AS left_image, "
            "ri.id AS right_image, v.vote FROM pairs p "
            "JOIN raters r ON r.id = p.rater "
            "JOIN prompts pr ON pr.study = r.study AND pr.position = p.position "
            "LEFT JOIN images li ON li.rater = p.rater AND li.position = p.position "
            "  AND li.method = p.left_method AND li.status = 'done' "
            "LEFT JOIN images ri ON ri.rater = p.rater AND ri.position = p.position "
            "  AND ri.method = p.right_method AND ri.status = 'done' "
            "LEFT JOIN votes v ON v.pair = p.id AND v.rater = p.rater "
            "WHERE p.rater = ? ORDER BY p.ordinal",
            (rater,),
        )
        return [Pair(**dict(r)) for r in rows]

    def vote(self, rater: str, pair: str, vote: str) -> None:
        """One vote; a second on the same pair is refused (the UNIQUE constraint)."""
        if vote not in VOTES:
            raise StudyError(f"a vote is one of {', '.join(VOTES)}")
        try:
            with self.db.tx() as c:
                state = c.execute("SELECT state FROM raters WHERE id = ?", (rater,)).fetchone()
                if state is None or state["state"] not in ("voting", "done"):
                    raise StudyError("this rater cannot vote now", 409)
                if not c.execute(
                    "SELECT 1 FROM pairs WHERE id = ? AND rater = ?", (pair, rater)
                ).fetchone():
                    raise StudyError("no such pair", 404)
                c.execute(
                    "INSERT INTO votes VALUES (?, ?, ?, ?)", (pair, rater, vote, self.db.clock())
                )
                left = c.execute(
                    "SELECT count(*) FROM pairs p LEFT JOIN votes v ON v.pair = p.id "
                    "WHERE p.rater = ? AND v.pair IS NULL",
                    (rater,),
                ).fetchone()[0]
                if not left:
                    c.execute(
                        "UPDATE raters SET state = 'done', finished = ? WHERE id = ?",
                        (self.db.clock(), rater),
                    )
        except sqlite3.IntegrityError as e:
            if "UNIQUE" not in str(e):
                raise
            raise AlreadyVoted("you already voted on this pair; each pair takes one vote") from None

    def image_file(self, rater: str, image: str) -> Path | None:
        """The PNG of one of the rater's images (None: not theirs, or not made)."""
        if not image or len(image) > 64:
            return None
        row = self.db.one(
            "SELECT path FROM images WHERE id = ? AND rater = ? AND status = 'done'",
            (image, rater),
        )
        return self.db.folder / row["path"] if row and row["path"] else None

    # -- deletion ---------------------------------------------------------------------------

    def delete_rater(self, rater: str) -> int:
        """Delete the rater's survey answers, persona, rewritten prompts and images (files
        too), their sessions and queued work, and close their invite. Their votes stay,
        under the random rater id alone. Returns the image files removed."""
        with self.db.tx() as c:
            c.execute(
                "UPDATE raters SET survey = NULL, persona = NULL, error = NULL, "
                "state = 'deleted', deleted = ? WHERE id = ?",
                (self.db.clock(), rater),
            )
            c.execute("DELETE FROM jobs WHERE rater = ?", (rater,))
            c.execute("DELETE FROM images WHERE rater = ?", (rater,))
            c.execute("DELETE FROM sessions WHERE rater = ?", (rater,))
            c.execute("UPDATE invites SET closed = ? WHERE rater = ?", (self.db.clock(), rater))
            study = c.execute("SELECT study FROM raters WHERE id = ?", (rater,)).fetchone()
        if study is None:
            return 0
        folder = self.image_folder(study["study"], rater)
        files = sum(1 for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0
        shutil.rmtree(folder, ignore_errors=True)
        return files

    def image_folder(self, study: str, rater: str) -> Path:
        """Where a rater's images are written."""
        return self.db.folder / "images" / study / rater

    # -- progress -------------------------------------------------------------------------

    def progress(self, study: str) -> dict[str, int]:
        """Raters invited, started (invite opened), surveyed, voting, finished, deleted;
        votes; the render queue by state."""
        invited = self.db.one("SELECT count(*) FROM invites WHERE study = ?", (study,))[0]
        states = {
            r["state"]: r["n"]
            for r in self.db.all(
                "SELECT state, count(*) AS n FROM raters WHERE study = ? GROUP BY state",
                (study,),
            )
        }
        votes = self.db.one(
            "SELECT count(*) FROM votes v JOIN raters r ON r.id = v.rater WHERE r.study = ?",
            (study,),
        )[0]
        jobs = {
            r["state"]: r["n"]
            for r in self.db.all(
                "SELECT j.state, count(*) AS n FROM jobs j JOIN raters r ON r.id = j.rater "
                "WHERE r.study = ? GROUP BY j.state",
                (study,),
            )
        }
        return {
            "invites": invited,
            "raters_started": sum(states.values()),
            "raters_answered_survey": sum(
                states.get(s, 0) for s in ("rendering", "voting", "done")
            ),
            "raters_voting": states.get("voting", 0),
            "raters_finished": states.get("done", 0),
            "raters_deleted": states.get("deleted", 0),
            "votes": votes,
            "renders_pending": jobs.get("pending", 0),
            "renders_running": jobs.get("running", 0),
            "renders_done": jobs.get("done", 0),
            "renders_failed": jobs.get("failed", 0),
        }
