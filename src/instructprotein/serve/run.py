"""Starting the server: ``serve(model_path, kg_path)`` for a person, ``running_server(app)`` for tests.

``serve`` loads the model first (a missing folder is a message, not a server that fails
later), then runs uvicorn on one process: the model lives in that process's memory, and
one worker thread serves it (see :mod:`instructprotein.serve.app`). Loopback by default;
bound elsewhere, every request needs a token (printed in the page's address, Jupyter-like).
Every connection has a read deadline (:func:`guarded_h11`), idle keep-alive connections are
closed after a few seconds, and only known Host names are answered (DNS rebinding).

``python -m instructprotein.serve --model PATH [--kg PATH] [--port N]`` does the same from a shell.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import math
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from instructprotein.serve.app import LOOPBACK_HOSTS, Limits, create_app

READ_TIMEOUT = 15.0
"""Seconds a client has to send one whole request (headers and body) once it starts, or to
send anything on a new connection; then it gets 408 and is closed. uvicorn closes only idle
keep-alive connections, so 1,500 sockets sending a byte now and then were held for ever."""
KEEP_ALIVE = 5
"""Seconds an idle keep-alive connection is kept (uvicorn's ``timeout_keep_alive``)."""
MAX_HEADER_BYTES = 16 * 1024
"""Largest request head (h11's ``max_incomplete_event_size``); above it the request is a 400."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) reaches only this machine."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_allowed_hosts(host: str) -> list[str]:
    """Host headers answered by default: the loopback names, and the bound address and this
    machine's names when bound elsewhere."""
    names = list(LOOPBACK_HOSTS)
    if not is_loopback(host):
        if host not in ("0.0.0.0", "::", ""):
            names.append(f"[{host}]" if ":" in host else host)
        names += [socket.gethostname(), socket.getfqdn()]
    return list(dict.fromkeys(n.lower() for n in names if n))


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or :class:`InputError` saying why not (port taken...).

    Bound before the model loads and before any address is printed: a taken port used to
    print the page's address and then fail."""
    from instructprotein.errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"cannot serve on {host}:{port}: unknown address ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(
                f"cannot serve on {host}:{port}: the port is in use (another server?); pick another with --port"
            ) from None
        raise InputError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def guarded_h11(read_timeout: float = READ_TIMEOUT) -> type:
    """uvicorn's h11 protocol with a deadline on every request: from the connection's start (or
    the request's first byte) to its last byte at most ``read_timeout`` seconds, else 408 and close.

    The deadline is absolute, not per chunk: a client trickling a byte every few seconds
    (slowloris) is closed as surely as one that sends nothing. It does not cover the
    model's work: a request fully received is answered however long the answer takes."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    body = b'{"error": "request timeout: the request was not sent in time"}'
    timeout_response = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    class GuardedH11Protocol(H11Protocol):  # type: ignore[misc]
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                self._disarm()  # the request is in: the answer may take as long as it takes
            else:
                self._arm()

        def on_response_complete(self) -> None:
            self._disarm()  # uvicorn's keep-alive timer takes over
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(read_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                return
            if self.conn.their_state is h11.IDLE or (self.cycle is not None and not self.cycle.response_started):
                self.transport.write(timeout_response)
            self.transport.close()

    return GuardedH11Protocol


def server_config(app: Any, *, log_level: str = "info", read_timeout: float = READ_TIMEOUT, **extra: Any) -> Any:
    """The uvicorn configuration every server here runs with: the read deadline, keep-alive and
    header limits above, one process."""
    import uvicorn

    return uvicorn.Config(
        app,
        log_level=log_level,
        http=guarded_h11(read_timeout),
        timeout_keep_alive=KEEP_ALIVE,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        workers=1,
        **extra,
    )


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
    allowed_hosts: Sequence[str] | None = None,
    token: str | None = None,
    read_timeout: float = READ_TIMEOUT,
) -> None:
    """Bind, load the model and serve it until interrupted (Ctrl-C / SIGTERM).

    Beyond loopback a token is required: ``token``, else ``$INSTRUCTPROTEIN_TOKEN``, else a
    generated one, printed in the page's address (as Jupyter does). ``allowed_hosts``
    defaults to :func:`default_allowed_hosts`.
    """
    import uvicorn

    if not read_timeout > 0 or not math.isfinite(read_timeout):
        from instructprotein.errors import InputError

        raise InputError(f"--read-timeout must be a positive number of seconds, got {read_timeout}")
    sock = bind_socket(host, port)  # a taken port fails here, before the model loads or an address is printed
    try:
        token = token or os.environ.get("INSTRUCTPROTEIN_TOKEN") or None
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(24)
        hosts = list(allowed_hosts) if allowed_hosts else default_allowed_hosts(host)
        app = create_app(
            model_path,
            kg_path,
            limits or Limits(),
            device=device,
            retrieval=retrieval,
            allowed_hosts=hosts,
            token=token,
        )
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        if host in ("0.0.0.0", "::"):
            shown = "localhost"
        query = f"?token={token}" if token else ""
        print(
            f"InstructProtein: {app.state.model!r}\n  page  http://{shown}:{bound}/{query}\n"
            f"  API   http://{shown}:{bound}/docs{query}",
            file=sys.stderr,
            flush=True,
        )
        if token:
            print(
                "  the API needs the token: 'Authorization: Bearer TOKEN' (the page gets a cookie)",
                file=sys.stderr,
                flush=True,
            )
        if "*" not in hosts:
            print(f"  answering Host names: {', '.join(hosts)} (more with --allow-host)", file=sys.stderr, flush=True)
        config = server_config(app, log_level=log_level, read_timeout=read_timeout, timeout_graceful_shutdown=10)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # Ctrl-C after a graceful shutdown: a normal end, as uvicorn.run has it
            pass
    finally:
        sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (for tests; there is a small race until it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    app: Any,
    host: str = "127.0.0.1",
    *,
    log_level: str = "warning",
    timeout: float = 30.0,
    read_timeout: float = READ_TIMEOUT,
) -> Iterator[str]:
    """``app`` served by uvicorn on a thread, on a port the OS picks; yields the base URL.

    The socket is bound before the thread starts (no race for the port), and the server is
    stopped and its thread joined on exit.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = server_config(
        app,
        log_level=log_level,
        read_timeout=read_timeout,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
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

    p = argparse.ArgumentParser(
        prog="python -m instructprotein.serve", description="Serve a model: HTTP API and web page."
    )
    p.add_argument("--model", required=True, help="model folder (save_model's output or a checkpoint)")
    p.add_argument("--kg", default=None, help="knowledge graph file: GO terms, design checks, retrieval")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda where available)")
    p.add_argument("--no-retrieval", action="store_true", help="no homologs in prompts even with a graph")
    p.add_argument(
        "--allow-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a Host header name to answer (repeat; '*' for any; default: loopback names)",
    )
    p.add_argument("--read-timeout", type=float, default=READ_TIMEOUT, help="seconds to send a whole request")
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (info logs every request)",
    )
    args = p.parse_args(argv)
    try:
        serve(
            args.model,
            args.kg,
            args.host,
            args.port,
            device=args.device,
            retrieval=False if args.no_retrieval else None,
            log_level=args.log_level,
            allowed_hosts=args.allow_host,
            read_timeout=args.read_timeout,
        )
    except InstructProteinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, the address is not ours...
        print(f"error: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
