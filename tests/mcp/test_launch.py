"""Server specs as people write them, licences from package metadata, installing into the cache."""

from __future__ import annotations

import email
import json
import sys
import time

import pytest
from local_servers import SERVERS

from agentgym.mcp import MCPServerError, ServerSpec, install
from agentgym.mcp.launch import (
    install_dir,
    license_of_expression,
    license_of_readme,
    license_of_text,
    npm_license,
    pypi_license,
)
from agentgym.repository.licenses import PROPRIETARY, UNKNOWN


@pytest.mark.parametrize(
    "text, fields",
    [
        ("npm:@modelcontextprotocol/server-memory", {"kind": "npm", "package": "@modelcontextprotocol/server-memory"}),
        ("npm:@scope/pkg@1.2.3 --root /x", {"kind": "npm", "package": "@scope/pkg", "version": "1.2.3",
                                             "args": ("--root", "/x")}),
        ("npm:pkg#other-bin", {"kind": "npm", "package": "pkg", "bin": "other-bin"}),
        ("pypi:mcp-server-time==2025.1.1", {"kind": "pypi", "package": "mcp-server-time", "version": "2025.1.1"}),
        ("pypi:pkg[extra]", {"kind": "pypi", "package": "pkg[extra]"}),
        ("npx -y @scope/server {workdir}", {"kind": "npm", "package": "@scope/server", "args": ("{workdir}",)}),
        ("npx --yes -p @scope/tools server-a --flag", {"kind": "npm", "package": "@scope/tools", "bin": "server-a",
                                                        "args": ("--flag",)}),
        ("uvx mcp-server-git --repository .", {"kind": "pypi", "package": "mcp-server-git",
                                               "args": ("--repository", ".")}),
        ("uvx mcp-server-time@2025.1.1", {"kind": "pypi", "package": "mcp-server-time", "version": "2025.1.1"}),
        ("uvx --from mcp-tools==1.0 tool-x", {"kind": "pypi", "package": "mcp-tools", "version": "1.0", "bin": "tool-x"}),
        ("python server.py --port 3", {"kind": "command", "command": "python", "args": ("server.py", "--port", "3")}),
        ("/opt/servers/run 'a b'", {"kind": "command", "command": "/opt/servers/run", "args": ("a b",)}),
        ("https://example.org/mcp", {"kind": "http", "url": "https://example.org/mcp"}),
    ],
)  # fmt: skip
def test_parse_reads_each_form(text, fields):
    spec = ServerSpec.parse(text)
    assert {k: getattr(spec, k) for k in fields} == fields


@pytest.mark.parametrize(
    "text",
    ["npm:@scope/pkg@1.2.3 --root /x", "pypi:mcp-server-time==2025.1.1", "npm:pkg#bin", "python 'a b.py' x",
     "http://127.0.0.1:9/mcp"],
)  # fmt: skip
def test_str_writes_back_what_parse_reads(text):
    spec = ServerSpec.parse(text)
    assert ServerSpec.parse(str(spec)) == spec


@pytest.mark.parametrize(
    "text, error",
    [
        ("", "empty"),
        ("npm:", "not a valid npm package name"),
        ("npm:no/such/name", "not a valid npm package name"),
        ("pypi:-bad-", "not a valid pypi package name"),
        ("npx --registry x pkg", "unsupported option"),
        ("npx -y", "names no package"),
        ("python 'unclosed", "cannot split"),
    ],
)
def test_parse_refuses_what_it_cannot_read(text, error):
    with pytest.raises(ValueError, match=error):
        ServerSpec.parse(text)


def test_fields_set_env_and_network():
    spec = ServerSpec.parse("pypi:mcp-server-time", env={"TZ": "UTC"}, network=True)
    assert spec.env == {"TZ": "UTC"} and spec.network
    with pytest.raises(ValueError, match="no arguments or environment"):
        ServerSpec.parse("http://127.0.0.1:1/mcp", env={"A": "b"})


def test_install_dir_is_per_package_and_version(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path))
    a = install_dir(ServerSpec.parse("npm:@scope/pkg"))
    b = install_dir(ServerSpec.parse("npm:@scope/pkg@2.0.0"))
    assert a == tmp_path / "mcp-servers" / "npm" / "scope__pkg"
    assert b.name == "scope__pkg@2.0.0" and a != b


async def test_a_script_path_gets_its_interpreter():
    installed = await install(ServerSpec.parse(f"{SERVERS / 'toy_server.py'} --x"))
    assert installed.argv == (sys.executable, str(SERVERS / "toy_server.py"), "--x")
    assert installed.license is None and not installed.permissive


# ---- licences -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, spdx",
    [("MIT", "MIT"), ("(MIT OR GPL-3.0-only)", "MIT"), ("GPL-3.0-only OR MIT", "MIT"), ("Apache 2.0", "Apache-2.0"),
     ("GPL-3.0", "GPL-3.0-only"), ("UNLICENSED", PROPRIETARY), ("something odd", UNKNOWN)],
)  # fmt: skip
def test_license_of_expression(raw, spdx):
    assert license_of_expression(raw) == spdx


def test_license_of_text_needs_exactly_one_licence():
    mit = "MIT License\n\nCopyright (c) 2024\n\nPermission is hereby granted, free of charge, to any person"
    assert license_of_text(mit) == "MIT"
    assert license_of_text("Apache License, Version 2.0, January 2004") == "Apache-2.0"
    assert license_of_text("GNU AFFERO GENERAL PUBLIC LICENSE Version 3") == "AGPL-3.0-only"
    assert license_of_text(mit + "\n\nApache License, Version 2.0") == UNKNOWN  # two licences are not one
    assert license_of_text("All code here is mine.") == UNKNOWN


def test_npm_license_reads_the_field_and_the_file_it_points_to(tmp_path):
    assert npm_license({"license": "ISC"}) == ("ISC", "ISC")
    assert npm_license({"license": {"type": "MIT"}}) == ("MIT", "MIT")
    assert npm_license({"licenses": [{"type": "BSD-3-Clause"}]}) == ("BSD-3-Clause", "BSD-3-Clause")
    assert npm_license({}) == (None, None)
    (tmp_path / "LICENSE.txt").write_text("Apache License, Version 2.0")
    assert npm_license({"license": "SEE LICENSE IN LICENSE.txt"}, tmp_path)[0] == "Apache-2.0"


def test_npm_license_falls_back_to_the_readme_only_when_the_file_is_missing(tmp_path):
    manifest = {"license": "SEE LICENSE IN LICENSE"}
    assert npm_license(manifest, tmp_path) == (UNKNOWN, "SEE LICENSE IN LICENSE (file not in the package)")
    (tmp_path / "README.md").write_text(
        "# Server\n\nDoes things.\n\n## License\n\nThis MCP server is licensed under the MIT License. See the "
        "repository.\n\n## Other\n\nApache License, Version 2.0 is mentioned here but not in the section.\n"
    )
    spdx, raw = npm_license(manifest, tmp_path)
    assert spdx == "MIT" and "README: This MCP server is licensed under the MIT License." in raw
    (tmp_path / "LICENSE").write_text("GNU GENERAL PUBLIC LICENSE Version 3")
    assert npm_license(manifest, tmp_path)[0] == "GPL-3.0-only"  # the file, when shipped, decides


@pytest.mark.parametrize(
    "readme, spdx",
    [
        ("## License\n\nMIT\n", "MIT"),
        ("### Licence\n[Apache-2.0](LICENSE)\n", "Apache-2.0"),
        ("# License\n\nReleased under the ISC License.\n# Next\nMIT License", "ISC"),
        ("## License\n\nSee the LICENSE file.\n", None),
        ("## Usage\n\nMIT License is not the licence heading.\n", None),
        ("## License\n\nMIT License or Apache License, Version 2.0, at your option.\n", None),
    ],
)
def test_license_of_readme_reads_only_its_license_section(readme, spdx):
    found = license_of_readme(readme)
    assert (found[0] if found else None) == spdx


def test_pypi_license_prefers_the_expression_then_field_then_classifiers():
    def meta(*lines: str):
        return email.message_from_string("\n".join(["Metadata-Version: 2.4", "Name: x", *lines]) + "\n\n")

    assert pypi_license(meta("License-Expression: MIT", "License: GPL-3.0")) == ("MIT", "MIT")
    assert pypi_license(meta("License: BSD-3-Clause")) == ("BSD-3-Clause", "BSD-3-Clause")
    spdx, raw = pypi_license(meta("Classifier: License :: OSI Approved :: Apache Software License"))
    assert (spdx, raw) == ("Apache-2.0", "License :: OSI Approved :: Apache Software License")
    assert pypi_license(meta()) == (None, None)


# ---- installing -----------------------------------------------------------------------------------


@pytest.mark.network
async def test_a_package_npm_does_not_have_is_install_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTGYM_CACHE", str(tmp_path))
    spec = ServerSpec.parse("npm:@agentgym-tests/no-such-package-4f1c9e")
    t0 = time.monotonic()
    with pytest.raises(MCPServerError) as info:
        await install(spec, timeout=120)
    assert info.value.kind == "install_failed"
    assert "404" in info.value.message or "not found" in info.value.message.lower()
    assert time.monotonic() - t0 < 120
    assert not install_dir(spec).exists()  # a failed install leaves nothing that passes for one


@pytest.mark.network
def test_real_installs_record_version_licence_and_command(real_servers):
    memory, time_ = real_servers["memory"], real_servers["time"]
    manifest = json.loads(
        (install_dir(memory.spec) / "node_modules" / memory.name / "package.json").read_text()
    )
    assert memory.version == manifest["version"] and memory.spec.version == memory.version
    assert memory.argv[1].endswith(".js") and memory.permissive
    assert time_.license == "MIT" and time_.argv[0].endswith("/bin/mcp-server-time")
    assert time_.description and "time" in time_.description.lower()
