"""The render queue in SQLite: a rater's persona job, then one job per image. A job is
pending, running (leased until a time), done or failed. A running job whose lease has
passed (its worker died: a crash, a restart) goes back to pending and is claimed again;
a job that fails `max_attempts` times is failed, and its rater is told."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from service.study.db import Database


@dataclass(frozen=True)
class Job:
    """A claimed job: what to do, for which rater (and image)."""

    id: int
    kind: str  # persona | image
    rater: str
    image: str | None
    attempts: int


class JobQueue:
    """Claim, finish and fail jobs; count them for the progress page."""

    def __init__(self, db: Database, lease_s: float = 300.0, max_attempts: int = 3):
        self.db = db
        self.lease_s = lease_s
        self.max_attempts = max_attempts

    def requeue_expired(self) -> int:
        """Running jobs whose lease has passed go back to pending; returns how many."""
        with self.db.tx() as c:
            return c.execute(
                "UPDATE jobs SET state = 'pending', updated = ? "
                "WHERE state = 'running' AND lease_until < ?",
                (self.db.clock(), self.db.clock()),
            ).rowcount

    def claim(self) -> Job | None:
        """The oldest pending job, now running under a lease (None: nothing to do)."""
        self.requeue_expired()
        now = self.db.clock()
        with self.db.tx() as c:
            row = c.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, "
                "updated = ? WHERE id = (SELECT id FROM jobs WHERE state = 'pending' "
                "ORDER BY id LIMIT 1) RETURNING id, kind, rater, image, attempts",
                (now + self.lease_s, now),
            ).fetchone()
        return Job(**dict(row)) if row else None

    def _finish(self, c, job: Job) -> bool:
        """Mark a running job done; False when it is no longer this worker's (its lease
        passed and another worker has it, or its rater's data was deleted)."""
        return bool(
            c.execute(
                "UPDATE jobs SET state = 'done', error = NULL, lease_until = NULL, updated = ? "
                "WHERE id = ? AND state = 'running' AND attempts = ?",
                (self.db.clock(), job.id, job.attempts),
            ).rowcount
        )

    def persona_done(self, job: Job, persona: dict | None) -> bool:
        """Keep the rater's persona and queue their images."""
        now = self.db.clock()
        with self.db.tx() as c:
            if not self._finish(c, job):
                return False
            c.execute(
                "UPDATE raters SET persona = ? WHERE id = ? AND state = 'rendering'",
                (json.dumps(persona), job.rater),
            )
            images = c.execute(
                "SELECT id FROM images WHERE rater = ? AND status = 'pending' "
                "ORDER BY position, method",
                (job.rater,),
            ).fetchall()
            c.executemany(
                "INSERT INTO jobs (kind, rater, image, state, created, updated) "
                "VALUES ('image', ?, ?, 'pending', ?, ?)",
                [(job.rater, r["id"], now, now) for r in images],
            )
            self._maybe_voting(c, job.rater)
        return True

    def image_done(
        self, job: Job, prompt: str, negative: str | None, path: str, file: Path
    ) -> bool:
        """Keep an image (its file already written); the rater votes once all are made.
        A file whose job is no longer this worker's (its rater deleted) is removed."""
        with self.db.tx() as c:
            kept = (
                self._finish(c, job)
                and c.execute(
                    "UPDATE images SET status = 'done', prompt = ?, negative = ?, path = ? "
                    "WHERE id = ? AND rater IN (SELECT id FROM raters WHERE state = 'rendering')",
                    (prompt, negative, path, job.image),
                ).rowcount
            )
            if kept:
                self._maybe_voting(c, job.rater)
        if not kept:  # its rater's data was deleted meanwhile: nothing of it stays
            file.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                file.parent.rmdir()  # only when empty
        return bool(kept)

    def _maybe_voting(self, c, rater: str) -> None:
        left = c.execute(
            "SELECT count(*) FROM images WHERE rater = ? AND status != 'done'", (rater,)
        ).fetchone()[0]
        if not left:
            c.execute(
                "UPDATE raters SET state = 'voting' WHERE id = ? AND state = 'rendering'",
                (rater,),
            )

    def fail(self, job: Job, error: str) -> str:
        """A job that raised: back to pending, or failed after `max_attempts` (its rater
        then carries the reason). Returns the job's new state."""
        state = "failed" if job.attempts >= self.max_attempts else "pending"
        with self.db.tx() as c:
            done = c.execute(
                "UPDATE jobs SET state = ?, error = ?, lease_until = NULL, updated = ? "
                "WHERE id = ? AND state = 'running' AND attempts = ?",
                (state, error[:500], self.db.clock(), job.id, job.attempts),
            ).rowcount
            if done and state == "failed":
                c.execute(
                    "UPDATE raters SET error = ? WHERE id = ? AND state = 'rendering'",
                    (error[:500], job.rater),
                )
        return state

    def counts(self, study: str | None = None) -> dict[str, int]:
        """Jobs by state (of one study's raters, or all)."""
        sql = "SELECT j.state, count(*) AS n FROM jobs j"
        args: tuple = ()
        if study:
            sql += " JOIN raters r ON r.id = j.rater WHERE r.study = ?"
            args = (study,)
        rows = self.db.all(sql + " GROUP BY j.state", args)
        return {"pending": 0, "running": 0, "done": 0, "failed": 0} | {
            r["state"]: r["n"] for r in rows
        }

    def rater_progress(self, rater: str) -> tuple[int, int]:
        """(images made, images to make) of a rater."""
        row = self.db.one(
            "SELECT sum(status = 'done') AS made, count(*) AS total FROM images WHERE rater = ?",
            (rater,),
        )
        return int(row["made"] or 0), int(row["total"] or 0)
