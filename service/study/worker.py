"""The render worker: a thread in the server's process that drains the queue (personas,
then images), one job at a time. A job that raises goes back to pending until it has
failed `study.max_attempts` times; a job left running by a worker that died is claimed
again once its lease passes (`JobQueue.requeue_expired`), so a restart resumes."""

from __future__ import annotations

import logging
import threading

from service.study.queue import Job, JobQueue
from service.study.render import StudyRenderer

log = logging.getLogger("zipp.study.worker")


class Worker:
    """`run_once` does one job; `start` runs a daemon thread until `stop`."""

    def __init__(self, queue: JobQueue, renderer: StudyRenderer, poll_s: float = 0.5):
        self.queue = queue
        self.renderer = renderer
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = 0
        self.failed = 0

    def run_once(self) -> Job | None:
        """Claim and do one job; returns it (None: the queue was empty)."""
        job = self.queue.claim()
        if job is None:
            return None
        try:
            if job.kind == "persona":
                self.queue.persona_done(job, self.renderer.persona(job.rater))
            else:
                prompt, negative, path, file = self.renderer.image(job.rater, job.image)
                self.queue.image_done(job, prompt, negative, path, file)
            self.done += 1
        except Exception as e:  # a job's failure is its row's, never the worker's end
            state = self.queue.fail(job, f"{type(e).__name__}: {e}")
            self.failed += 1
            # the rater's id and the job: never their answers (the error may quote them)
            log.warning("study job %s (%s) failed: %s -> %s", job.id, job.kind, type(e), state)
        return job

    def drain(self) -> int:
        """Do jobs until the queue is empty; returns how many were done or tried."""
        n = 0
        while not self._stop.is_set() and self.run_once() is not None:
            n += 1
        return n

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once() is None:
                    self._stop.wait(self.poll_s)
            except Exception:  # the store itself failed (disk full, locked): wait, retry
                log.exception("study worker: the queue could not be read")
                self._stop.wait(self.poll_s * 4)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="study-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
