"""The Python interpreter guest of moat.

componentize-py runs this module's top level once, while it builds the
component, and snapshots the interpreter afterwards. Everything imported here
is therefore baked into the snapshot, and nothing else exists at run time:
the list in `modules.txt` is the sandbox's package allow-list. The host calls
`WitWorld.run` once per piece of code; globals persist between calls on one
instance, so a session behaves like a notebook kernel.
"""

import ast
import asyncio
import builtins
import importlib
import inspect
import io
import linecache
import os
import pkgutil
import selectors
import socket
import sys
import time
import traceback

import moat_http
import wit_world
from wit_world.imports.types import GuestError, RunOptions, RunOutcome

# Python's own default. The host gives the guest a 16 MiB WebAssembly stack,
# on which pure-Python recursion passes 10,000 levels without trapping, so
# deep recursion raises a RecursionError that code can catch.
RECURSION_LIMIT = 1000

# Name of the directory where relative paths resolve: the host always
# preopens the run's scratch directory here.
WORKSPACE = "/workspace"


def _read_module_list() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    names = []
    with open(os.path.join(here, "modules.txt"), encoding="utf-8") as listing:
        for line in listing:
            name = line.split("#", 1)[0].strip()
            if name:
                names.append(name)
    return names


def _import_with_submodules(name: str):
    """Import `name` and, for a package, every submodule it has.

    Packages import many of their submodules lazily, on first use (the
    expat parser of `xml.etree`, the codecs of `encodings`, `sqlite3.dump`),
    and a module missing from the snapshot cannot be imported later. Command
    line entry points (`__main__`) are skipped, and so is a submodule that
    cannot be imported on WASI at all.
    """
    module = importlib.import_module(name)
    if not hasattr(module, "__path__"):
        return
    for info in pkgutil.walk_packages(module.__path__, prefix=name + "."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        try:
            importlib.import_module(info.name)
        except Exception as error:  # noqa: BLE001 - reported, then skipped
            print(f"moat guest build: skipping {info.name}: {error!r}", file=sys.stderr)


def _bake_time_zones():
    """Keep the IANA time zone database in memory for `zoneinfo`.

    The guest has no /usr/share/zoneinfo, and the `tzdata` package's files
    are not readable after the snapshot, so the zone files are read now and
    `zoneinfo` is pointed at the copies.
    """
    import tzdata
    from zoneinfo import _common

    root = os.path.join(os.path.dirname(tzdata.__file__), "zoneinfo")
    zones = {}
    for directory, _, files in os.walk(root):
        for file in files:
            path = os.path.join(directory, file)
            key = os.path.relpath(path, root).replace(os.sep, "/")
            if key.startswith("__") or key.endswith((".py", ".pyc", ".tab", ".zi")):
                continue
            with open(path, "rb") as zone_file:
                zones[key] = zone_file.read()

    def load_tzdata(key):
        try:
            return io.BytesIO(zones[key])
        except KeyError:
            raise ZoneInfoNotFoundError(f"No time zone found with key {key}") from None

    from zoneinfo import ZoneInfoNotFoundError

    _common.load_tzdata = load_tzdata
    zoneinfo.reset_tzpath(to=[])
    return sorted(zones)


class _NoSocketsWhileBaking:
    """Stands in for `socket.socket` while the snapshot is made.

    Some modules open a socket at import time to probe the platform
    (urllib3 checks for IPv6 support this way). A socket created then would
    be a WASI resource handle frozen into the snapshot, and it does not
    exist in a new instance: using it traps with "unknown handle index".
    Refusing sockets during the build makes such probes take their
    no-network path instead.
    """

    def __init__(self, *args, **kwargs):
        raise OSError("sockets are not available while the guest is built")


def _bake_modules(names):
    real_socket = socket.socket
    socket.socket = _NoSocketsWhileBaking
    try:
        for name in names:
            _import_with_submodules(name)
    finally:
        socket.socket = real_socket


BAKED_MODULES = _read_module_list()
_bake_modules(BAKED_MODULES)

import zoneinfo  # noqa: E402 - imported through modules.txt above

TIME_ZONES = _bake_time_zones()

# Modules that guest code may import by name: the baked list plus whatever
# those modules imported themselves, such as `_strptime` or `encodings.idna`.
AVAILABLE = frozenset(sys.modules)
_PUBLIC_NAMES = sorted({name for name in BAKED_MODULES if "." not in name})


class SandboxModuleFinder:
    """A meta path finder, consulted last, that rejects every other import.

    Without it a failed import would name a file system path or say nothing
    useful. The message lists what the sandbox does have, so that a model can
    pick an alternative.
    """

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".", 1)[0]
        message = (
            f"module '{fullname}' is not available in the moat sandbox: "
            "only modules baked into the guest can be imported "
            f"(available: {', '.join(_PUBLIC_NAMES)})"
        )
        raise ModuleNotFoundError(message, name=top)


class _SleepSelector(selectors.BaseSelector):
    """An asyncio selector for a guest without sockets or pipes.

    The guest has no file descriptors to wait on, so selecting is sleeping
    until the next timer is due. Registering a descriptor is an error.
    """

    def register(self, fileobj, events, data=None):
        raise OSError(f"the moat sandbox cannot wait on file object {fileobj!r}")

    def unregister(self, fileobj):
        raise KeyError(fileobj)

    def select(self, timeout=None):
        if timeout is None:
            raise RuntimeError(
                "asyncio loop would wait forever: no timers are pending and "
                "the sandbox has no sockets or pipes to wait on"
            )
        if timeout > 0:
            time.sleep(timeout)
        return []

    def close(self):
        pass

    def get_map(self):
        return {}


class SandboxEventLoop(asyncio.SelectorEventLoop):
    """The selector event loop without its self-pipe.

    The standard loop wakes itself through `socket.socketpair`, which WASI
    lacks. Nothing here runs on another thread, so the wake-up is unneeded.
    """

    def __init__(self):
        super().__init__(selector=_SleepSelector())

    def _make_self_pipe(self):
        pass

    def _close_self_pipe(self):
        pass

    def _write_to_self(self):
        pass


def _install_event_loop():
    # `asyncio.run`, `asyncio.Runner` and `asyncio.new_event_loop` all create
    # their loop through the default policy's loop factory.
    from asyncio import events

    policy_class = type(events._get_event_loop_policy())
    policy_class._loop_factory = SandboxEventLoop


_install_event_loop()
moat_http.install()
sys.meta_path.append(SandboxModuleFinder())
sys.setrecursionlimit(RECURSION_LIMIT)


def _narrowed_builtins(allowed: frozenset) -> dict:
    """Builtins whose `__import__` admits only the `allowed` top-level names.

    Only imports written in guest code go through it: library modules keep
    the real `__import__`, so an allowed module can still use the others
    internally. This narrows what a policy allows by name and is not a
    security boundary. Nothing outside the baked set can be imported at all.
    """
    real_import = builtins.__import__
    listing = ", ".join(sorted(allowed))

    def checked_import(name, globals=None, locals=None, fromlist=(), level=0):
        top = name.partition(".")[0]
        if level == 0 and top not in allowed:
            raise ModuleNotFoundError(
                f"module '{name}' is not allowed by the moat policy (allowed: {listing})",
                name=top,
            )
        return real_import(name, globals, locals, fromlist, level)

    narrowed = dict(vars(builtins))
    narrowed["__import__"] = checked_import
    return narrowed


def _exit_code(exit: SystemExit) -> int:
    code = exit.code
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code
    # `sys.exit("message")` prints the message and exits with status 1.
    print(code, file=sys.stderr)
    return 1


def _describe(error: BaseException) -> GuestError:
    # Drop the frames of this module (the cell runner and the import check)
    # so the traceback shows only user and library code.
    kept = []
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != __file__:
            kept.append(tb)
        tb = tb.tb_next
    for current, following in zip(kept, kept[1:] + [None]):
        current.tb_next = following
    error = error.with_traceback(kept[0] if kept else None)
    stack = "".join(traceback.format_exception(error))
    return GuestError(
        name=type(error).__qualname__,
        message=str(error),
        stack=stack,
    )


def _display(value) -> str | None:
    if value is None:
        return None
    return repr(value)


def _flush_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


class WitWorld(wit_world.WitWorld):
    """Runs code cells in one persistent namespace."""

    def __init__(self):
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}

    def run(self, code: str, options: RunOptions) -> RunOutcome:
        try:
            os.chdir(WORKSPACE)
        except OSError:
            pass

        if options.allowed_modules is None:
            self.namespace["__builtins__"] = builtins
        else:
            allowed = frozenset(options.allowed_modules)
            self.namespace["__builtins__"] = _narrowed_builtins(allowed)

        try:
            value = self._execute(code, options.filename)
            return RunOutcome(value=_display(value), exit_code=None, error=None)
        except SystemExit as exit:
            return RunOutcome(value=None, exit_code=_exit_code(exit), error=None)
        except BaseException as error:
            return RunOutcome(value=None, exit_code=None, error=_describe(error))
        finally:
            _flush_streams()

    def _execute(self, code: str, filename: str):
        # Tracebacks read source lines through linecache; the code exists
        # only in memory, so register it there under its display name.
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)

        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = compile(code, filename, "exec", flags | ast.PyCF_ONLY_AST)

        # The value of a final expression is the cell's result, as in a
        # notebook: run everything before it, then evaluate it on its own.
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)

        body = compile(tree, filename, "exec", flags)
        self._evaluate(body)
        if last is None:
            return None
        return self._evaluate(compile(last, filename, "eval", flags))

    def _evaluate(self, code):
        result = eval(code, self.namespace)
        # Code with a top-level `await` compiles to a coroutine function body:
        # evaluating it returns a coroutine that still has to run.
        if code.co_flags & inspect.CO_COROUTINE:
            result = asyncio.run(result)
        return result
