"""The threads that run queued jobs: pick the oldest job and the queued jobs that may share its
batch, sample, save the files, record the outcome. Models stay loaded between jobs (the
process-wide caches of ``polydiff.generation``), so a warm job costs its sampling time."""
from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PolydiffError, one_line
from .jobs import batch_key, content_type, request_fields
from .store import JobStore

if TYPE_CHECKING:
    from ..result import Result

log = logging.getLogger("polydiff.serve")


class Cancelled(Exception):
    """Raised from the step callback when every job of a running batch was cancelled."""


class Workers:
    def __init__(self, store: JobStore, data: Path, *, count: int = 1, batch_size: int = 8,
                 batch_wait_s: float = 0.05) -> None:
        self.store, self.data = store, Path(data)
        self.batch_size, self.batch_wait_s = batch_size, batch_wait_s
        self.wake, self.stopping = threading.Event(), threading.Event()
        self._pick = threading.Lock()
        self.batches: list[int] = []  # the size of every run, for tests and benchmarks
        self.threads = [threading.Thread(target=self._loop, name=f"polydiff-worker-{i}", daemon=True)
                        for i in range(count)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.wake.set()
        for t in self.threads:
            if t.is_alive():
                t.join(timeout)

    def job_dir(self, job_id: str) -> Path:
        return self.data / "jobs" / job_id

    # -- picking ------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.stopping.is_set():
            group = self._next_group()
            if not group:
                self.wake.wait(0.5)
                self.wake.clear()
                continue
            self._run(group)

    def _next_group(self) -> list[dict]:
        with self._pick:
            queued = self.store.queued(limit=256)
            if not queued:
                return []
            first = queued[0]
            key = batch_key(first["request"])
            if key is not None and self.batch_size > 1 and self.batch_wait_s > 0:
                mates = [q for q in queued if batch_key(q["request"]) == key]
                if len(mates) < self.batch_size:  # a short wait lets concurrent clients join the batch
                    time.sleep(self.batch_wait_s)
                    queued = self.store.queued(limit=256)
            group, samples = [], 0
            for q in queued:
                if group and (key is None or batch_key(q["request"]) != key):
                    continue
                n = int(q["request"].get("n") or 1)
                if group and samples + n > self.batch_size:
                    break
                group.append(q)
                samples += n
                if key is None:
                    break
            self.store.claim([q["id"] for q in group])
            return group

    # -- running ------------------------------------------------------------------------

    def _run(self, group: list[dict]) -> None:
        from ..request import GenerateRequest

        jobs = {}  # id -> validated request
        for q in group:
            try:
                jobs[q["id"]] = GenerateRequest.build(**request_fields(q["request"], self.job_dir(q["id"])))
            except PolydiffError as exc:
                self.store.fail(q["id"], one_line(exc))
        if len(jobs) > 1:
            from .batching import sample_together

            outcome = self._attempt(list(jobs), lambda step: sample_together(list(jobs.values()), callback=step))
            if outcome is not None:
                self.batches.append(sum(r.n for r in jobs.values()))
                return
        for job_id, request in jobs.items():  # alone: a single job, or plans that cannot share a run
            self.batches.append(request.n)
            self._attempt([job_id], lambda step, r=request: [generate_alone(r, step)])

    def _attempt(self, ids: list[str], run) -> list | None:
        """Run ``run(step_callback)`` for the jobs ``ids`` and record each outcome; None when
        ``run`` returned None (the jobs could not share a batch and nothing was recorded)."""
        live = set(ids)

        def on_step(info) -> None:  # cancellation takes effect at the next step
            for job_id in list(live):
                if self.store.wants_cancel(job_id):
                    self.store.cancelled(job_id)
                    live.discard(job_id)
            if not live:
                raise Cancelled()
            for job_id in live:
                self.store.progress(job_id, info.i + 1, info.steps)

        try:
            results = run(on_step)
        except Cancelled:
            results = [None] * len(ids)
        except PolydiffError as exc:
            for job_id in ids:
                self.store.fail(job_id, one_line(exc))
            return []
        except Exception as exc:  # a bug, not the user's mistake: logged in full, one line for the client
            log.exception("job %s failed", ",".join(ids))
            for job_id in ids:
                self.store.fail(job_id, f"internal error: {type(exc).__name__}: {one_line(exc)}")
            return []
        if results is None:
            return None
        for job_id, result in zip(ids, results):
            if job_id in live and result is not None:
                self._save(job_id, result)
            else:
                self.store.cancelled(job_id)
        return results

    def _save(self, job_id: str, result) -> None:
        out = self.job_dir(job_id) / "out"
        try:
            if out.exists():  # a partial set from a run the server did not survive
                shutil.rmtree(out)
            paths = result.save(out)
        except OSError as exc:
            self.store.fail(job_id, f"could not save the results: {exc}")
            return
        files = [{"name": p.relative_to(out).as_posix(), "content_type": content_type(p.name)} for p in paths]
        self.store.finish(job_id, files)


def generate_alone(request, callback) -> "Result":
    """``polydiff.generate`` of a validated request, with a step callback."""
    from ..generation import generate

    fields = request.model_dump(exclude={"modality", "options"}, exclude_none=True)
    return generate(request.modality, **fields, **request.options, callback=callback)
