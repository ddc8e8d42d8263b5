"""gunicorn settings for Azure App Service (Linux) and any other host: ``gunicorn -c deploy/gunicorn.conf.py teams_proactive.connector.wsgi:app``."""

import os
import pathlib
import shutil
import sys

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# Threads, not processes, carry the concurrency: a SendMessage call may wait up to 90 s for delivery.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = 120
graceful_timeout = 30
# Each worker must build the app (and start its bot loop thread) after the fork.
preload_app = False
accesslog = None  # the app writes one JSON line per request, with its request id
errorlog = "-"

# Prometheus multiprocess mode: every worker writes its counters to files in this folder. Start it
# empty, here rather than in a hook: with --preload the app (and its counters) load before any hook.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _metrics_dir:
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    pathlib.Path(_metrics_dir).mkdir(parents=True, exist_ok=True)


def on_starting(server):
    # Before gunicorn binds its sockets: no bot identity and no LOCAL_MODE=true means no start at all
    # (connector.wsgi checks again, for servers started without this file).
    from dotenv import load_dotenv

    from teams_proactive.bot.settings import BotSettings
    from teams_proactive.connector.local_mode import LocalModeRefused, check_wsgi

    load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
    try:
        check_wsgi(BotSettings.from_env())
    except LocalModeRefused as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(4) from exc


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def pre_fork(server, worker):
    # With --preload the master built the app: stop its bot loop before forking (threads cannot be
    # forked safely, and the master must not send); each worker builds its own on its first request.
    release = getattr(getattr(server.app, "callable", None), "release", None)
    if release is not None:
        release()
