"""Run the sandbox: build the organisation, bind the socket, serve uvicorn on a thread.

`start()` returns once the server accepts connections. The socket is bound here (not by
uvicorn) so that `port=0` yields the real port before anyone connects.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from . import demo, guards
from . import faults as faults_module
from . import limits as limits_module
from . import schema as schema_module
from .app import API, Org, build_app
from .metadata import custom_schema
from .store import Store, table_names
from .tls import make_certificate

log = logging.getLogger("d365nb.sandbox")

# The caller when the sandbox has no demo data: Dataverse's built-in "SYSTEM" user role.
SYSTEM_USER_ID = "8c6a9b1e-2c4b-4f1e-9a3d-5d365b000001"


class SandboxHandle:
    """A running sandbox: `url`, `api`, `token`, `ca`, `org`; `stop()`; a context manager."""

    def __init__(
        self,
        server: uvicorn.Server,
        thread: threading.Thread,
        org: Org,
        url: str,
        ca: str | None,
        release: Callable[[], None],
    ) -> None:
        self._server = server
        self._thread = thread
        self._release = release
        self.org = org
        self.url = url
        self.api = url + API
        self.token = org.token
        self.ca = ca

    def __repr__(self) -> str:  # the token stays out of reprs and logs
        return f"<SandboxHandle {self.url}>"

    def set_faults(self, faults: Any = None, seed: int | None = None) -> None:
        """Change fault injection on the running sandbox (`None` switches it off)."""
        self.org.config["faults"].configure(faults, seed)

    def set_limits(self, limits: Any = None) -> None:
        """Change service-protection limits on the running sandbox (`None` switches them off)."""
        self.org.config["limiter"].configure(limits)

    def stop(self, wait: bool = True) -> None:
        """Stop serving and close the database; safe to call twice.

        ``wait=False`` returns at once: the server finishes its requests and closes the
        database on its own thread (uvicorn's shutdown takes ~0.2 s, which a test fixture
        tearing down hundreds of sandboxes need not wait for)."""
        self._server.should_exit = True
        if wait:
            self._thread.join(timeout=10)
            self._release()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_org(
    *,
    token: str | None = None,
    data: str = "demo",
    db: str | None = None,
    limits: Any = None,
    faults: Any = None,
    seed: int | None = None,
    change_tracking_expiry_days: float = 7,
) -> Org:
    """The organisation (schema, store with data, settings) without any server."""
    if data not in ("demo", "empty"):
        raise ValueError(f"data must be 'demo' or 'empty', not {data!r}")
    # Settings are checked before any database work: a bad one costs nothing to refuse.
    limiter = limits_module.Limiter(limits)
    injector = faults_module.FaultInjector(faults, seed)
    tables = schema_module.load()
    if db:
        check_database_file(db)
    try:
        store = Store(tables, db)
    except sqlite3.Error as exc:  # a missing directory, a file that is not a database, ...
        raise ValueError(f"cannot open the sandbox database {db}: {exc}") from None
    tables = custom_schema.restore(store, tables)  # tables/columns made by metadata writes
    ids = {}
    for key in ("business_unit_id", "organization_id", "tenant_id"):
        ids[key] = store.get_meta(key) or str(uuid.uuid4())
        store.set_meta(key, ids[key])
    user_id = store.get_meta("user_id")
    if user_id is None:  # a fresh database: fill it once; a reopened --db keeps its data
        user_id = _populate(store, tables, data, seed)
        store.set_meta("user_id", user_id)
    config: dict[str, Any] = {
        "data": data,
        "db": db,
        "seed": seed,
        "change_tracking_expiry_days": change_tracking_expiry_days,
    }
    config["limiter"] = limiter
    config["faults"] = injector
    return Org(
        schema=tables,
        store=store,
        token=token or secrets.token_urlsafe(32),
        user_id=user_id,
        config=config,
        **ids,
    )


# Tables every sandbox database has (store.py); a file without them is someone else's.
_SANDBOX_MARKERS = {"_meta", "_tombstones"}


def check_database_file(path: str) -> None:
    """Refuse `--db` on an existing file that is not a sandbox database, before anything opens it
    for writing (SQLite would otherwise add the sandbox's tables to it, or fail halfway).
    A missing or empty file is fine: it becomes a new sandbox database."""
    target = Path(path)
    if not target.exists() or (target.is_file() and target.stat().st_size == 0):
        return
    if not target.is_file():
        raise ValueError(f"cannot open the sandbox database {path}: it is not a file")
    with target.open("rb") as handle:
        header = handle.read(16)
    if header != b"SQLite format 3\x00":
        raise ValueError(
            f"cannot open the sandbox database {path}: the file is not a SQLite database "
            "(give a new file name)"
        )
    try:
        names = table_names(path)
    except sqlite3.Error as exc:
        raise ValueError(f"cannot read the sandbox database {path}: {exc}") from None
    if not names >= _SANDBOX_MARKERS:
        raise ValueError(
            f"cannot open the sandbox database {path}: it is a SQLite database but not a "
            "sandbox one (give a new file name; the sandbox never writes into other databases)"
        )


def _populate(store: Store, tables: dict, data: str, seed: int | None) -> str:
    if data == "demo":
        demo.populate(store, tables, seed if seed is not None else 0)
        return demo.CALLER_ID
    # No demo data: the caller is a system user, as every Dataverse org has one.
    store.insert_many(
        "systemuser",
        [
            {
                "systemuserid": SYSTEM_USER_ID,
                "firstname": None,
                "lastname": "SYSTEM",
                "domainname": "SYSTEM",
                "isdisabled": 0,
            }
        ],
    )
    return SYSTEM_USER_ID


def start(
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    data: str = "demo",
    db: str | None = None,
    tls: bool = False,
    limits: Any = None,
    faults: Any = None,
    seed: int | None = None,
    change_tracking_expiry_days: float = 7,
) -> SandboxHandle:
    """Start a sandbox on a background thread; returns when it accepts requests.

    >>> with start(data="empty") as h:
    ...     h.api  # doctest: +SKIP
    'http://127.0.0.1:54321/api/data/v9.2/'
    """
    org = build_org(
        token=token,
        data=data,
        db=db,
        limits=limits,
        faults=faults,
        seed=seed,
        change_tracking_expiry_days=change_tracking_expiry_days,
    )
    try:
        return serve(org, host=host, port=port, tls=tls)
    except BaseException:
        org.store.close()
        raise


def serve(org: Org, host: str = "127.0.0.1", port: int = 0, tls: bool = False) -> SandboxHandle:
    """Serve an existing `Org` (e.g. one a benchmark filled first) on a background thread."""
    org.config["tls"] = tls
    app = build_app(org)
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is TCP, and
    # without it every small response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(
        socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    bound_port = sock.getsockname()[1]
    tmpdir: tempfile.TemporaryDirectory | None = None
    ca = None
    ssl: dict[str, Any] = {}
    if tls:
        tmpdir = tempfile.TemporaryDirectory(prefix="d365nb-tls-")
        cert, key = make_certificate(tmpdir.name)
        ca = cert
        ssl = {"ssl_certfile": cert, "ssl_keyfile": key}
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=2,
        # size and time guards (guards.py): request heads up to MAX_HEAD bytes reach the app,
        # which answers 414/431 itself; larger ones get the same answers from the protocol
        http=guards.SandboxH11Protocol,
        h11_max_incomplete_event_size=guards.MAX_HEAD,
        timeout_keep_alive=5,
        **ssl,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []
    released = threading.Lock()

    def release() -> None:
        """Close the database and the TLS files, once (from `stop` or when serving ends)."""
        if not released.acquire(blocking=False):
            return
        with contextlib.suppress(Exception):  # already closed
            org.store.close()
        if tmpdir is not None:
            tmpdir.cleanup()

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # surfaced to the caller below
            failure.append(exc)
        finally:
            if server.started:  # a failed start is cleaned up by the caller
                release()

    thread = threading.Thread(target=run, name=f"d365nb-sandbox-{bound_port}", daemon=True)
    thread.start()
    while not server.started:  # uvicorn sets it once the socket is served
        if failure or not thread.is_alive():
            sock.close()
            raise RuntimeError(f"the sandbox failed to start: {failure[0] if failure else '?'}")
        thread.join(0.005)
    scheme = "https" if tls else "http"
    shown = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown}:{bound_port}"
    log.info("sandbox serving %s", url)
    return SandboxHandle(server, thread, org, url, ca, release)
