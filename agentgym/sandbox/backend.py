"""SandboxBackend: the `sandbox__*` tools, executed for real in one fresh container per episode.

`start_episode` starts a `DockerSandbox` (or takes one from a `SandboxPool`) — with no network,
unless the task opts in with the tag `sandbox-network` (then the host network) — and writes the
episode's workspace: the `sandbox.files` records of its initial state (id = path under /work).
`call` dispatches by tool to a handler (`HANDLERS`: run_python, run_shell, write_file, read_file,
list_files, run_tests); each answers a JSON result, and a failure the agent can act on (a missing
file, a timeout, a killed command) is a typed tool error, never an exception. `finalize` — at the
end of the episode, before grading — writes each `tests` criterion's hidden files and runs them
with `unittest`, counting passed test methods into `episode.results`. `end_episode` removes the
container. A sandbox that dies mid-episode makes every later call a `backend_error`.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from agentgym.backends.base import Episode, ToolResult
from agentgym.jsonutil import dumps_str
from agentgym.sandbox.docker_sandbox import DockerSandbox, ExecResult, SandboxConfig
from agentgym.sandbox.errors import SandboxError
from agentgym.spec.rubric import TestsCriterion
from agentgym.spec.tool import ToolSpec

SERVER = "sandbox"
FILES = "sandbox.files"
KEY = "sandbox"
NETWORK_TAG = "sandbox-network"
"""A task tagged so gets a sandbox on the host network (off by default: no network at all)."""

# Runs unittest discovery and prints one JSON line: test methods found, those that passed (each
# counted once, on success), the failed ones and the last line of the first errors.
REPORTER = r"""
import json, sys, unittest
sys.path.insert(0, "/work")
suite = unittest.defaultTestLoader.discover(sys.argv[1], pattern=sys.argv[2], top_level_dir=sys.argv[1])
class Result(unittest.TestResult):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.passed = []
    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test.id())
res = Result()
suite.run(res)
bad = [t.id() for t, _ in res.failures + res.errors]
notes = [tb.strip().splitlines()[-1] for _, tb in res.errors][:3]
print(json.dumps({"total": suite.countTestCases(), "passed": len(res.passed), "failed": bad[:20], "errors": notes}))
"""

Handler = Callable[[DockerSandbox, dict[str, Any]], Awaitable[Any]]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def deco(f: Handler) -> Handler:
        HANDLERS[name] = f
        return f

    return deco


class ToolError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _path(rel: str) -> str:
    """A workspace path; `..` may not climb out of /work."""
    full = posixpath.normpath(posixpath.join("/work", rel))
    if full != "/work" and not full.startswith("/work/"):
        raise ToolError("invalid_arguments", f"path {rel!r} is outside the workspace")
    return full


def _exec_result(r: ExecResult) -> dict[str, Any]:
    out = {"exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}
    if r.error:
        out["error"] = r.error
    return out


@handler("run_python")
async def _run_python(sb: DockerSandbox, args: dict[str, Any]) -> Any:
    await sb.put_file("/tmp/agentgym_main.py", args["code"])
    return _exec_result(await sb.exec(["python3", "/tmp/agentgym_main.py"], timeout_s=args.get("timeout_s")))


@handler("run_shell")
async def _run_shell(sb: DockerSandbox, args: dict[str, Any]) -> Any:
    return _exec_result(await sb.exec(args["command"], timeout_s=args.get("timeout_s")))


@handler("write_file")
async def _write_file(sb: DockerSandbox, args: dict[str, Any]) -> Any:
    path = _path(args["path"])
    await sb.put_file(path, args["content"])
    return {"ok": True, "path": posixpath.relpath(path, "/work"), "bytes": len(args["content"].encode())}


@handler("read_file")
async def _read_file(sb: DockerSandbox, args: dict[str, Any]) -> Any:
    path = _path(args["path"])
    try:
        data = await sb.get_file(path, max_bytes=256 * 1024)
    except SandboxError as e:
        raise ToolError("not_found", str(e)) from None
    return {"path": args["path"], "content": data.decode("utf-8", "replace")}


@handler("list_files")
async def _list_files(sb: DockerSandbox, args: dict[str, Any]) -> Any:
    path = _path(args.get("path") or ".")
    try:
        return {"files": await sb.list_files(path)}
    except SandboxError as e:
        raise ToolError("not_found", str(e)) from None


async def run_unittest(sb: DockerSandbox, folder: str, pattern: str, timeout_s: float) -> dict[str, Any]:
    r = await sb.exec(["python3", "-c", REPORTER, folder, pattern], timeout_s=timeout_s)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {
            "total": 0,
            "passed": 0,
            "detail": r.error or r.stderr.strip()[-300:] or "the test run failed",
        }


@handler("run_tests")
async def _run_tests(sb: DockerSandbox, args: dict[str, Any]) -> Any:
    return await run_unittest(sb, "/work", args.get("pattern") or "test_*.py", 60)


class SandboxBackend:
    name: ClassVar[str] = "sandbox"
    is_sync = False

    def __init__(self, config: SandboxConfig | None = None, pool: Any | None = None) -> None:
        self.config = config or SandboxConfig()
        self.pool = pool

    def handles(self, tool: ToolSpec) -> bool:
        return tool.provenance.server == SERVER and tool.name.split("__", 1)[-1] in HANDLERS

    async def start_episode(self, episode: Episode) -> None:
        episode.extras.pop(KEY, None)
        files = list(episode.state.iter(FILES)) if FILES in episode.state.collections else []
        wants_network = NETWORK_TAG in (getattr(episode.task, "tags", None) or ())
        try:
            if wants_network:  # never from the pool: pooled sandboxes have no network
                sb = DockerSandbox(self.config.model_copy(update={"network": True}))
                await sb.start()
            elif self.pool is not None:
                sb = await self.pool.acquire()
            else:
                sb = DockerSandbox(self.config)
                await sb.start()
            for f in files:
                await sb.put_file(_path(f["id"]), f["content"])
        except (SandboxError, ToolError) as e:
            episode.extras[KEY] = e if isinstance(e, SandboxError) else SandboxError(e.message)
            return
        episode.extras[KEY] = sb

    async def end_episode(self, episode: Episode) -> None:
        sb = episode.extras.pop(KEY, None)
        if isinstance(sb, DockerSandbox):
            if self.pool is not None and not sb.config.network:
                await self.pool.release(sb)
            else:
                await sb.close()

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], episode: Episode) -> ToolResult:
        sb = episode.extras.get(KEY)
        if not isinstance(sb, DockerSandbox):
            why = sb if isinstance(sb, SandboxError) else "the episode has no sandbox"
            return ToolResult.failure("backend_error", f"sandbox unavailable: {why}")
        episode.calls += 1
        try:
            result = await HANDLERS[tool.name.split("__", 1)[-1]](sb, arguments)
        except ToolError as e:
            return ToolResult.failure(e.kind, e.message)  # type: ignore[arg-type]
        except SandboxError as e:
            return ToolResult.failure("backend_error", str(e))
        if isinstance(result, dict) and result.get("error") and "timed out" in result["error"]:
            return ToolResult(dumps_str(result), result, "timeout")
        return ToolResult(dumps_str(result), result)

    async def finalize(self, episode: Episode, task: Any) -> None:
        tests = [c for c in task.rubric.criteria if isinstance(c, TestsCriterion)]
        sb = episode.extras.get(KEY)
        if not tests or not isinstance(sb, DockerSandbox) or sb.dead:
            return
        for i, c in enumerate(tests):
            folder = f"/tmp/hidden_{i}"
            try:
                for rel, content in c.files.items():
                    await sb.put_file(posixpath.join(folder, rel), content)
                episode.results[c.id] = await run_unittest(sb, folder, c.pattern, c.timeout_s)
            except SandboxError as e:
                episode.results[c.id] = {"total": 0, "passed": 0, "detail": str(e)}
