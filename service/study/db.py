"""The study's SQLite file: its tables (the rules the server must keep are constraints
here: one vote per pair per rater, a vote one of three words, a job in one of four
states), WAL mode, one connection per call (threads share nothing but the file)."""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  methods TEXT NOT NULL,
  votes_per_rater INTEGER NOT NULL CHECK (votes_per_rater >= 1),
  created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS prompts (
  study TEXT NOT NULL REFERENCES studies(id),
  position INTEGER NOT NULL,
  text TEXT NOT NULL,
  PRIMARY KEY (study, position)
);
CREATE TABLE IF NOT EXISTS raters (
  id TEXT PRIMARY KEY,
  study TEXT NOT NULL REFERENCES studies(id),
  state TEXT NOT NULL CHECK (state IN ('survey', 'rendering', 'voting', 'done', 'deleted')),
  survey TEXT,
  persona TEXT,
  error TEXT,
  started REAL NOT NULL,
  finished REAL,
  deleted REAL
);
CREATE TABLE IF NOT EXISTS invites (
  code_digest TEXT PRIMARY KEY,
  study TEXT NOT NULL REFERENCES studies(id),
  rater TEXT UNIQUE REFERENCES raters(id),
  created REAL NOT NULL,
  closed REAL
);
CREATE TABLE IF NOT EXISTS sessions (
  digest TEXT PRIMARY KEY,
  rater TEXT NOT NULL REFERENCES raters(id),
  created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
  id TEXT PRIMARY KEY,
  rater TEXT NOT NULL REFERENCES raters(id),
  position INTEGER NOT NULL,
  method TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
  prompt TEXT,
  negative TEXT,
  path TEXT,
  UNIQUE (rater, position, method)
);
CREATE TABLE IF NOT EXISTS pairs (
  id TEXT PRIMARY KEY,
  rater TEXT NOT NULL REFERENCES raters(id),
  ordinal INTEGER NOT NULL,
  position INTEGER NOT NULL,
  left_method TEXT NOT NULL,
  right_method TEXT NOT NULL,
  CHECK (left_method != right_method),
  UNIQUE (rater, ordinal),
  UNIQUE (rater, position, left_method, right_method)
);
CREATE TABLE IF NOT EXISTS votes (
  pair TEXT NOT NULL REFERENCES pairs(id),
  rater TEXT NOT NULL REFERENCES raters(id),
  vote TEXT NOT NULL CHECK (vote IN ('left', 'right', 'cant_tell')),
  created REAL NOT NULL,
  UNIQUE (rater, pair)
);
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('persona', 'image')),
  rater TEXT NOT NULL REFERENCES raters(id),
  image TEXT REFERENCES images(id),
  state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until REAL,
  error TEXT,
  created REAL NOT NULL,
  updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, id);
CREATE INDEX IF NOT EXISTS raters_study ON raters (study, state);
"""


class Database:
    """The store's file: `connect()` per call; `tx()` a write transaction taken at once
    (BEGIN IMMEDIATE: two writers queue on the busy timeout instead of failing late)."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        c = self.connect()
        try:
            c.execute("PRAGMA journal_mode=WAL")
            c.executescript(SCHEMA)
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('csrf_key', ?)",
                (secrets.token_hex(32),),
            )
        finally:
            c.close()
        self.csrf_key = bytes.fromhex(self.one("SELECT value FROM meta WHERE key='csrf_key'")[0])

    @property
    def folder(self) -> Path:
        """The folder beside the file that holds the raters' images."""
        return self.path.parent

    def connect(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        c.row_factory = sqlite3.Row
        c.execute("PRAGMA foreign_keys=ON")
        c.execute("PRAGMA busy_timeout=30000")
        return c

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on leaving, rolled back on an exception."""
        c = self.connect()
        try:
            c.execute("BEGIN IMMEDIATE")
            yield c
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        finally:
            c.close()

    def all(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        c = self.connect()
        try:
            return c.execute(sql, args).fetchall()
        finally:
            c.close()

    def one(self, sql: str, args: tuple = ()) -> sqlite3.Row | None:
        rows = self.all(sql, args)
        return rows[0] if rows else None

    def journal_mode(self) -> str:
        return self.one("PRAGMA journal_mode")[0]
