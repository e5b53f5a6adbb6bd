"""Other Python interpreters to run cells under (``--python``): a bare one, or an environment of yours.

Where "threads don't help CPU work" stops being true is a property of the interpreter
(a free-threaded build, a newer GIL), so a run can measure the same cells under
several. :func:`resolve` finds an interpreter and asks it what it is (version,
implementation, whether it is a free-threaded build and whether the GIL is on), in a
short subprocess, and refuses what cannot run offbench; it is cheap, so settings
validation calls it. :func:`prepare` then gives it a virtual environment with *this*
offbench installed (the same source, editable if ours is), cached and reused across
runs, and returns the interpreter with the venv's executable that workers are spawned
with. Nothing here prints: ``prepare`` tells its caller through ``on_install`` before
the slow first install.

An interpreter inside a virtual environment (``--python base=base/.venv/bin/python``)
is run as it is, with that environment's own packages: the dependency set a CI job
wants to compare against another (an A/B test in one run, ``offbench compare --by
python``). offbench's worker is put first on its ``sys.path`` (offbench alone: a
folder with a link to this offbench's package), and offbench's dependencies from the
cached venv of the same base interpreter last, after the environment's own, so its
packages win wherever both have one (:func:`launcher`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import msgspec

from offbench import __version__, cache
from offbench.errors import UsageError
from offbench.model.settings import Interpreter

SELF = "self"
"""What ``--python`` takes for the interpreter running offbench (no venv, no install)."""
MIN_VERSION = (3, 11)
QUERY_TIMEOUT_S = 30.0
INSTALL_TIMEOUT_S = 900.0
READY_MARK = ".offbench-ready"

_QUERY = """
import json, platform, sys, sysconfig
try:
    {imports}
    offbench = ""
except ImportError as exc:
    offbench = "missing: %s" % exc
gil = getattr(sys, "_is_gil_enabled", None)
print(json.dumps({{
    "version": platform.python_version(),
    "version_info": list(sys.version_info[:2]),
    "implementation": platform.python_implementation(),
    "executable": sys.executable,
    "base_prefix": sys.base_prefix,
    "prefix": sys.prefix,
    "base_executable": getattr(sys, "_base_executable", sys.executable),
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "gil_enabled": True if gil is None else bool(gil()),
    "offbench": offbench,
}}))
"""
_WORKER_IMPORTS = "import offbench.measure.worker, offbench.run.child, msgspec, numpy, threadpoolctl"
"""What a worker imports; imported before the GIL is read, as an extension may turn it back on."""


class _Facts(msgspec.Struct, frozen=True):
    version: str
    version_info: list[int]
    implementation: str
    executable: str
    base_prefix: str
    prefix: str
    base_executable: str
    free_threaded: bool
    gil_enabled: bool
    offbench: str

    @property
    def environment(self) -> bool:
        """Whether the interpreter runs in a virtual environment (its own packages)."""
        return os.path.realpath(self.prefix) != os.path.realpath(self.base_prefix)


def resolve(given: str) -> Interpreter:
    """Find ``given`` (a command on ``PATH``, a path, or ``self``) and ask it what it is.

    Raises ``UsageError`` (one line) when it is not found, does not run, or is older
    than Python 3.11. The returned interpreter's ``executable`` is the one found;
    :func:`prepare` replaces it with a venv's that has offbench. An interpreter that
    is the one running offbench (same installation and version) is used as it is.
    """
    if given == SELF:
        return _interpreter(SELF, _query(sys.executable, given, _WORKER_IMPORTS), sys.executable)
    name, path = _named(given)
    found = shutil.which(path)
    if found is None:
        raise UsageError(f"--python {given}: no such interpreter (not on PATH, not an executable file)",
                         key="pythons")
    try:
        facts = _query(found, given, "pass")
    except UsageError:
        # A pyenv shim of a version that is installed but not selected fails; its
        # interpreter is there all the same.
        found = _pyenv_installed(found, given) or found
        facts = _query(found, given, "pass")
    if tuple(facts.version_info) < MIN_VERSION:
        raise UsageError(
            f"--python {given}: Python {facts.version} is too old; offbench needs "
            f"{'.'.join(map(str, MIN_VERSION))} or newer", key="pythons")
    if facts.environment and os.path.realpath(facts.prefix) != os.path.realpath(sys.prefix):
        # The environment's own python (not resolved through its link: that is what makes it one).
        found = os.path.abspath(found)
        return msgspec.structs.replace(_interpreter(given, facts, found), environment=True,
                                       label=name or _environment_name(found))
    if _is_running(facts):
        interpreter = _interpreter(given, _query(sys.executable, given, _WORKER_IMPORTS), sys.executable)
    else:
        interpreter = _interpreter(given, facts, facts.executable or found)
    return msgspec.structs.replace(interpreter, label=name) if name else interpreter


def _named(given: str) -> tuple[str, str]:
    """Split ``NAME=PATH`` (the label the tables and ``compare --by python`` use) from a plain path."""
    name, equals, path = given.partition("=")
    if not equals:
        return "", given
    if not name or not all(part.isalnum() for part in name.replace("-", "_").replace(".", "_").split("_")):
        raise UsageError(f"--python {given}: a name before '=' must be letters, digits, '.', '-' or '_'",
                         key="pythons")
    if not path:
        raise UsageError(f"--python {given}: no interpreter after '='", key="pythons")
    return name, path


def _environment_name(executable: str) -> str:
    """Return a label for an environment's python: its folder's name, or its parent's for ``.venv``."""
    folder = Path(executable).parent.parent
    return folder.parent.name if folder.name in (".venv", "venv", "env", ".env") else folder.name


def _pyenv_installed(shim: str, given: str) -> str | None:
    """Return the newest pyenv-installed ``given`` behind ``shim``, if ``shim`` is a pyenv shim."""
    shims = Path(shim).resolve().parent
    if shims.name != "shims" or not (shims.parent / "versions").is_dir():
        return None
    versions = shims.parent / "versions"
    found = [p for p in versions.glob(f"*/bin/{Path(given).name}") if os.access(p, os.X_OK)]
    return str(max(found, key=lambda p: _version_key(p.parent.parent.name))) if found else None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def _is_running(facts: _Facts) -> bool:
    """Whether ``facts`` describe the interpreter running offbench (perhaps outside its venv)."""
    return (
        os.path.realpath(facts.base_prefix) == os.path.realpath(sys.base_prefix)
        and facts.version == platform.python_version()
        and facts.free_threaded == _free_threaded()
    )


def _free_threaded() -> bool:
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def _interpreter(given: str, facts: _Facts, executable: str) -> Interpreter:
    return Interpreter(
        label=facts.version + ("t" if facts.free_threaded else ""),
        given=given,
        executable=executable,
        version=facts.version,
        implementation=facts.implementation,
        free_threaded=facts.free_threaded,
        gil_enabled=facts.gil_enabled,
    )


def _query(executable: str, given: str, imports: str) -> _Facts:
    try:
        done = subprocess.run(
            # Isolated (no PYTHONPATH, no current directory), but for the running interpreter,
            # whose offbench may come from exactly those.
            [executable, "-s" if executable == sys.executable else "-I", "-c",
             _QUERY.format(imports=imports)],
            capture_output=True, timeout=QUERY_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"--python {given}: cannot run it: {exc}", key="pythons") from None
    try:
        return msgspec.json.decode(done.stdout.strip().splitlines()[-1], type=_Facts)
    except (IndexError, msgspec.DecodeError):
        said = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        why = said[-1] if said else f"exit code {done.returncode}"
        raise UsageError(f"--python {given}: not a usable Python interpreter: {why}",
                         key="pythons") from None


def cache_root() -> Path:
    """Return where venvs are kept: ``$OFFBENCH_CACHE/venvs`` or ``~/.cache/offbench/venvs``.

    ``XDG_CACHE_HOME`` is honoured when ``OFFBENCH_CACHE`` is not set.
    """
    return cache.root() / "venvs"


def source() -> tuple[list[str], str]:
    """Return how to ``pip install`` this offbench, and a short hash that names that source.

    Installed from a local directory (PEP 610 ``direct_url.json``), the directory
    itself, editable if ours is: code changes then reach the venvs without a new
    install. The hash covers the directory, the install mode and ``pyproject.toml``
    (so new dependencies make a new venv); for a non-editable install also the
    installed files' record, so a reinstall with changed code does too. Otherwise
    ``offbench==VERSION`` from the package index.
    """
    try:
        dist = metadata.distribution("offbench")
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except (metadata.PackageNotFoundError, ValueError):
        dist, direct = None, None
    url = direct.get("url", "") if isinstance(direct, dict) else ""
    if dist is not None and url.startswith("file://"):
        folder = url.removeprefix("file://")
        editable = bool(direct.get("dir_info", {}).get("editable"))
        identity = [__version__, folder, str(editable), _read(Path(folder) / "pyproject.toml")]
        if not editable:
            identity.append(dist.read_text("RECORD") or "")
        requirement = ["-e", folder] if editable else [folder]
    else:
        identity, requirement = [__version__], [f"offbench=={__version__}"]
    digest = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:10]
    return requirement, digest


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def venv_dir(interpreter: Interpreter, digest: str) -> Path:
    """Return the cached venv of ``interpreter`` for the offbench source named by ``digest``."""
    name = f"{interpreter.implementation.lower()}-{interpreter.version}"
    return cache_root() / f"{name}{'t' if interpreter.free_threaded else ''}-{digest}"


def prepare(interpreter: Interpreter, on_install: Callable[[Interpreter], None] | None = None,
            ) -> Interpreter:
    """Return ``interpreter`` running from a venv that has this offbench, made once and cached.

    A venv that exists and imports offbench's worker is reused as it is (a fraction of
    a second). Otherwise ``on_install`` is called and the venv is made and installed
    (:func:`install_steps`; about 20 s the first time, NumPy included); a lock file keeps
    two runs from installing into the same venv at once. A failed install raises
    ``UsageError`` naming pip's log. The GIL state is read in the venv with the worker's
    modules imported. ``self`` is returned as it is.
    """
    if interpreter.executable == sys.executable:
        return interpreter
    if interpreter.environment:
        return _with_overlay(interpreter, on_install)
    requirement, digest = source()
    folder = venv_dir(interpreter, digest)
    python = str(folder / "bin" / "python")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.with_name(folder.name + ".lock")):
        facts = _ready(folder, python, interpreter.given)
        if facts is None:
            if on_install is not None:
                on_install(interpreter)
            _install(interpreter, folder, requirement)
            facts = _ready(folder, python, interpreter.given)
            if facts is None:
                raise UsageError(f"--python {interpreter.given}: offbench was installed in {folder} "
                                 "but does not import there")
    return msgspec.structs.replace(interpreter, executable=python, gil_enabled=facts.gil_enabled)


def _with_overlay(interpreter: Interpreter, on_install: Callable[[Interpreter], None] | None) -> Interpreter:
    """Return an environment's interpreter with its overlay: offbench first, its dependencies last.

    The dependencies come from the cached venv of the environment's base interpreter
    (made as for a bare ``--python``); offbench itself from a folder holding only a link
    to that venv's offbench package, so nothing else of the venv goes before the
    environment's own packages.
    """
    base = _query(interpreter.executable, interpreter.given, "pass").base_executable
    bare = prepare(_interpreter(interpreter.given, _query(base, interpreter.given, "pass"), base), on_install)
    paths = _query_paths(bare.executable, interpreter.given)
    first = Path(bare.executable).parent.parent / "offbench-first"
    link = first / "offbench"
    if not link.exists():
        first.mkdir(exist_ok=True)
        with contextlib.suppress(FileExistsError):
            link.symlink_to(paths["offbench"], target_is_directory=True)
    facts = _query(interpreter.executable, interpreter.given, "pass")
    return msgspec.structs.replace(interpreter, overlay=[str(first), paths["purelib"]],
                                   gil_enabled=facts.gil_enabled)


def _query_paths(python: str, given: str) -> dict[str, str]:
    """Return the venv's ``purelib`` folder and where its offbench package is."""
    code = ("import json, os, sysconfig, offbench; print(json.dumps("
            "{'purelib': sysconfig.get_paths()['purelib'], 'offbench': os.path.dirname(offbench.__file__)}))")
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, timeout=QUERY_TIMEOUT_S, check=True)
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        raise UsageError(f"--python {given}: cannot find offbench's folders in {python}: {exc}",
                         key="pythons") from None


BOOTSTRAP = (
    "import sys, site; first, deps = sys.argv[1:3]; del sys.argv[1:3]; sys.path.insert(0, first); "
    "site.addsitedir(deps); import runpy; runpy.run_module('offbench.run.child', run_name='__main__')"
)
"""What an environment's python runs to start a worker: offbench first, its dependencies after the
environment's packages, then the spawned child's usual entry (``python -m offbench.run.child``)."""


def launcher(interpreter: Interpreter) -> list[str]:
    """Return the command that starts a child under ``interpreter``, to which its arguments are added."""
    if interpreter.environment and interpreter.overlay:
        return [interpreter.executable, "-c", BOOTSTRAP, *interpreter.overlay]
    return [interpreter.executable, "-m", "offbench.run.child"]


def _ready(folder: Path, python: str, given: str) -> _Facts | None:
    if not (folder / READY_MARK).exists():
        return None
    try:
        facts = _query(python, given, _WORKER_IMPORTS)
    except UsageError:
        return None
    return facts if not facts.offbench else None


def _install(interpreter: Interpreter, folder: Path, requirement: list[str]) -> None:
    log_path = folder.with_name(folder.name + ".log")
    scratch = folder.with_name(folder.name + ".tmp")  # pip's build folders, gone even if it is killed
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    began = time.monotonic()
    steps = install_steps(interpreter.executable, folder, requirement)
    with open(log_path, "wb") as log, _removed(scratch):
        for step in steps:
            log.write(f"$ {' '.join(step)}\n".encode())
            log.flush()
            try:
                code = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=env, timeout=INSTALL_TIMEOUT_S, check=False).returncode
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.write(f"{exc}\n".encode())
                code = -1
            if code != 0:
                raise UsageError(f"--python {interpreter.given}: could not install offbench into "
                                 f"{folder} (see {log_path})")
        log.write(f"installed in {time.monotonic() - began:.1f} s\n".encode())
    (folder / READY_MARK).write_text(f"{' '.join(requirement)}\n", encoding="utf-8")


def install_steps(executable: str, folder: Path, requirement: list[str]) -> list[list[str]]:
    """Return the commands that make the venv ``folder`` of ``executable`` with ``requirement`` installed.

    With a pip of 22.3 or later beside offbench, that pip installs into a venv made
    without one (``--python``): the venv's own pip (ensurepip) cost about 6 s. Either way
    ``--no-compile``: compiling every installed module (NumPy's tests too) cost 13 s of
    30; the modules a worker imports compile as it first imports them. Measured with
    CPython 3.12 on a 2-CPU VM, 2026-12-01.
    """
    python = str(folder / "bin" / "python")
    if _pip_version() >= (22, 3):
        return [[executable, "-m", "venv", "--without-pip", str(folder)],
                [sys.executable, "-m", "pip", "--python", python, "install", "--no-compile", *requirement]]
    return [[executable, "-m", "venv", str(folder)],
            [python, "-m", "pip", "install", "--no-compile", *requirement]]


def _pip_version() -> tuple[int, ...]:
    """Return the version of the pip beside this offbench, ``()`` if there is none."""
    try:
        return tuple(int(part) for part in metadata.version("pip").split(".")[:2] if part.isdigit())
    except (metadata.PackageNotFoundError, ValueError):
        return ()


@contextlib.contextmanager
def _removed(folder: Path) -> Iterator[None]:
    """Remove ``folder`` and everything in it at the end of the block."""
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block."""
    with open(path, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
