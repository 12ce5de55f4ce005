"""The ``imgenhance`` command.

imgenhance serve     the gateway on http://127.0.0.1:8000 (embedded Redis and
                     workers when REDIS_URL is unset)
imgenhance worker    one RQ worker against REDIS_URL (deployment mode)
imgenhance models    the installed models and their measured quality
imgenhance enhance   files, folders and globs through a task, in this process or
                     on a service (--server URL)
imgenhance generate  new images from a generator, written to one file
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
from typing import Any

from imgenhance.settings import Settings


def _settings(args: argparse.Namespace, **names: str) -> Settings:
    overrides: dict[str, Any] = {
        field: getattr(args, arg) for field, arg in names.items() if getattr(args, arg) is not None
    }
    return Settings(**overrides)


def listen(host: str, port: int) -> socket.socket:
    """Bind the port before starting anything else, so a port in use is a one-line error
    and exit 1, not a half-started service."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"imgenhance serve: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _second_signal_exits(signum: int, frame: Any) -> None:
    """After uvicorn's graceful shutdown the signal comes back here: the first is ignored so
    the embedded Redis and workers are stopped in order; a second one ends the process now."""
    global _signals_seen
    _signals_seen += 1
    if _signals_seen > 1:
        logging.getLogger("imgenhance").warning("second signal: exiting without waiting")
        os._exit(128 + signum)


_signals_seen = 0


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from app.main import create_app
    from cli.embedded import embedded_backend

    settings = _settings(args, host="host", port="port", embedded_workers="workers")
    sock = listen(settings.host, settings.port)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _second_signal_exits)
    backend = embedded_backend(settings) if settings.embedded else contextlib.nullcontext(settings)
    with sock, backend as ready:
        config = uvicorn.Config(create_app(ready), log_level=args.log_level, timeout_graceful_shutdown=5)
        uvicorn.Server(config).run(sockets=[sock])


def cmd_worker(args: argparse.Namespace) -> None:
    from worker.main import run

    run(_settings(args))


def cmd_models(args: argparse.Namespace) -> None:
    from imgenhance.catalog import Catalog

    for card in Catalog.load(_settings(args).models_dir):
        default = "default" if card.default else ""
        print(f"{card.id:18s} {card.task:14s} x{card.scale} {card.variant:11s} {default:7s} {card.quality.headline()}")


def main(argv: list[str] | None = None) -> None:
    from cli import enhance, generate

    parser = argparse.ArgumentParser(
        prog="imgenhance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-level", help="debug, info, warning (default: info; warning for enhance and generate)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP gateway")
    serve.add_argument("--host", help="bind address (default: $IMGENHANCE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $IMGENHANCE_PORT or 8000)")
    serve.add_argument("--workers", type=int, help="embedded mode: in-process workers (default: 1)")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("worker", help="run one worker against REDIS_URL").set_defaults(func=cmd_worker)
    sub.add_parser("models", help="list installed models").set_defaults(func=cmd_models)
    enhance.add_parser(sub)
    generate.add_parser(sub)
    args = parser.parse_args(argv)
    args.log_level = args.log_level or getattr(args, "default_log_level", "info")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    status = args.func(args)
    if status:
        raise SystemExit(status)


if __name__ == "__main__":
    main()
