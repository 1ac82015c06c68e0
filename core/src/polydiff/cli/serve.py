"""``polydiff serve``: start the HTTP server (FastAPI on uvicorn)."""
from __future__ import annotations

import ipaddress
import os

import click

from ..errors import InvalidInputError


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback needs POLYDIFF_TOKEN")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers-per-device", "workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="jobs run at once")
@click.option("--data", default="out/serve", show_default=True, help="folder for the queue, uploads and results")
@click.option("--max-queue", type=click.IntRange(1, 10**6), default=1000, show_default=True,
              help="queued jobs before new ones get 429")
@click.option("--max-body-mb", type=click.FloatRange(0.001, 4096), default=64.0, show_default=True,
              help="largest request or upload")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=8, show_default=True,
              help="samples of compatible jobs run in one batch")
@click.option("--batch-wait-ms", type=click.FloatRange(0, 10_000), default=50.0, show_default=True,
              help="how long the oldest job waits for others to share its batch")
def serve(host, port, workers, data, max_queue, max_body_mb, batch_size, batch_wait_ms) -> None:
    """Serve the generate API over HTTP, with a job queue and a web page at /.

    Jobs are kept in DATA/jobs.sqlite3 and survive a restart; results are under DATA/jobs/.
    API docs at /docs. Set POLYDIFF_TOKEN to require `Authorization: Bearer TOKEN`.
    """
    token = os.environ.get("POLYDIFF_TOKEN") or None
    if not _loopback(host) and not token:
        raise InvalidInputError(f"host: binding to {host} exposes the server; set POLYDIFF_TOKEN to require a token")
    try:
        import uvicorn

        from ..serve.app import Settings, create_app
    except ImportError:
        raise InvalidInputError("serve needs FastAPI and uvicorn: pip install 'polydiff[serve]'") from None
    settings = Settings(data, token=token, max_queue=max_queue, max_body_bytes=int(max_body_mb * 2**20),
                        batch_size=batch_size, batch_wait_s=batch_wait_ms / 1000, workers=workers)
    click.echo(f"polydiff serve: http://{host}:{port}/ (data in {settings.data})", err=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
