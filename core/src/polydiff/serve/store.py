"""The server's durable job queue: one SQLite file (standard library) in the data folder.

A job is committed here before its id is returned, so an accepted job survives a kill; at
start-up, jobs found ``running`` (the previous process died under them) are queued again once
and failed, with a message saying so, if they were already re-run after an earlier crash.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path

FINAL = ("done", "failed", "cancelled")
MAX_ATTEMPTS = 2  # a job that was running at two crashes is failed, not retried forever

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    status TEXT NOT NULL,
    request TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    step INTEGER NOT NULL DEFAULT 0,
    steps INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    files TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
"""


class JobStore:
    """Jobs in ``path`` (SQLite, WAL). Every method is one short transaction, safe from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args=()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- life of a job ------------------------------------------------------------------

    def add(self, request: dict, job_id: str | None = None) -> str:
        job_id = job_id or uuid.uuid4().hex
        self._run("INSERT INTO jobs (id, status, request, created) VALUES (?, 'queued', ?, ?)",
                  (job_id, json.dumps(request), time.time()))
        return job_id

    def claim(self, ids: list[str]) -> None:
        marks = ",".join("?" * len(ids))
        self._run(f"UPDATE jobs SET status='running', started=?, attempts=attempts+1 "
                  f"WHERE status='queued' AND id IN ({marks})", (time.time(), *ids))

    def progress(self, job_id: str, step: int, steps: int) -> None:
        self._run("UPDATE jobs SET step=?, steps=? WHERE id=?", (step, steps, job_id))

    def finish(self, job_id: str, files: list[dict]) -> None:
        self._run("UPDATE jobs SET status='done', finished=?, files=?, step=steps WHERE id=? AND status='running'",
                  (time.time(), json.dumps(files), job_id))

    def fail(self, job_id: str, error: str) -> None:
        self._run("UPDATE jobs SET status='failed', finished=?, error=? WHERE id=? AND status IN ('queued', 'running')",
                  (time.time(), error, job_id))

    def cancelled(self, job_id: str) -> None:
        self._run("UPDATE jobs SET status='cancelled', finished=? WHERE id=? AND status='running'",
                  (time.time(), job_id))

    def cancel(self, job_id: str) -> str | None:
        """Cancel a queued job now, flag a running one (the worker stops it at its next step);
        the job's status after the call, or None for an unknown id."""
        self._run("UPDATE jobs SET status='cancelled', finished=?, cancel=1 WHERE id=? AND status='queued'",
                  (time.time(), job_id))
        self._run("UPDATE jobs SET cancel=1 WHERE id=? AND status='running'", (job_id,))
        job = self.get(job_id)
        return job and job["status"]

    def wants_cancel(self, job_id: str) -> bool:
        rows = self._run("SELECT cancel FROM jobs WHERE id=?", (job_id,))
        return bool(rows and rows[0]["cancel"])

    def recover(self) -> int:
        """After a crash: re-queue the jobs that were running (once), fail those re-run before."""
        self._run("UPDATE jobs SET status='failed', finished=?, error='interrupted: the server stopped while this "
                  "job ran, twice; not retried again' WHERE status='running' AND attempts>=?", (time.time(), MAX_ATTEMPTS))
        rows = self._run("UPDATE jobs SET status='queued', started=NULL, step=0 WHERE status='running' RETURNING id")
        return len(rows)

    # -- reading ------------------------------------------------------------------------

    def get(self, job_id: str) -> dict | None:
        rows = self._run("SELECT * FROM jobs WHERE id=?", (job_id,))
        if not rows:
            return None
        job = dict(rows[0])
        job["request"], job["files"] = json.loads(job["request"]), json.loads(job["files"])
        job["position"] = self.position(job) if job["status"] == "queued" else None
        return job

    def position(self, job: dict) -> int:
        """0 for the next job to run."""
        return self._run("SELECT COUNT(*) AS k FROM jobs WHERE status='queued' AND seq<?", (job["seq"],))[0]["k"]

    def ids(self, status: str, limit: int = 10_000) -> list[str]:
        return [r["id"] for r in self._run("SELECT id FROM jobs WHERE status=? ORDER BY seq LIMIT ?", (status, limit))]

    def queued(self, limit: int) -> list[dict]:
        rows = self._run("SELECT id, request FROM jobs WHERE status='queued' ORDER BY seq LIMIT ?", (limit,))
        return [{"id": r["id"], "request": json.loads(r["request"])} for r in rows]

    def count(self, status: str) -> int:
        return self._run("SELECT COUNT(*) AS k FROM jobs WHERE status=?", (status,))[0]["k"]
