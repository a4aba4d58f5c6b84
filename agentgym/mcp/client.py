"""Talking to a real MCP server: `connect(spec, timeout=…)` yields an initialised `Connection`.

In: a `ServerSpec` (or its string). `connect` installs the package if needed (`launch.install`),
starts the server in the sandbox (`sandbox.start`, stdio; with `prefork=True` a Python server is
forked from a fork server instead, `prefork.start`, sandboxed alike and with the same guarantees
below) or opens the streamable-HTTP endpoint,
runs the MCP `initialize` handshake with the `mcp` SDK's `ClientSession`, and yields a `Connection`:
the session itself, the server's `Implementation` (name, version), its capabilities, and helpers
that list tools, resources and prompts across pages and call tools.

Out, on failure: always `MCPServerError(kind, message, stderr_tail)` (`agentgym.mcp.errors`),
never a hang and never a leftover process. Start and initialise share one deadline (`timeout`);
every request has its own (`request_timeout`, default `timeout`; `call_tool` takes its own too),
enforced by `anyio.fail_after` and, as a backstop, by the session. The transport watches the
server: a line on stdout that is not JSON-RPC is a `protocol_error` and the process exiting is
`crashed`, both reported at once (the pending request is cancelled, not left to time out). An SDK
error that escapes the `async with` body is translated the same way. Leaving the block — normally,
by error or by cancellation — closes the session and kills the server's whole process tree
(`SandboxedProcess.close`).

Between transport and session, tools/list answers are screened (`_screened`): the SDK validates a
listing as a whole, so one tool whose schema breaks the protocol would fail every tool of the
server; instead it is taken out of the answer and kept, as sent, in `Connection.rejected_tools`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import StreamableHTTPError, streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types.methods import validate_server_result
from pydantic import ValidationError

from agentgym.mcp.errors import MCPServerError
from agentgym.mcp.launch import InstalledServer, ServerSpec, install
from agentgym.mcp.prefork import start as prefork_start
from agentgym.mcp.sandbox import SandboxedProcess, SandboxPolicy, start

CLIENT_INFO = types.Implementation(name="agentgym", version="0.1.0")
MAX_PAGES = 1000
"""A server that keeps returning cursors past this many pages is broken, not large."""

DEFAULT_VERSION = "2025-11-25"
"""The version a tools/list answer is checked against before `initialize` has named one."""

T = TypeVar("T")


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            name = signal.Signals(-code).name
            hint = {"SIGKILL": " (killed: a sandbox limit?)", "SIGXCPU": " (CPU-time limit)"}.get(name, "")
            return f"was killed by {name}{hint}"
    return f"exited with code {code}"


@dataclass
class _Watch:
    """What the transport has seen go wrong, and the scopes to cancel when it does."""

    process: SandboxedProcess | None = None
    failure: MCPServerError | None = None
    guards: set[anyio.CancelScope] = field(default_factory=set)
    initialised: bool = False
    protocol_version: str | None = None
    rejected_tools: list[Any] = field(default_factory=list)
    """Tools screened out of tools/list answers, as the server sent them (see `_screened`)."""

    def tail(self) -> str:
        return self.process.stderr_tail() if self.process is not None else ""

    def fail(self, kind: Any, message: str) -> None:
        """Record the first failure and cancel whatever is waiting on the server."""
        if self.failure is None:
            self.failure = MCPServerError(kind, message, self.tail())
        for scope in self.guards:
            scope.cancel()

    def transport_error(self, exc: BaseException) -> MCPServerError | None:
        """A connection failure of the HTTP transport as `start_failed` (before initialise) or `crashed`."""
        if isinstance(exc, httpx2.HTTPError | StreamableHTTPError | OSError):
            kind = "crashed" if self.initialised else "start_failed"
            return MCPServerError(kind, f"connection failed: {type(exc).__name__}: {exc}", self.tail())
        return None

    async def on_message(self, message: Any) -> None:
        """The session's message handler: transport exceptions (the HTTP client reports here)."""
        if isinstance(message, Exception):
            err = self.transport_error(message)
            if err is not None:
                self.fail(err.kind, err.message)
            else:
                self.fail("protocol_error", f"invalid message from the server: {message}"[:500])
        await anyio.lowlevel.checkpoint()

    async def error_for(self, exc: BaseException, what: str, timeout: float) -> MCPServerError | None:
        """The `MCPServerError` an exception from the SDK stands for; None if it is not the server's."""
        if isinstance(exc, MCPServerError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                err = await self.error_for(inner, what, timeout)
                if err is not None:
                    return err
            return None
        server_side = isinstance(exc, TimeoutError | MCPError | ValidationError | RuntimeError | ConnectionError
                                 | OSError | anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream)  # fmt: skip
        if not server_side:
            return None
        if self.failure is None and self.process is not None:
            # A dead server closes its stdout a moment before the exit is seen: give it that moment.
            closed = isinstance(exc, MCPError) and exc.code == types.CONNECTION_CLOSED
            code = await self.process.wait(1.0 if closed else 0.05)
            if code is not None:
                self.fail("crashed", f"the server {_exit_text(code)} during {what}")
        if self.failure is not None:
            return MCPServerError(self.failure.kind, self.failure.message, self.tail())
        if isinstance(exc, TimeoutError) or (isinstance(exc, MCPError) and exc.code == types.REQUEST_TIMEOUT):
            return MCPServerError("timeout", f"{what}: no answer within {timeout:g}s", self.tail())
        if isinstance(exc, MCPError) and exc.code == types.CONNECTION_CLOSED:
            return MCPServerError("crashed", f"the server closed the connection during {what}", self.tail())
        if isinstance(exc, MCPError):
            return MCPServerError("request_failed", f"{what}: {exc.message} (code {exc.code})", self.tail())
        if isinstance(exc, ValidationError | RuntimeError):
            return MCPServerError("protocol_error", f"{what}: invalid answer: {exc}"[:800], self.tail())
        return MCPServerError("crashed", f"{what}: connection lost: {exc!r}", self.tail())

    @contextlib.asynccontextmanager
    async def guard(self, what: str, timeout: float) -> AsyncIterator[None]:
        """Run a step against the server: time-limited, cancelled when the transport fails, and with
        every server-side exception turned into an `MCPServerError`."""
        if self.failure is not None:
            raise MCPServerError(self.failure.kind, self.failure.message, self.tail())
        scope = anyio.CancelScope()
        self.guards.add(scope)
        try:
            with scope, anyio.fail_after(timeout):
                yield
        except Exception as e:
            err = await self.error_for(e, what, timeout)
            if err is None:
                raise
            raise err from e
        finally:
            self.guards.discard(scope)
        if scope.cancelled_caught:  # the transport failed under us
            assert self.failure is not None
            raise MCPServerError(self.failure.kind, self.failure.message, self.tail())


@contextlib.asynccontextmanager
async def _pumping(
    tasks: tuple[Callable[[], Awaitable[None]], ...], streams: tuple[Any, ...]
) -> AsyncIterator[None]:
    """Run the tasks that move messages while the body runs; on leaving, cancel them and close the
    streams the session holds (a transport's two ends)."""
    async with anyio.create_task_group() as tg:
        for task in tasks:
            tg.start_soon(task)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
            for stream in streams:
                with contextlib.suppress(Exception):
                    await stream.aclose()


@contextlib.asynccontextmanager
async def _stdio_transport(process: SandboxedProcess, watch: _Watch) -> AsyncIterator[tuple[Any, Any]]:
    """The session's two streams over the server's stdin/stdout (newline-delimited JSON-RPC)."""
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](16)

    async def reader() -> None:
        async with read_send:
            with contextlib.suppress(Exception):
                while line := await process.stdout.readline():
                    text = line.decode("utf-8", errors="replace").strip()
                    if not text:
                        continue
                    try:
                        message = types.jsonrpc_message_adapter.validate_json(text, by_name=False)
                    except ValueError:
                        watch.fail("protocol_error", f"the server wrote non-JSON-RPC output: {text[:200]!r}")
                        return
                    await read_send.send(SessionMessage(message))

    async def writer() -> None:
        async with write_recv:
            try:
                async for item in write_recv:
                    data = item.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    process.stdin.write(data.encode())
                    await process.stdin.drain()
            except Exception:  # the server closed its stdin (it is dying): end the session's reads too
                with contextlib.suppress(Exception):
                    await read_send.aclose()

    async def exit_watch() -> None:
        code = await process.wait()
        await anyio.sleep(0.05)  # let the reader report what the server printed before it died
        assert code is not None
        watch.fail("crashed", f"the server {_exit_text(code)}")

    async with _pumping((reader, writer, exit_watch), (read_recv, write_send)):
        yield read_recv, write_send


def _valid_tool(tool: Any, version: str | None) -> bool:
    """Whether one tool of a tools/list answer passes the negotiated protocol's result schema."""
    try:
        validate_server_result("tools/list", version or DEFAULT_VERSION, {"tools": [tool]})
    except KeyError:  # no result schema for this version: the SDK does not check it either
        return True
    except ValueError:  # pydantic's ValidationError (or a version the SDK does not know)
        return False
    return True


@contextlib.asynccontextmanager
async def _screened(streams: tuple[Any, Any], watch: _Watch) -> AsyncIterator[tuple[Any, Any]]:
    """The session's two streams over a transport's, with tools/list answers screened: a tool the
    protocol's schema refuses is taken out of the answer and kept, as sent, in
    `watch.rejected_tools`. The SDK validates a listing as a whole, so without this one malformed
    tool would cost every tool of the server; with it, it costs only itself, and the caller decides
    what to make of it (the scraper repairs what it can and reports the rest)."""
    read, write = streams
    down_send, down_recv = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    up_send, up_recv = anyio.create_memory_object_stream[SessionMessage](16)
    asked: dict[Any, str] = {}  # request id → method, for the requests whose answers we read

    def screen(item: SessionMessage) -> SessionMessage:
        message = item.message
        method = asked.pop(message.id, None) if isinstance(message, types.JSONRPCResponse) else None
        if method == "initialize" and isinstance(message.result.get("protocolVersion"), str):
            watch.protocol_version = message.result["protocolVersion"]
        tools = message.result.get("tools") if method == "tools/list" else None
        if not isinstance(tools, list):
            return item
        kept = [t for t in tools if _valid_tool(t, watch.protocol_version)]
        if len(kept) == len(tools):
            return item
        watch.rejected_tools += [t for t in tools if not any(t is k for k in kept)]
        answer = types.JSONRPCResponse(
            jsonrpc=message.jsonrpc, id=message.id, result={**message.result, "tools": kept}
        )
        return dataclasses.replace(item, message=answer)

    async def down() -> None:
        async with down_send:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                async for item in read:
                    await down_send.send(screen(item) if isinstance(item, SessionMessage) else item)

    async def up() -> None:
        async with up_recv:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                async for item in up_recv:
                    message = item.message
                    if isinstance(message, types.JSONRPCRequest) and message.method in (
                        "initialize",
                        "tools/list",
                    ):
                        asked[message.id] = message.method
                    await write.send(item)

    async with _pumping((down, up), (down_recv, up_send)):
        yield down_recv, up_send


@dataclass
class Connection:
    """An initialised MCP session with a real server (see module doc)."""

    session: ClientSession
    """The `mcp` SDK session; its requests time out after `request_timeout` too."""
    init: types.InitializeResult
    """The server's answer to `initialize`: protocol version, capabilities, server info, instructions."""
    spec: ServerSpec
    installed: InstalledServer | None
    """The package and its metadata (None for an http server)."""
    process: SandboxedProcess | None
    """The sandboxed server process (None for an http server)."""
    request_timeout: float
    _watch: _Watch

    @property
    def server_info(self) -> types.Implementation:
        return self.init.server_info

    @property
    def capabilities(self) -> types.ServerCapabilities:
        return self.init.capabilities

    @property
    def rejected_tools(self) -> list[Any]:
        """Tools the server listed that the protocol's schema refuses, as sent (raw JSON values)."""
        return list(self._watch.rejected_tools)

    def stderr_tail(self) -> str:
        return self._watch.tail()

    async def request(self, what: str, call: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run one SDK call under the request time-out and the error mapping."""
        async with self._watch.guard(what, timeout or self.request_timeout):
            return await call()

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None,
                        timeout: float | None = None) -> types.CallToolResult:  # fmt: skip
        """Call a tool; a tool-level error comes back as a result with `is_error`, not an exception."""
        limit = timeout or self.request_timeout
        return await self.request(
            f"tools/call {name}",
            lambda: self.session.call_tool(name, arguments, read_timeout_seconds=limit),
            limit,
        )

    async def _all_pages(self, method: str, fetch: Callable[[types.PaginatedRequestParams | None], Awaitable[Any]],
                         items: str) -> list[Any]:  # fmt: skip
        out: list[Any] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
            page = await self.request(method, lambda p=params: fetch(p))
            out += getattr(page, items)
            cursor = page.next_cursor
            if cursor is None:
                return out
            if cursor in seen:
                raise MCPServerError("protocol_error", f"{method}: the server repeated cursor {cursor!r}",
                                     self.stderr_tail())  # fmt: skip
            seen.add(cursor)
        raise MCPServerError("protocol_error", f"{method}: more than {MAX_PAGES} pages", self.stderr_tail())

    async def list_tools(self) -> list[types.Tool]:
        return await self._all_pages("tools/list", lambda p: self.session.list_tools(params=p), "tools")

    async def list_resources(self) -> list[types.Resource]:
        return await self._all_pages(
            "resources/list", lambda p: self.session.list_resources(params=p), "resources"
        )

    async def list_resource_templates(self) -> list[types.ResourceTemplate]:
        return await self._all_pages("resources/templates/list",
                                     lambda p: self.session.list_resource_templates(params=p), "resource_templates")  # fmt: skip

    async def list_prompts(self) -> list[types.Prompt]:
        return await self._all_pages("prompts/list", lambda p: self.session.list_prompts(params=p), "prompts")


def _single(group: BaseExceptionGroup) -> BaseException:
    """The one leaf exception of a task-group error, the group itself if it holds several."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for inner in e.exceptions:
                walk(inner)
        else:
            leaves.append(e)

    walk(group)
    server = [e for e in leaves if isinstance(e, MCPServerError)]
    if server:
        return server[0]
    return leaves[0] if len(leaves) == 1 else group


def sandbox_policy(spec: ServerSpec, policy: SandboxPolicy | None = None) -> SandboxPolicy:
    """`policy` (default limits if None) with the spec's environment and network need applied."""
    policy = policy or SandboxPolicy()
    return policy.model_copy(
        update={"env": {**policy.env, **spec.env}, "network": policy.network or spec.network}
    )


@contextlib.asynccontextmanager
async def connect(
    spec: ServerSpec | str,
    *,
    timeout: float = 30.0,
    request_timeout: float | None = None,
    install_timeout: float = 600.0,
    policy: SandboxPolicy | None = None,
    wrap: Callable[[InstalledServer], tuple[str, ...]] | None = None,
    prefork: bool = False,
) -> AsyncIterator[Connection]:
    """Start (or reach) the server of `spec`, initialise a session and yield it (module doc).
    `wrap` turns the installed server into the command line actually started (e.g. `docker run -i
    ... node server.js`, to run an untrusted server inside a container). `prefork` forks a Python
    server from a fork server instead of spawning it (`agentgym.mcp.prefork`; never with `wrap`)."""
    if isinstance(spec, str):
        try:
            spec = ServerSpec.parse(spec)
        except ValueError as e:
            raise MCPServerError("start_failed", f"bad server spec: {e}") from None
    request_timeout = request_timeout or timeout
    installed = None if spec.kind == "http" else await install(spec, timeout=install_timeout)
    watch = _Watch()
    try:
        async with contextlib.AsyncExitStack() as stack:
            # Contexts holding task groups are entered outside `guard` (a cancel scope must not close
            # before the scopes opened inside it); only the awaits that can hang are guarded.
            if installed is not None:
                async with watch.guard("starting the server", timeout):
                    argv = wrap(installed) if wrap is not None else installed.argv
                    launcher = prefork_start if prefork and wrap is None else start
                    watch.process = await launcher(argv, sandbox_policy(spec, policy))
                stack.push_async_callback(watch.process.close)
                streams = await stack.enter_async_context(_stdio_transport(watch.process, watch))
            else:
                assert spec.url is not None
                streams = await stack.enter_async_context(streamable_http_client(spec.url))
            streams = await stack.enter_async_context(_screened(streams, watch))
            session = await stack.enter_async_context(
                ClientSession(
                    *streams,
                    # initialize has no per-call time-out: the session's default must let it have `timeout`
                    read_timeout_seconds=max(timeout, request_timeout),
                    client_info=CLIENT_INFO,
                    message_handler=watch.on_message,
                )
            )
            async with watch.guard("initialize", timeout):
                init = await session.initialize()
            watch.initialised = True
            conn = Connection(session, init, spec if installed is None else installed.spec, installed, watch.process,
                              request_timeout, watch)  # fmt: skip
            try:
                yield conn
            except MCPError as e:  # an SDK error out of the caller's block
                err = await watch.error_for(e, "a request", request_timeout)
                raise (err or e) from e
    except BaseExceptionGroup as group:
        # Task groups (ours, the SDK session's) wrap what crosses them; the caller gets the one error.
        leaf = _single(group)
        raise (watch.transport_error(leaf) or leaf) from None
