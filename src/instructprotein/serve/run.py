"""Starting the server: ``serve(model_path, kg_path)`` for a person, ``running_server(app)`` for tests.

``serve`` loads the model first (a missing folder is a message, not a server that fails
later), then runs uvicorn on one process: the model lives in that process's memory, and
one worker thread serves it (see :mod:`instructprotein.serve.app`). Loopback by default;
bind another address only on purpose (there is no authentication).

``python -m instructprotein.serve --model PATH [--kg PATH] [--port N]`` does the same from a shell.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from instructprotein.serve.app import Limits, create_app


def serve(
    model_path: str | Path,
    kg_path: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    limits: Limits | None = None,
    device: str | None = None,
    retrieval: bool | None = None,
    log_level: str = "info",
) -> None:
    """Load the model and serve it until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn

    app = create_app(model_path, kg_path, limits or Limits(), device=device, retrieval=retrieval)
    shown = f"[{host}]" if ":" in host else host
    print(f"InstructProtein: {app.state.model!r}\n  page  http://{shown}:{port}/\n  API   http://{shown}:{port}/docs",
          file=sys.stderr, flush=True)  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1, timeout_graceful_shutdown=10)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (for tests; there is a small race until it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(app: Any, host: str = "127.0.0.1", *, log_level: str = "warning", timeout: float = 30.0) -> Iterator[str]:
    """``app`` served by uvicorn on a thread, on a port the OS picks; yields the base URL.

    The socket is bound before the thread starts (no race for the port), and the server is
    stopped and its thread joined on exit.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server stopped while starting (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {timeout} s")
            time.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)
        sock.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m instructprotein.serve``: the same as ``instructprotein serve``."""
    from instructprotein.errors import InstructProteinError

    p = argparse.ArgumentParser(prog="python -m instructprotein.serve", description="Serve a model: HTTP API and web page.")
    p.add_argument("--model", required=True, help="model folder (save_model's output or a checkpoint)")
    p.add_argument("--kg", default=None, help="knowledge graph file: GO terms, design checks, retrieval")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda where available)")
    p.add_argument("--no-retrieval", action="store_true", help="no homologs in prompts even with a graph")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (info logs every request)")
    args = p.parse_args(argv)
    try:
        serve(args.model, args.kg, args.host, args.port, device=args.device,
              retrieval=False if args.no_retrieval else None, log_level=args.log_level)  # fmt: skip
    except InstructProteinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, the address is not ours...
        print(f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
