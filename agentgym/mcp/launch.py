"""What to start for a real MCP server (`ServerSpec`), and the installed package that starts it.

A `ServerSpec` names a server the way people write one: `npm:<package>[@version]`,
`pypi:<package>[==version]` (either may end in `#<bin>` to pick one of several executables), a
command line — `npx -y pkg` and `uvx pkg` are read as the npm and PyPI forms, anything else
(`python server.py`, `/path/to/server`) runs as written — or an `http(s)://…` URL of a
streamable-HTTP endpoint. Words after the package are the server's arguments. `ServerSpec.parse`
reads that string and `str(spec)` writes it back; `env` and `network` are set as fields. In
arguments and `env` values, `{workdir}` and `{home}` stand for the sandbox's private directories
(`agentgym.mcp.sandbox`), so a filesystem server can be given a folder of its own.

`install(spec)` turns a package spec into an `InstalledServer`: the package installed once into
`cache_dir()/mcp-servers/npm/<name>` (`npm install --prefix`, lifecycle scripts off) or
`cache_dir()/mcp-servers/pypi/<name>` (a venv; binary wheels only, so installing runs no code from
the package), the command that starts it (package.json `bin`, console scripts), and the name,
version, description and licence from the package metadata (licence as an SPDX id via
`repository.licenses`; never guessed from anything but the metadata, the licence file it points to
and, where a package.json says `SEE LICENSE IN <file>` but the package does not ship that file,
the 'License' section of the README it ships). A finished install
leaves a marker file and is reused without the network; concurrent installs of one package wait on
a file lock. Every failure is `MCPServerError("install_failed")`. Nothing here starts a server:
that is `agentgym.mcp.client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import fcntl
import json
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import AsyncIterator
from email.message import Message
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from agentgym.mcp.errors import MCPServerError
from agentgym.mcp.sandbox import kill_process_group
from agentgym.paths import cache_dir
from agentgym.repository.licenses import PROPRIETARY, UNKNOWN, is_permissive, normalize_license
from agentgym.spec.base import Record

SpecKind = Literal["npm", "pypi", "command", "http"]
MARKER = ".agentgym-install.json"
"""Written last by a successful install; its presence means the install is complete."""
PIP_ARGS = ("--only-binary", ":all:", "--disable-pip-version-check", "--no-input", "--quiet")
NPM_ARGS = ("--no-audit", "--no-fund", "--ignore-scripts", "--no-update-notifier", "--loglevel=error")

_NPM_NAME = re.compile(r"^(?:@[a-z0-9][\w.~-]*/)?[a-z0-9][\w.~-]*$", re.IGNORECASE)
_PYPI_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9_,.\s-]+\])?$")


class ServerSpec(Record):
    """How to start one MCP server (see the module doc for the string form)."""

    kind: SpecKind
    """`npm` or `pypi` package, a `command` line, or an `http` streamable-HTTP URL."""
    package: str | None = None
    """Package name (npm or PyPI; PyPI extras included)."""
    version: str | None = None
    """Exact version to install; None installs the latest once and then reuses it."""
    bin: str | None = None
    """Which of the package's executables to run, when it has several."""
    command: str | None = None
    """Program of a `command` spec (a name on PATH or a path; `.py`/`.js` scripts get their interpreter)."""
    args: tuple[str, ...] = ()
    """Arguments for the server; `{workdir}` and `{home}` are filled in by the sandbox."""
    url: str | None = None
    """Endpoint of an `http` spec."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment for the server (placeholders allowed); nothing else is inherited."""
    network: bool = False
    """The server needs the network; otherwise it runs without one where the sandbox can do that."""

    @model_validator(mode="after")
    def _consistent(self) -> ServerSpec:
        if self.kind in ("npm", "pypi"):
            pattern = _NPM_NAME if self.kind == "npm" else _PYPI_NAME
            if not self.package or not pattern.match(self.package):
                raise ValueError(f"not a valid {self.kind} package name: {self.package!r}")
        elif self.kind == "command" and not self.command:
            raise ValueError("a command spec needs a command")
        elif self.kind == "http":
            if not self.url or not re.match(r"(?i)^https?://\S+$", self.url):
                raise ValueError(f"not an http(s) URL: {self.url!r}")
            if self.args or self.env:
                raise ValueError("an http spec takes no arguments or environment")
        return self

    @classmethod
    def parse(cls, text: str, **fields: Any) -> ServerSpec:
        """Read a spec string (module doc); `fields` (env, network, bin, …) are set on the result."""
        text = text.strip()
        if re.match(r"(?i)^https?://", text):
            return cls(kind="http", url=text, **fields)
        try:
            argv = shlex.split(text)
        except ValueError as e:
            raise ValueError(f"cannot split server spec {text!r}: {e}") from None
        if not argv:
            raise ValueError("empty server spec")
        head, rest = argv[0], tuple(argv[1:])
        if head.startswith("npm:"):
            return cls._package("npm", head[4:], rest, fields)
        if head.startswith("pypi:"):
            return cls._package("pypi", head[5:], rest, fields)
        program = Path(head).name
        if program == "npx":
            return cls._from_runner(
                "npm", rest, fields, {"-y", "--yes", "-q", "--quiet"}, ("-p", "--package")
            )
        if program == "uvx":
            return cls._from_runner("pypi", rest, fields, {"-q", "--quiet"}, ("--from",))
        return cls(kind="command", command=head, args=rest, **fields)

    @classmethod
    def _package(cls, kind: SpecKind, ref: str, args: tuple[str, ...], fields: dict[str, Any]) -> ServerSpec:
        ref, _, bin_ = ref.partition("#")
        if kind == "npm":
            at = ref.rfind("@")
            name, version = (ref[:at], ref[at + 1 :]) if at > 0 else (ref, "")
        else:
            name, _, version = ref.partition("==")
        return cls(kind=kind, package=name, version=version or None, bin=bin_ or fields.pop("bin", None),
                   args=args, **fields)  # fmt: skip

    @classmethod
    def _from_runner(
        cls,
        kind: SpecKind,
        argv: tuple[str, ...],
        fields: dict[str, Any],
        flags: set[str],
        package_options: tuple[str, ...],
    ) -> ServerSpec:
        """`npx [-y] [-p pkg] name args…` / `uvx [--from pkg] name args…` as a package spec."""
        package: str | None = None
        i = 0
        while i < len(argv) and argv[i].startswith("-"):
            opt, _, value = argv[i].partition("=")
            if opt in package_options:
                if not value:
                    i += 1
                    value = argv[i] if i < len(argv) else ""
                package = value
            elif argv[i] not in flags:
                raise ValueError(f"unsupported option {argv[i]!r} in a {kind} runner command line")
            i += 1
        if i >= len(argv):
            raise ValueError("the runner command line names no package")
        name, args = argv[i], argv[i + 1 :]
        if kind == "pypi" and "@" in name and "==" not in name:
            name = name.replace("@", "==", 1)  # uvx accepts both tool@1.0 and tool==1.0
        if package is None:
            return cls._package(kind, name, args, fields)
        if kind == "pypi" and "@" in package and "==" not in package:
            package = package.replace("@", "==", 1)
        return cls._package(kind, f"{package}#{name}", args, fields)

    def __str__(self) -> str:
        if self.kind == "http":
            return self.url or ""
        if self.kind == "command":
            return shlex.join([self.command or "", *self.args])
        sep = "@" if self.kind == "npm" else "=="
        ref = f"{self.kind}:{self.package}" + (f"{sep}{self.version}" if self.version else "")
        ref += f"#{self.bin}" if self.bin else ""
        return shlex.join([ref, *self.args])

    @property
    def requirement(self) -> str:
        """The package as its installer takes it: `pkg@1.0` (npm), `pkg==1.0` (pip)."""
        sep = "@" if self.kind == "npm" else "=="
        return f"{self.package}{sep}{self.version}" if self.version else str(self.package)

    @property
    def distribution(self) -> str:
        """The package name without PyPI extras."""
        return (self.package or "").split("[", 1)[0]

    def pinned(self, version: str | None) -> ServerSpec:
        """This spec with its version fixed."""
        return self.model_copy(update={"version": version})


class InstalledServer(Record):
    """A server ready to start: its command line and what its package metadata says."""

    spec: ServerSpec
    """The spec, with the version that was actually installed."""
    argv: tuple[str, ...]
    """Command line that starts it (placeholders not yet filled)."""
    name: str
    """Package name (or program name for a command spec)."""
    version: str | None = None
    """Installed package version."""
    description: str | None = None
    """The package's one-line description (package.json `description`, wheel `Summary`)."""
    license: str | None = None
    """SPDX id (or `LicenseRef-*`) from the package metadata; None when it says nothing."""
    license_raw: str | None = None
    """What the metadata said, for the record."""
    root: str | None = None
    """Install folder in the cache."""

    @property
    def permissive(self) -> bool:
        return is_permissive(self.license)


# ---- licences ----------------------------------------------------------------------------------

_LICENSE_TEXTS = (
    (re.compile(r"\bMIT License\b|Permission is hereby granted, free of charge", re.I), "MIT"),
    (re.compile(r"Apache License,?\s+Version 2\.0", re.I), "Apache-2.0"),
    (re.compile(r"\bISC License\b"), "ISC"),
    (re.compile(r"BSD 3-Clause|Neither the name of", re.I), "BSD-3-Clause"),
    (re.compile(r"BSD 2-Clause", re.I), "BSD-2-Clause"),
    (re.compile(r"GNU AFFERO GENERAL PUBLIC LICENSE\s+Version 3", re.I), "AGPL-3.0-only"),
    (re.compile(r"GNU LESSER GENERAL PUBLIC LICENSE\s+Version 3", re.I), "LGPL-3.0-only"),
    (re.compile(r"(?<!LESSER )(?<!AFFERO )GNU GENERAL PUBLIC LICENSE\s+Version 3", re.I), "GPL-3.0-only"),
    (re.compile(r"(?<!LESSER )GNU GENERAL PUBLIC LICENSE\s+Version 2", re.I), "GPL-2.0-only"),
    (re.compile(r"Mozilla Public License,?\s+(?:Version|v\.?)\s*2\.0", re.I), "MPL-2.0"),
    (re.compile(r"free and unencumbered software released into the public domain", re.I), "Unlicense"),
)


def license_of_text(text: str) -> str:
    """The SPDX id of a licence file, from its opening; `LicenseRef-Unknown` unless exactly one
    known licence is recognised there (a file stating two licences is not one licence)."""
    head = " ".join(text[:2000].split())
    found = {spdx for pattern, spdx in _LICENSE_TEXTS if pattern.search(head)}
    return found.pop() if len(found) == 1 else UNKNOWN


def license_of_expression(raw: str) -> str | None:
    """An SPDX licence field as one id: `MIT`, `(MIT OR Apache-2.0)` → the first permissive choice
    (the licensee may pick), otherwise `normalize_license` of the whole field."""
    text = raw.strip().strip("()").strip()
    if re.search(r"\s+OR\s+", text):
        options = [normalize_license(p.strip("() ")) for p in re.split(r"\s+OR\s+", text)]
        return next((o for o in options if is_permissive(o)), options[0])
    if text.upper() == "UNLICENSED":  # npm's word for "not licensed for use by others"
        return PROPRIETARY
    return normalize_license(text)


def npm_license(manifest: dict[str, Any], package_dir: Path | None = None) -> tuple[str | None, str | None]:
    """(SPDX id, raw field) from a package.json; `SEE LICENSE IN <file>` reads that file when the
    package ships it."""
    raw: Any = manifest.get("license")
    if isinstance(raw, dict):
        raw = raw.get("type")
    if raw is None and isinstance(manifest.get("licenses"), list) and manifest["licenses"]:
        first = manifest["licenses"][0]  # the deprecated array form
        raw = first.get("type") if isinstance(first, dict) else first
    if not isinstance(raw, str) or not raw.strip():
        return None, None
    see = re.match(r"(?i)^SEE LICEN[SC]E IN\s+(\S+)", raw.strip())
    if see:
        path = (package_dir / see.group(1)) if package_dir is not None else None
        if path is not None and path.is_file():
            return license_of_text(path.read_text(errors="replace")), raw
        # The file it points to is not published (a monorepo keeps it at the root): the README the
        # package ships may still state its licence in a section of its own.
        stated = _readme_license(package_dir)
        if stated is not None:
            return stated[0], f"{raw} (file not in the package); README: {stated[1]}"
        return UNKNOWN, f"{raw} (file not in the package)"
    return license_of_expression(raw), raw


_LICENSE_HEADING = re.compile(r"(?im)^#{1,6}[ \t]*licen[sc]e[ \t]*#*[ \t]*$")


def license_of_readme(text: str) -> tuple[str, str] | None:
    """(SPDX id, the statement) from a README's 'License' section: its text up to the next heading,
    read as a licence expression when it is one short line ('MIT', 'Apache-2.0') and as licence text
    otherwise ('licensed under the MIT License'); None without such a section or a recognised licence."""
    heading = _LICENSE_HEADING.search(text)
    if heading is None:
        return None
    body = re.split(r"(?m)^#{1,6}\s", text[heading.end() :], maxsplit=1)[0]
    body = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", body)  # markdown links: their text
    statement = " ".join(body.split())
    if not statement:
        return None
    short = len(statement) <= 40 and "\n" not in body.strip()
    spdx = license_of_expression(statement) if short else None
    if spdx in (None, UNKNOWN):
        spdx = license_of_text(statement)
    if spdx in (None, UNKNOWN):
        return None
    first = re.split(r"(?<=\.)\s", statement, maxsplit=1)[0]
    return spdx, first[:200]


def _readme_license(package_dir: Path | None) -> tuple[str, str] | None:
    if package_dir is None:
        return None
    for path in sorted(package_dir.glob("[Rr][Ee][Aa][Dd][Mm][Ee]*")):
        if path.is_file():
            return license_of_readme(path.read_text(errors="replace"))
    return None


def pypi_license(meta: Message) -> tuple[str | None, str | None]:
    """(SPDX id, raw value) from a wheel's METADATA: `License-Expression` (PEP 639), else a short
    `License` field, else the `License ::` classifiers; a `License` field holding the whole licence
    text is read as a licence file."""
    expression = meta.get("License-Expression")
    if expression and expression.strip():
        return license_of_expression(expression), expression.strip()
    field = (meta.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= 100:
        spdx = license_of_expression(field)
        if spdx not in (None, UNKNOWN):
            return spdx, field
    for classifier in meta.get_all("Classifier") or ():
        if classifier.startswith("License ::") and classifier.strip() != "License :: OSI Approved":
            name = classifier.rsplit("::", 1)[1].strip()
            spdx = normalize_license(name)
            if spdx not in (None, UNKNOWN):
                return spdx, classifier
    if field:
        return license_of_text(field) if len(field) > 100 else license_of_expression(field), field[:200]
    return None, None


# ---- installing --------------------------------------------------------------------------------


def servers_cache() -> Path:
    return cache_dir() / "mcp-servers"


def install_dir(spec: ServerSpec) -> Path:
    """`cache_dir()/mcp-servers/<npm|pypi>/<name>[@version]`."""
    name = (spec.package or "").lstrip("@").replace("/", "__").lower()
    name = re.sub(r"[^a-z0-9._\[\],=-]+", "_", name)
    return servers_cache() / spec.kind / (f"{name}@{spec.version}" if spec.version else name)


async def install(spec: ServerSpec, *, timeout: float = 600.0) -> InstalledServer:
    """The server of `spec`, installed into the cache if it is not there yet (module doc)."""
    if spec.kind == "http":
        raise ValueError("an http server is not installed; connect to it")
    if spec.kind == "command":
        return _command_server(spec)
    root = install_dir(spec)
    if not (root / MARKER).is_file():
        root.parent.mkdir(parents=True, exist_ok=True)
        async with _file_lock(root.with_name(root.name + ".lock"), timeout):
            if not (root / MARKER).is_file():
                shutil.rmtree(root, ignore_errors=True)  # a half-finished earlier attempt
                try:
                    await (_npm_install if spec.kind == "npm" else _pypi_install)(spec, root, timeout)
                except BaseException:
                    shutil.rmtree(root, ignore_errors=True)
                    raise
                info = {"spec": str(spec), "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                (root / MARKER).write_text(json.dumps(info) + "\n")
    return (_npm_server if spec.kind == "npm" else _pypi_server)(spec, root)


@contextlib.asynccontextmanager
async def _file_lock(path: Path, timeout: float) -> AsyncIterator[None]:
    """An exclusive flock on `path` (polled, so waiting never blocks the event loop)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MCPServerError(
                        "install_failed", f"timed out waiting for the install lock {path}"
                    ) from None
                await asyncio.sleep(0.2)
        yield
    finally:
        os.close(fd)


async def _run(argv: list[str], timeout: float, what: str) -> str:
    """Run an installer; its output, or `install_failed` with the output's end."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as e:
        raise MCPServerError("install_failed", f"{what}: cannot run {argv[0]}: {e}") from None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException as e:  # time-out or cancellation: never leave an installer running
        kill_process_group(proc.pid)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(proc.wait(), 5)
        if isinstance(e, TimeoutError):
            raise MCPServerError("install_failed", f"{what} did not finish within {timeout:.0f}s") from None
        raise
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        noise = re.compile(
            r"Unknown user config|complete log of this run|you can also install from|tarball, folder"
        )
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not noise.search(ln)]
        errors = [ln for ln in lines if re.search(r"(?i)\berror\b|not found|no matching", ln)] or lines[-3:]
        raise MCPServerError(
            "install_failed", f"{what} failed: " + " | ".join(errors[:3])[:600], text[-2000:]
        )
    return text


async def _npm_install(spec: ServerSpec, root: Path, timeout: float) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise MCPServerError("install_failed", "npm is not on PATH (install Node.js to run npm servers)")
    root.mkdir(parents=True)
    # A manifest of its own, so npm never adopts a package.json in a folder above the cache.
    (root / "package.json").write_text('{"name": "agentgym-mcp-server", "private": true}\n')
    await _run([npm, "install", "--prefix", str(root), *NPM_ARGS, spec.requirement], timeout,
               f"npm install {spec.requirement}")  # fmt: skip


async def _pypi_install(spec: ServerSpec, root: Path, timeout: float) -> None:
    await _run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)],
        timeout,
        f"creating a venv for {spec.package}",
    )
    python = root / "bin" / "python"
    await _run([sys.executable, "-m", "pip", "--python", str(python), "install", *PIP_ARGS, spec.requirement],
               timeout, f"pip install {spec.requirement}")  # fmt: skip


def _pick(executables: dict[str, Any], spec: ServerSpec) -> str:
    """The executable to run: `spec.bin`, else the one named like the package, else the only one."""
    if spec.bin is not None:
        if spec.bin not in executables:
            raise MCPServerError("install_failed", f"{spec.package} has no executable {spec.bin!r} "
                                 f"(it has {sorted(executables) or 'none'})")  # fmt: skip
        return spec.bin
    base = spec.distribution.rsplit("/", 1)[-1].lower()
    for name in executables:
        if name.lower() == base:
            return name
    if len(executables) == 1:
        return next(iter(executables))
    if not executables:
        raise MCPServerError("install_failed", f"{spec.package} installs no executable")
    raise MCPServerError("install_failed", f"{spec.package} has several executables {sorted(executables)}; "
                         "choose one with '#<bin>' or bin:")  # fmt: skip


def _npm_server(spec: ServerSpec, root: Path) -> InstalledServer:
    package_dir = root / "node_modules" / spec.distribution
    try:
        manifest = json.loads((package_dir / "package.json").read_text())
    except (OSError, ValueError) as e:
        raise MCPServerError("install_failed", f"{spec.package}: unreadable package.json ({e})") from None
    bins = manifest.get("bin") or {}
    if isinstance(bins, str):
        bins = {spec.distribution.rsplit("/", 1)[-1]: bins}
    script = package_dir / bins[_pick(bins, spec)]
    node = shutil.which("node")
    if node is None:
        raise MCPServerError("install_failed", "node is not on PATH")
    license, raw = npm_license(manifest, package_dir)
    version = manifest.get("version")
    return InstalledServer(spec=spec.pinned(version), argv=(node, str(script), *spec.args), name=spec.distribution,
                           version=version, description=_one_line(manifest.get("description")), license=license,
                           license_raw=raw, root=str(root))  # fmt: skip


def _one_line(text: object) -> str | None:
    return (" ".join(text.split()) or None) if isinstance(text, str) else None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pypi_server(spec: ServerSpec, root: Path) -> InstalledServer:
    sites = sorted(root.glob("lib/python*/site-packages"))
    want = _canonical(spec.distribution)
    dist = next((d for d in importlib_metadata.distributions(path=[str(s) for s in sites])
                 if _canonical(d.metadata["Name"] or "") == want), None)  # fmt: skip
    if dist is None:
        raise MCPServerError("install_failed", f"{spec.package} is not installed in {root}")
    scripts = {ep.name: ep for ep in dist.entry_points if ep.group == "console_scripts"}
    script = root / "bin" / _pick(scripts, spec)
    meta = email.message_from_string(dist.read_text("METADATA") or "")
    license, raw = pypi_license(meta)
    return InstalledServer(spec=spec.pinned(dist.version), argv=(str(script), *spec.args), name=spec.distribution,
                           version=dist.version, description=_one_line(meta.get("Summary")), license=license,
                           license_raw=raw, root=str(root))  # fmt: skip


_INTERPRETERS = {".py": sys.executable, ".js": "node", ".mjs": "node", ".cjs": "node"}


def _command_server(spec: ServerSpec) -> InstalledServer:
    """A command line runs as written; a script path that is not executable gets its interpreter."""
    program = spec.command or ""
    argv: tuple[str, ...] = (program, *spec.args)
    path = Path(program)
    interpreter = _INTERPRETERS.get(path.suffix)
    if interpreter and path.is_file() and not os.access(path, os.X_OK):
        argv = (shutil.which(interpreter) or interpreter, str(path.resolve()), *spec.args)
    return InstalledServer(spec=spec, argv=argv, name=path.name)
