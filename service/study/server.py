"""`zipp study serve`: the study's state from the composed config (the store under the
lake, the survey file, the admin token from its environment variable, the renderer and
its worker) and uvicorn running the app on `study.host:study.port`."""

from __future__ import annotations

import logging
from typing import Any

from service.study.app import StudyState, create_app
from service.study.config import db_path
from service.study.db import Database
from service.study.queue import JobQueue
from service.study.render import StudyRenderer
from service.study.store import Store
from service.study.survey import load_survey
from service.study.tokens import AdminToken
from service.study.worker import Worker


def open_store(cfg: Any) -> Store:
    """The study's store (made on first use), from the composed config."""
    return Store(Database(db_path(cfg.study, cfg.lake.root)))


def build_state(cfg: Any, store: Store | None = None) -> StudyState:
    """Everything the app needs; the persona engine and the diffusion model load later,
    once, in the worker (or on the first survey)."""
    s = cfg.study
    store = store or open_store(cfg)
    queue = JobQueue(store.db, lease_s=s.lease_s, max_attempts=s.max_attempts)
    renderer = StudyRenderer(cfg, store)
    return StudyState(
        settings=s,
        store=store,
        queue=queue,
        survey=load_survey(s.survey),
        admin=AdminToken(s.admin_token_env),
        renderer=renderer,
        worker=Worker(queue, renderer, poll_s=s.poll_s),
    )


def serve(cfg: Any, host: str | None = None, port: int | None = None) -> None:
    """Run the app with its worker until interrupted."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state = build_state(cfg)
    app = create_app(state)
    # no access log: an invite link's path is a secret
    uvicorn.run(
        app,
        host=host or cfg.study.host,
        port=port or cfg.study.port,
        access_log=False,
        log_level="info",
    )
