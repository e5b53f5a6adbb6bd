"""A user's own blocking callable, named ``module:function`` (e.g. ``mypkg.client:fetch``).

The module is located in the parent (without importing it, so its side effects and
threads stay out of the pristine parent) and imported in the worker and, for
``process-pool``, by name in every pool process: what crosses a process boundary is a
:class:`UserCall`, which holds names and JSON values only, so it always pickles. The
call's *return value* must pickle too under ``process-pool`` (it travels back); when it
does not, that cell fails with the reason.

Parameters (all optional, from a scenario file; ``--setup`` on the command line):

``args``, ``kwargs``
    Passed to every call. Strings in them may contain ``{server_url}``,
    ``{server_host}`` and ``{server_port}`` (see ``server``).
``setup``
    ``module:function`` of a zero-argument factory (a client, a connection) whose
    return value is passed to every call as the first argument. It runs once per
    thread (``setup_scope = "thread"``, the default: right for objects such as
    ``sqlite3`` connections that must stay on one thread) or once per process
    (``"process"``: one shared, thread-safe client). It runs before the event loop
    starts in the cell's worker and in each pool process, and in an executor thread on
    that thread's first call, never on the loop during the window.
    ``executor-per-call`` makes a new thread per call, so a thread-scoped setup runs
    on every call there: what that pattern costs code with a client per thread.
``server``
    A table such as ``{ delay_ms = 5, reply_bytes = 1024 }``: run offbench's
    loopback server beside the cell (it answers a line or an HTTP/1.x request after
    ``delay_ms``) and fill the ``{server_*}`` placeholders with its address.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from offbench.errors import UsageError
from offbench.model.params import Params, ParamValue, number, whole
from offbench.processes import announce, report_and_exit, run_child
from offbench.workloads import Workload
from offbench.workloads.server import ServerConfig, loopback_server

SETUP_SCOPES = ("thread", "process")
SERVER_KEYS: Mapping[str, type] = {"delay_ms": float, "reply_bytes": int}
SERVER_HOST = "127.0.0.1"


def check_target(target: str, what: str = "workload") -> None:
    """Raise ``UsageError`` unless ``target`` is ``module:function`` with a findable module.

    The module is found, not imported: importing runs user code, which belongs in the
    worker process.
    """
    module_name = _check_form(target, what)
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise UsageError(f"{target}: cannot import {module_name!r}: {exc}") from None
    if spec is None:
        raise UsageError(f"{target}: no module named {module_name!r} (is it on sys.path?)")


def _check_form(target: str, what: str = "workload") -> str:
    """Raise ``UsageError`` unless ``target`` reads ``module:function``; return the module's name."""
    module_name, _, attr_path = target.partition(":")
    if not module_name or not attr_path or not all(
        part.isidentifier() for part in (*module_name.split("."), *attr_path.split("."))
    ):
        raise UsageError(f"{what} {target!r} is not of the form module:function")
    return module_name


VERIFY_TIMEOUT_S = 30.0
SLOW_IMPORT_NOTICE_S = 1.0
"""An import check still running after this long is said on the terminal, so a slow (or hung)
import is not seconds of silence."""


@functools.cache
def check_callable(target: str) -> None:
    """Raise ``UsageError`` if ``target``'s module lacks the attribute or it is not callable.

    Checked in a child process, since importing runs user code (it may start threads,
    which would make forking the workers unsafe). A module that raises or hangs while
    importing passes here: that is the workload failing, and its cells say so. An import
    that takes over :data:`SLOW_IMPORT_NOTICE_S` is said on stderr as it happens, and one
    that hangs past :data:`VERIFY_TIMEOUT_S` is warned about.
    """
    module = target.partition(":")[0]
    began = time.monotonic()
    said = False

    def notice() -> None:
        nonlocal said
        if not said and time.monotonic() - began >= SLOW_IMPORT_NOTICE_S:
            said = True
            print(f"offbench: importing {module!r} for {target} (waiting up to "
                  f"{VERIFY_TIMEOUT_S:g} s)...", file=sys.stderr, flush=True)

    outcome = run_child(_check_callable_main, target.encode(), VERIFY_TIMEOUT_S, on_wait=notice,
                        poll_s=0.2)
    if outcome.timed_out:
        print(f"offbench: warning: importing {module!r} for {target} did not finish in "
              f"{VERIFY_TIMEOUT_S:g} s; measuring anyway (its cells will say if it hangs)",
              file=sys.stderr, flush=True)
    if outcome.report:
        raise UsageError(outcome.report.decode())


def _check_callable_main(payload: bytes, report_fd: int) -> None:
    message = ""
    try:
        resolve(payload.decode())
    except UsageError as exc:
        message = str(exc)
    except BaseException:  # the cells report what importing does
        pass
    report_and_exit(report_fd, message.encode())


@functools.cache
def resolve(target: str) -> Callable[..., object]:
    """Import ``module:function`` and return the callable, with a clear error when it is not one.

    In a worker, the parent is told while the module imports: a worker killed at the
    cell's timeout is then said to have hung in the import.
    """
    module_name, _, attr_path = target.partition(":")
    announce(f"importing {module_name!r} (for {target})")
    obj: object = importlib.import_module(module_name)
    announce("")
    for attr in attr_path.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise UsageError(f"{target}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{target}: {type(obj).__name__} object is not callable")
    return obj


_per_thread = threading.local()
_per_process: dict[str, object] = {}
_per_process_lock = threading.Lock()


def _forget_after_fork() -> None:
    """Make a forked pool process set up its own objects, as a spawned one does.

    An object (a client, a connection) copied across fork would share its sockets with the
    worker it was forked from.
    """
    _per_process.clear()
    _per_thread.__dict__.pop("made", None)


os.register_at_fork(after_in_child=_forget_after_fork)


def resource(setup: str, scope: str) -> object:
    """Return this thread's (or this process's) object made by the ``setup`` factory, making it once."""
    if scope == "process":
        try:
            return _per_process[setup]
        except KeyError:
            with _per_process_lock:
                if setup not in _per_process:
                    _per_process[setup] = resolve(setup)()
                return _per_process[setup]
    made: dict[str, object] = _per_thread.__dict__.setdefault("made", {})
    if setup not in made:
        made[setup] = resolve(setup)()
    return made[setup]


class UserCall:
    """One call of a user callable, by name: picklable whatever the callable and its setup are."""

    def __init__(
        self, target: str, args: list[Any], kwargs: dict[str, Any], setup: str, scope: str
    ) -> None:
        self.target, self.args, self.kwargs = target, args, kwargs
        self.setup, self.scope = setup, scope

    def __call__(self) -> object:
        """Call the target, with this thread's setup object first when there is a setup."""
        fn = resolve(self.target)
        if self.setup:
            return fn(resource(self.setup, self.scope), *self.args, **self.kwargs)
        return fn(*self.args, **self.kwargs)

    def __repr__(self) -> str:
        return f"UserCall({self.target!r})"


class UserFunction(Workload):
    """Any importable callable, called with the configured arguments as one unit of work."""

    summary = "your own blocking callable, given as module:function (args, kwargs, setup in TOML)"
    defaults: ClassVar[Mapping[str, ParamValue]] = {
        "args": [],
        "kwargs": {},
        "setup": "",
        "setup_scope": "thread",
        "server": {},
    }

    def __init__(self, target: str) -> None:
        self.name = target

    @classmethod
    def from_target(cls, target: str) -> UserFunction:
        """Check that ``target`` has the form ``module:function``; :meth:`check` finds and imports it.

        Not imported here: with ``--python`` the module may exist only in the interpreters the
        cells run under, not in the one running offbench.
        """
        _check_form(target)
        return cls(target)

    def check(self) -> None:
        """Check, in this interpreter, that the module is found and names a callable."""
        check_target(self.name)
        check_callable(self.name)

    def resolve_params(self, overrides: Mapping[str, ParamValue]) -> Params:
        """Check the generic types, then what only a user callable has: setup, scope, server."""
        params = super().resolve_params(overrides)
        setup = str(params["setup"])
        if setup:
            try:
                check_target(setup, what="setup")
            except UsageError as exc:
                raise UsageError(str(exc), key="setup") from None
        if params["setup_scope"] not in SETUP_SCOPES:
            raise UsageError(
                f"setup_scope must be one of {', '.join(SETUP_SCOPES)}, got {params['setup_scope']!r}",
                key="setup_scope",
            )
        params["server"] = _server_params(params["server"])
        return params

    def prepare(self, params: Mapping[str, ParamValue]) -> Params:
        """Import the callable and run its setup for this thread, before any loop starts."""
        resolve(self.name)
        setup = str(params["setup"])
        if not setup:
            return {}
        began = time.perf_counter()
        announce(f"running the setup {setup}")
        resource(setup, str(params["setup_scope"]))
        announce("")
        return {"setup_s": round(time.perf_counter() - began, 6)}

    @contextmanager
    def fixture(self, params: Mapping[str, ParamValue]) -> Iterator[Params]:
        """Run the loopback server for the cell when the workload asks for one."""
        server = params["server"]
        if not isinstance(server, dict) or not server:
            yield {}
            return
        config = ServerConfig(
            host=SERVER_HOST,
            delay_ms=number(server, "delay_ms"),
            reply_bytes=whole(server, "reply_bytes"),
        )
        with loopback_server(config) as port:
            yield {"host": SERVER_HOST, "port": port}

    def make_call(
        self, params: Mapping[str, ParamValue], resources: Mapping[str, ParamValue]
    ) -> Callable[[], object]:
        """Return a :class:`UserCall` with the server's address filled into the arguments."""
        fill = functools.partial(_fill, _placeholders(resources))
        return UserCall(
            self.name,
            fill(params["args"]),
            fill(params["kwargs"]),
            str(params["setup"]),
            str(params["setup_scope"]),
        )


def _server_params(value: ParamValue) -> Params:
    if not isinstance(value, dict):
        raise UsageError(f"server must be a table such as {{ delay_ms = 5 }}, got {value!r}", key="server")
    unknown = sorted(set(value) - set(SERVER_KEYS))
    if unknown:
        raise UsageError(
            f"server has no setting {unknown[0]!r} (known: {', '.join(SERVER_KEYS)})", key="server"
        )
    if not value:
        return {}
    server = ServerConfig()
    filled: Params = {"delay_ms": server.delay_ms, "reply_bytes": server.reply_bytes}
    filled.update(value)
    for key, kind in SERVER_KEYS.items():
        given = filled[key]
        if isinstance(given, bool) or not isinstance(given, int | float) or given < 0:
            raise UsageError(f"server.{key} must be a number, 0 or more, got {given!r}", key="server")
        filled[key] = kind(given)
    return filled


def _placeholders(resources: Mapping[str, ParamValue]) -> dict[str, str]:
    if "port" not in resources:
        return {}
    host, port = str(resources["host"]), str(resources["port"])
    return {
        "{server_url}": f"http://{host}:{port}/",
        "{server_host}": host,
        "{server_port}": port,
    }


def _fill(placeholders: Mapping[str, str], value: Any) -> Any:
    """Return ``value`` with the placeholders replaced in every string, however deeply nested."""
    if isinstance(value, str):
        for name, text in placeholders.items():
            value = value.replace(name, text)
        return value
    if isinstance(value, list):
        return [_fill(placeholders, item) for item in value]
    if isinstance(value, dict):
        return {key: _fill(placeholders, item) for key, item in value.items()}
    return value
