"""`agentgym tools import-crawl DIR`: a crawl dump in, `tools/crawl/` out.

Runs `agentgym.repository.crawl.import_crawl` over DIR with a progress bar, prints a summary by
category, and writes `domains.jsonl.gz` (through `store.save_domains`), `report.json` and a readable
`REPORT.md` under `<out>/crawl/` (default `tools/crawl/`). A missing or empty DIR is refused with
exit code 2 before anything is written. `render_report_md` is a pure function of the report.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from agentgym.cli.runs import bar_progress, console

_WHY = {
    "invalid": "no usable name (nothing ASCII-alphanumeric to namespace); a schema that no repair makes a "
    "meta-valid Draft 2020-12 object schema; or `arguments_unknown`: a flat crawled entry whose page showed no "
    "parameter (once the page's chrome is removed) and whose description documents none. In this dump 15% of "
    "live tools take no argument but about 60% of flat entries show none, and most of those whose name a live "
    "tool shares have a live namesake that takes arguments: an empty schema would mostly be a wrong one.",
    "boilerplate": "the description tells a model nothing: empty; Smithery page chrome ('Deploy Server … Try in "
    "Playground <tool>', the sign-in banner of a pseudo-tool 'Optional Settings'); a placeholder ('Description "
    "not available'); a list of form field names; the tool name restated; a single word.",
    "duplicate_exact": "same canonical name (case and separators ignored), same repaired schema and same "
    "case-folded description as a better copy: a fork republished unchanged, or one server listing a tool twice.",
    "duplicate_near": "same canonical name and, on another server, word-level description similarity ≥ the "
    "threshold with no product named on one side only and, where both list arguments, at least half of the "
    "argument names shared (a fork with light edits); or the same name twice on one server.",
    "licence_excluded": "the server's licence field does not name a permissive licence (Smithery hosting terms, "
    "GPL/AGPL, unspecified, or text that is not a licence), so its specs may not be redistributed.",
}
_REPAIRS = {
    "flat_parameters": "a crawled `parameters: [{name, required, type}]` list turned into an object schema",
    "scrape_header": "the tool's own name, scraped from the page header as a parameter, removed",
    "scrape_prose": "the description's opening words, scraped as optional parameters, removed",
    "scrape_array": "'Add'/'Item' buttons removed; the parameter before them typed `array`",
    "scrape_sibling": "names of the server's other tools, scraped as parameters, removed",
    "scrape_boolean": "'True'/'False' radio labels removed; the parameter before them typed `boolean`",
    "dialect": "`$schema` dropped after converting draft-specific keywords: every schema reads as 2020-12",
    "missing_properties": "`properties: {}` added to an object schema that had none",
    "missing_type": "`type: object` added at the top level",
    "nested_schema": "a whole schema nested inside `properties` lifted to the top",
    "loose_type": "a loose type made explicit ('str' → string, 'any' → no constraint, ['object','null'] → object)",
    "unknown_type": "an unknown type name made `string`",
    "tuple_items": "draft-07 tuple `items: [...]` → `prefixItems`",
    "draft4_exclusive": "draft-04 boolean `exclusiveMinimum` → the numeric form",
    "required_absent": "`required` entries naming absent properties (or repeated) removed",
    "bad_required": "a `required` that is not a list removed",
    "property_required_flag": "draft-03 `required: true` on a property moved to the parent's `required`",
    "property_shorthand": "a property given as a bare type name ('string') made a schema",
    "bad_property": "a property schema that is not an object replaced by `{}`",
    "bad_properties": "a `properties` that is not an object removed",
    "dependencies": "draft-07 `dependencies` split into `dependentRequired` / `dependentSchemas`",
    "duplicate_parameter": "a parameter listed twice kept once",
    "docstring_args": "no parameter on the page: parameters read from the description's `Args:` section",
    "json_text": "a schema given as JSON text parsed",
}


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    """A markdown table; columns whose cells are all numbers are right-aligned."""
    numeric = [all(isinstance(r[i], int | float) for r in rows) for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += [
        "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows
    ]
    return "\n".join(lines)


def _limits(report: dict[str, Any]) -> list[str]:
    d, n = report["docstring_check"], report["shipped_schemas"]
    line = (
        f"- {n.get('flat_docstring', 0)} shipped flat tools have parameters read from their description's "
        "`Args:` section (`crawl.args_from_docstring`); types default to string."
    )
    if d["tools"]:
        line += (
            f" Checked on the {d['tools']} live tools whose descriptions have one: names exactly right for "
            f"{d['names_exact']:.0%} of tools (precision {d['precision']:.0%}, recall {d['recall']:.0%}); the "
            f"required flag, guessed from 'optional' and 'default', right for {d['required_right']:.0%} of "
            "parameters."
        )
    out = [line]
    if n.get("flat_without_parameters"):
        out.append(
            f"- {n['flat_without_parameters']} shipped tools (kept by `--keep-unknown-arguments`) come from flat "
            "lists that name no parameter: their schema is an open object, and the description is the only "
            "guide to what they take."
        )
    return out


def render_report_md(report: dict[str, Any], command: str) -> str:
    """REPORT.md for a crawl import report (the dict written as report.json)."""
    t = report["totals"]
    cols = [
        "read",
        "invalid",
        "boilerplate",
        "duplicate_exact",
        "duplicate_near",
        "licence_excluded",
        "shipped",
    ]
    s = report["settings"]
    out = [
        "# Crawl import report",
        "",
        f"Tool specs imported from the crawl dump `{report['source']}` ({report['files']} files, "
        f"{report['servers']} servers read, {len(report['unreadable_files'])} unreadable). "
        f"**{t['shipped']} tools ship in {report['domains']} domains**; {t['executable']} of them are "
        "executable on the deterministic engine (semantics inferred by `repository.semantics.infer_domain`).",
        "",
        "## How it was made",
        "",
        f"```\n{command}\n```",
        "",
        "run from the repository root; it rewrites `tools/crawl/domains.jsonl.gz`, `report.json` and this file, "
        "byte for byte the same on the same dump. The pipeline is `agentgym/repository/crawl.py`; each tool "
        "entry ends in exactly one bucket, tested in this order: invalid → boilerplate → duplicate_exact → "
        "duplicate_near → licence_excluded → shipped. Of duplicates the best copy is kept: a permissive licence "
        "first (only it can ship), then the live MCP shape over the crawled one, then the more used server, then "
        "file name. "
        f"Near-duplicate threshold {s['near_threshold']} (word-level difflib ratio): in this dump, same-named "
        "pairs from different servers above 0.9 are almost all forks of one server, while below it short "
        "generic descriptions of different services ('List all tables in a base' / '… in a database') start "
        "to match. Licences are normalised to SPDX ids by `repository/licenses.py`; only MIT, Apache-2.0, "
        "BSD-2/3-Clause, ISC, 0BSD, Unlicense, CC0-1.0, Zlib, BSL-1.0 and MIT-0 ship. Server slugs come from the "
        f"Smithery server id ('@upstash/context7-mcp' → 'upstash_context7-mcp', at most {s['slug_max']} "
        "characters), tool names are `slug__tool` (`spec.tool.qualified_name`) with a hash suffix where two "
        "would collide.",
        "",
        f"The crawled tool list of every server that answered live repeats its live list "
        f"(`remote_server_response.tools`) verbatim; those {report['mirrored']} repeats are read once and are "
        "not counted below.",
        "",
        "## Totals",
        "",
        _table(
            ["", *cols, "repaired", "executable"],
            [["all", *(t[c] for c in cols), t["repaired"], t["executable"]]]
            + [
                [k, *(v[c] for c in cols), v["repaired"], v["executable"]]
                for k, v in report["by_shape"].items()
                if v["read"]
            ],
        ),
        "",
        "Shapes: `live` is the MCP tool list a server returned to a live connection; `flat` is the crawled "
        "`parameters` list of servers that did not answer (parameter types unknown, all strings). Shipped "
        "schemas by source: " + ", ".join(f"{k} {v}" for k, v in report["shipped_schemas"].items()) + ".",
        "",
        "## By category",
        "",
        _table(
            ["category", "servers", *cols, "executable", "domains"],
            [
                [c, v["servers"], *(v[k] for k in cols), v["executable"], v["domains"]]
                for c, v in report["by_category"].items()
            ],
        ),
        "",
        "## Why tools were dropped",
        "",
    ]
    for bucket, why in _WHY.items():
        reasons = report["reasons"].get(bucket, {})
        out += [f"### {bucket}: {t[bucket]}", "", why, ""]
        if reasons:
            out += ["Reasons: " + ", ".join(f"`{r}` {n}" for r, n in reasons.items()) + ".", ""]
        for ex in report["examples"].get(bucket, []):
            line = f"- `{ex['server']}` / `{ex['tool']}` ({ex['reason']}): “{ex['description'] or '(empty)'}”"
            if "duplicate_of" in ex:
                line += f" — copy of `{ex['duplicate_of']}`"
            if "license" in ex:
                line += f" — licence field “{ex['license']}”"
            out.append(line)
        out.append("")
    out += [
        "## Repairs",
        "",
        f"{t['repaired']} entries had their schema changed; every shipped schema passes Draft 2020-12 "
        "meta-validation (`jsonschema.validators.validator_for`, checked again by the tests).",
        "",
        _table(
            ["repair", "entries", "what"], [[k, n, _REPAIRS.get(k, "")] for k, n in report["repairs"].items()]
        ),
        "",
        "## Licences",
        "",
        _table(
            ["licence (SPDX)", "servers", "entries read", "excluded", "shipped"],
            [
                [k, v["servers"], v["read"], v["licence_excluded"], v["shipped"]]
                for k, v in report["licences"].items()
            ],
        ),
        "",
        "Raw licence strings: "
        + "; ".join(
            f"“{x['raw'][:60]}” → {x['spdx']} ({x['servers']})" for x in report["licence_strings"][:12]
        )
        + (
            f"; and {len(report['licence_strings']) - 12} more (server ids and registry links pasted as licences)."
            if len(report["licence_strings"]) > 12
            else "."
        ),
        "",
        "## Executable tools",
        "",
        f"{report['executable']['tools']} tools in {report['executable']['domains']} domains over "
        f"{report['executable']['collections']} inferred collections run on the deterministic engine: "
        + ", ".join(f"{op} {n}" for op, n in report["executable"]["by_operation"].items())
        + ". The other shipped tools keep `semantics: null` and are answered by a real backend or the world model.",
        "",
        "## Known limits",
        "",
        *_limits(report),
        "- Flat parameters from the page are all typed `string` in the dump (except those its boolean and array "
        "widgets give away), and carry no descriptions.",
        "- Tool-level de-duplication can leave a fork's domain with only the tools it added; the original "
        "server's domain holds the rest.",
    ]
    if report["unreadable_files"]:
        out += ["", "## Unreadable files", ""]
        out += [f"- `{u['file']}`: {u['reason']}" for u in report["unreadable_files"]]
    return "\n".join(out) + "\n"


def import_crawl_cmd(
    dir: Annotated[Path, typer.Argument(help="Crawl folder: one Toucan/Smithery JSON file per server.")],
    out: Annotated[
        Path | None, typer.Option(help="Repository root to write crawl/ under (default: tools/).")
    ] = None,
    keep_unknown_arguments: Annotated[
        bool,
        typer.Option(
            "--keep-unknown-arguments",
            help="Ship flat entries whose arguments the crawl did not capture, with an empty object schema.",
        ),
    ] = False,
) -> None:
    """Import a crawl dump: clean, de-duplicate and licence-check its tools, then save them as domains."""
    from agentgym.repository.crawl import import_crawl
    from agentgym.repository.store import save_domains

    if not dir.is_dir():
        console.print(f"[red]error:[/] {dir} is not a folder")
        raise typer.Exit(2)
    files = sorted(dir.glob("*.json"))
    if not files:
        console.print(f"[red]error:[/] {dir} holds no *.json crawl files")
        raise typer.Exit(2)
    with bar_progress(console, transient=True) as progress:
        bar = progress.add_task("reading crawl files", total=len(files))
        result = import_crawl(
            dir, progress=lambda _name: progress.advance(bar), keep_unknown_arguments=keep_unknown_arguments
        )
    report = result.report
    t = report.totals
    table = Table(title=f"{t['shipped']} of {t['read']} tools shipped in {report.domains} domains")
    table.add_column("category", no_wrap=True, max_width=18)
    for col in ("read", "invalid", "boiler", "dup", "licence", "shipped", "exec"):
        table.add_column(col, justify="right", min_width=4, no_wrap=True)
    for cat, c in report.by_category.items():
        cells = (c["read"], c["invalid"], c["boilerplate"], c["duplicate_exact"] + c["duplicate_near"],
                 c["licence_excluded"], c["shipped"], c["executable"])  # fmt: skip
        table.add_row(cat, *map(str, cells))
    console.print(table)
    console.print(
        f"invalid {t['invalid']}, boilerplate {t['boilerplate']}, duplicate {t['duplicate_exact']} exact + "
        f"{t['duplicate_near']} near, licence-excluded {t['licence_excluded']}, repaired {t['repaired']}, "
        f"executable {t['executable']}"
    )
    if report.unreadable_files:
        console.print(f"[yellow]{len(report.unreadable_files)} unreadable files[/] (see report.json)")
    command = f"agentgym tools import-crawl {shlex.quote(str(dir))}"
    command += f" --out {shlex.quote(str(out))}" if out is not None else ""
    command += " --keep-unknown-arguments" if keep_unknown_arguments else ""
    path = save_domains("crawl", result.domains, out)
    data = {**report.model_dump(mode="json"), "command": command}
    (path.parent / "report.json").write_text(
        json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (path.parent / "REPORT.md").write_text(render_report_md(data, command), encoding="utf-8")
    console.print(f"saved {path} and {path.parent / 'REPORT.md'}")
