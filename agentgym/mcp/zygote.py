"""The fork server ("zygote") program, run by `agentgym.mcp.prefork` under a server's own Python.

`python zygote.py FOLDER [MODULE ...]` imports the MODULEs once (the `mcp` SDK), checks that it is
still single-threaded (forking while another thread runs is unsafe: a lock that thread held stays
held forever in the child), freezes the heap (`gc.freeze`: the children's collector then leaves the
shared pages alone), listens on the Unix socket `FOLDER/socket` (created only once it listens; the
folder is private to our user) and serves one request per connection:

- in: one JSON line — `argv` (the server's `sys.argv`), `run` (`path` or `module`), `target` (the
  script or module), `env`, `cwd`, `limits` ([RLIMIT_*, value] pairs), `cgroup` (a pids cgroup
  folder or null), `netns` (null, or `net` / `user`: a network namespace of its own, inside a new
  user namespace for `user` as `unshare --net --map-root-user` does) — with three file
  descriptors attached (SCM_RIGHTS): the server's stdin, stdout and stderr;
- out: `pid N` once forked, then `exit CODE` once the server has exited and been reaped (CODE as
  `returncode` has it: negative for a signal), or `error TEXT`; then the zygote closes the connection.

The child becomes a server process of its own: a new session and process group; killed by the
kernel should the zygote die (PR_SET_PDEATHSIG); in the request's cgroup; fds 0-2 the given ones
and no other fd open; the resource limits set; its own network namespace when asked; the given
environment and working folder; `sys.argv`, `sys.path[0]` and the std streams as `python script.py`
(or `python -m module`) would have them. It then runs the target as `__main__` (runpy) and exits as
the interpreter does: non-daemon threads joined, atexit handlers run, streams flushed. A set-up step
that fails ends the child with code 126 and a line on its stderr, before any server code runs.

A client that closes its connection while its server runs gets that server's process group killed.
The zygote exits, killing every server it forked and removing FOLDER, when its stdin reaches EOF
(the client process closed it, or died) or on SIGTERM. It imports, forks and reaps; it never runs a server's code itself.
Standard library only: it runs under whichever Python the server names.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import ctypes
import gc
import importlib
import json
import os
import resource
import runpy
import selectors
import shutil
import signal
import socket
import sys
import threading
import traceback
from typing import Any, NoReturn

SETUP_FAILED = 126
"""Exit code of a child whose set-up failed before the server ran."""
NOT_SINGLE_THREADED = 3
"""Exit code of a zygote that refuses to fork because a preloaded module started a thread."""
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
MAX_REQUEST = 1 << 20
_LIBC = ctypes.CDLL(None, use_errno=True)


def _log(text: str) -> None:
    os.write(2, f"agentgym zygote: {text}\n".encode(errors="replace"))


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))  # counts threads no Python code knows of, too
    except OSError:
        return threading.active_count()


class Zygote:
    """The serving loop (module doc): one selector, no threads."""

    def __init__(self, folder: str) -> None:
        self.pid = os.getpid()
        self.stdio = [(s.encoding, s.errors) for s in (sys.stdin, sys.stdout)]
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.path = os.path.join(folder, "socket")
        self.listener.bind(self.path + ".new")
        self.listener.listen(1024)
        os.rename(self.path + ".new", self.path)  # the client connects once the name exists
        self.listener.setblocking(False)
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a Python handler, so the wakeup fd is written
        signal.signal(signal.SIGTERM, self._terminate)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "reap")
        self.selector.register(0, selectors.EVENT_READ, "stdin")
        self.pending: dict[socket.socket, tuple[bytearray, list[int]]] = {}
        self.children: dict[int, socket.socket | None] = {}  # pid → its client's connection
        self.serving: dict[socket.socket, int] = {}  # connection → pid

    def _terminate(self, *_: object) -> None:
        raise SystemExit(0)

    def serve(self) -> None:
        try:
            while True:
                for key, _ in self.selector.select(1.0):
                    what = key.data
                    if what == "accept":
                        self._accept()
                    elif what == "reap":
                        with contextlib.suppress(OSError):
                            while os.read(self.wake_r, 512):
                                pass
                    elif what == "stdin":
                        if not os.read(0, 4096):
                            return
                    elif what == "request":
                        self._read_request(key.fileobj)  # type: ignore[arg-type]
                    else:
                        self._client_spoke(key.fileobj)  # type: ignore[arg-type]
                self._reap()
        finally:
            self._shutdown()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            self.pending[conn] = (bytearray(), [])
            self.selector.register(conn, selectors.EVENT_READ, "request")

    def _drop(self, conn: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        buf_fds = self.pending.pop(conn, None)
        for fd in buf_fds[1] if buf_fds else ():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.serving.pop(conn, None)
        conn.close()

    def _read_request(self, conn: socket.socket) -> None:
        buf, fds = self.pending[conn]
        try:
            data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * array.array("i").itemsize))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancdata = b"", []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = array.array("i")
                got.frombytes(payload[: len(payload) - len(payload) % got.itemsize])
                fds += list(got)
        if not data:
            self._drop(conn)
            return
        buf += data
        if b"\n" not in buf:
            if len(buf) > MAX_REQUEST:
                self._answer(conn, "error request too long")
                self._drop(conn)
            return
        try:
            request = json.loads(buf[: buf.index(b"\n")])
            if len(fds) != 3:
                raise ValueError(f"expected 3 file descriptors (stdin, stdout, stderr), got {len(fds)}")
            for name in ("argv", "run", "target", "env", "cwd", "limits"):
                if name not in request:
                    raise ValueError(f"no {name!r} in the request")
        except ValueError as e:
            self._answer(conn, f"error bad request: {e}")
            self._drop(conn)
            return
        self.selector.modify(conn, selectors.EVENT_READ, "serving")
        self.pending.pop(conn)
        self._fork(conn, request, fds)

    def _fork(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        try:
            pid = os.fork()
        except OSError as e:
            self._answer(conn, f"error cannot fork: {e}")
            for fd in fds:
                os.close(fd)
            self._drop(conn)
            return
        if pid == 0:
            self._become_server(request, fds)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        self.serving[conn] = pid
        self._answer(conn, f"pid {pid}")

    def _answer(self, conn: socket.socket, line: str) -> None:
        with contextlib.suppress(OSError):
            conn.send((line + "\n").encode())  # a few bytes on a fresh connection: never blocks

    def _client_spoke(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            return  # nothing is expected; ignored
        pid = self.serving.get(conn)
        if pid is not None and pid in self.children:  # not reaped yet: the pid is still ours
            self.children[pid] = None
            _kill(pid)
        self._drop(conn)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                self._answer(conn, f"exit {os.waitstatus_to_exitcode(status)}")
                self._drop(conn)

    def _shutdown(self) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for pid in list(self.children):
            _kill(pid)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)  # our folder: the client may be gone

    # ---- in the child ----------------------------------------------------------------------------

    def _become_server(self, request: dict[str, Any], fds: list[int]) -> NoReturn:
        try:
            os.setsid()
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != self.pid:  # the zygote died while forking us
                os._exit(SETUP_FAILED)
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if request.get("cgroup"):
                with open(os.path.join(request["cgroup"], "cgroup.procs"), "w") as f:
                    f.write("0")
            for i, fd in enumerate(fds):
                os.dup2(fd, i)
            # Python objects of the zygote keep their (now stale) fd numbers but stay referenced
            # until `os._exit`, so none of them closes an fd the server opens later.
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            for res, value in request["limits"]:
                resource.setrlimit(res, (value, value))
            if request.get("netns"):
                _unshare_network(request["netns"])
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            if "tempfile" in sys.modules:
                sys.modules["tempfile"].tempdir = None  # re-read TMPDIR
            sys.argv = list(request["argv"])
            if request["run"] == "module":  # as `python -m` and `python script.py` set it
                sys.path.insert(0, os.getcwd())
            else:
                sys.path.insert(0, os.path.dirname(os.path.realpath(request["target"])))
            _std_streams(self.stdio)
        except BaseException as e:
            with contextlib.suppress(BaseException):
                _log(f"cannot set up the server process: {type(e).__name__}: {e}")
            os._exit(SETUP_FAILED)
        _run_as_main(request["run"], request["target"])


def _unshare_network(how: str) -> None:
    """A network namespace of our own (`net`), inside a user namespace where we are root (`user`, when
    we may not create one otherwise): what `unshare --net [--map-root-user]` does for a spawned server."""
    uid, gid = os.getuid(), os.getgid()
    if _LIBC.unshare(CLONE_NEWNET | (CLONE_NEWUSER if how == "user" else 0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot take the network away (unshare): {os.strerror(err)}")
    if how == "user":
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)


def _std_streams(stdio: list[tuple[str, str]]) -> None:
    """sys.stdin, stdout and stderr on fds 0-2, made as the interpreter makes them at start-up."""
    (in_enc, in_err), (out_enc, out_err) = stdio
    common: dict[str, Any] = {"newline": "\n", "closefd": False}
    sys.stdin = sys.__stdin__ = open(0, encoding=in_enc, errors=in_err, **common)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", encoding=out_enc, errors=out_err, **common)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", encoding=out_enc, errors="backslashreplace", buffering=1, **common
    )


def _run_as_main(run: str, target: str) -> NoReturn:
    """Run the server as `__main__`, then end the process as the interpreter would."""
    code, interrupted = 0, False
    try:
        if run == "module":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except SystemExit as e:
        code = _exit_code(e.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        interrupted = True
    except BaseException:
        traceback.print_exc()
        code = 1
    with contextlib.suppress(BaseException):
        threading._shutdown()  # type: ignore[attr-defined]  (what interpreter exit does: join non-daemon threads)
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    if interrupted:  # as the interpreter does: die of the signal, so the parent sees it
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    with contextlib.suppress(BaseException):
        print(value, file=sys.stderr)
    return 1


def _kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # the group, and the pid itself in case it has not called setsid yet
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    del sys.path[0]  # this file's folder (agentgym/mcp) must not shadow a server's imports
    folder, modules = argv[0], argv[1:]
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as e:  # the server will import it itself and fail as it would have
            _log(f"cannot preload {name}: {type(e).__name__}: {e}")
    if _threads() > 1:
        _log(f"{_threads()} threads after preloading {' '.join(modules)}: refusing to fork")
        return NOT_SINGLE_THREADED
    gc.collect()
    gc.freeze()
    Zygote(folder).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
