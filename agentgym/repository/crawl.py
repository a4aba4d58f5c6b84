"""The crawl importer: a Smithery/Toucan crawl dump in, clean namespaced tool specs per server out.

In: a folder of per-server JSON files in the Toucan `mcp_servers/` format — `labels` (primary_label,
custom_label) and `metadata` with a live `remote_server_response.tools` list in MCP shape (servers
that answered a connection) and a crawled `server_info_crawled` record (overview, repository_url,
license, usage_count and `tools`, either MCP-shaped or flat `parameters: [{name, required, type}]`).
Out: `import_crawl(dir)` returns a `CrawlImport`: one `DomainSpec` per server that ships at least one
tool, passed through `semantics.infer_domain` (so confident CRUD tools are executable), sorted by
name, and a `CrawlReport` that accounts for every tool entry read.

Every entry read ends in exactly one terminal bucket, decided in this order:
`invalid` (no usable name, a schema no repair makes meta-valid, or a flat entry whose arguments the
crawl did not capture — see `import_crawl`) → `boilerplate` (empty, page
chrome, placeholder or uninformative description; see `boilerplate_reason`) → `duplicate_exact`
(same canonical name, schema and description as a better copy) → `duplicate_near` (same canonical
name and description similarity ≥ `NEAR_THRESHOLD`, or the same name twice on one server) →
`licence_excluded` (the server's licence is not permissive) → `shipped`. Of duplicates the best copy
is kept (`_rank`). A crawled entry that repeats a live entry of the same file verbatim is the same
entry listed twice and is read once (`CrawlReport.mirrored`). `repaired` counts entries whose schema
was changed (`repair_schema`); every shipped schema is a Draft 2020-12 object schema that passes
meta-validation. A file that cannot be read is counted in `unreadable_files` with the reason; no
file makes the import fail. Output does not depend on file-system order. Pure apart from reading
the folder: saving is the caller's job (`store.save_domains("crawl", ...)`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from pydantic import Field

from agentgym.jsonutil import dumps
from agentgym.repository.licenses import is_permissive, normalize_license
from agentgym.repository.semantics import infer_domain
from agentgym.schema import check_schema
from agentgym.spec.base import Record
from agentgym.spec.tool import Provenance, Taxonomy, ToolAnnotations, ToolSpec, qualified_name
from agentgym.spec.world import DomainSpec

BUCKETS = ("invalid", "boilerplate", "duplicate_exact", "duplicate_near", "licence_excluded", "shipped")
NEAR_THRESHOLD = 0.9
"""Description similarity (word-level difflib ratio) from which two same-named tools may be one."""
RESERVED = frozenset({"calendar", "shop", "notes", "messaging"})
"""Starter domain names a crawl server slug must never take."""
SLUG_MAX = 40
"""Longest server slug, so that `slug__tool` leaves room for the tool name within 64 characters."""
OVERVIEW_MAX = 500

# ---- reading --------------------------------------------------------------------------------------


@dataclass
class Server:
    """One crawl file's server: identity, labels, licence and popularity."""

    file: str
    server_id: str
    name: str
    category: str
    custom_label: str | None
    overview: str
    license_raw: object
    license: str | None
    package: str | None
    usage: int
    slug: str = ""

    @property
    def permissive(self) -> bool:
        return is_permissive(self.license)

    @property
    def domain_label(self) -> str:
        label = _slug_text(self.custom_label or "")
        return label or self.slug


@dataclass
class Entry:
    """One tool entry of a crawl file and what became of it."""

    server: Server
    origin: str
    """'live' (remote_server_response.tools) or 'crawled' (server_info_crawled.tools)."""
    index: int
    shape: str
    """'live', 'mcp' (crawled in MCP shape) or 'flat' (crawled `parameters` list)."""
    raw: Any
    name: str | None = None
    description: str = ""
    schema: dict[str, Any] | None = None
    repairs: tuple[str, ...] = ()
    annotations: ToolAnnotations = field(default_factory=ToolAnnotations)
    title: str | None = None
    bucket: str | None = None
    reason: str | None = None
    duplicate_of: Entry | None = None
    tool: ToolSpec | None = None

    @property
    def label(self) -> str:
        return f"{self.server.server_id}/{self.name}"


class CrawlFileError(ValueError):
    """A crawl file that cannot be read as a server record."""


def _slug_text(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _short_hash(*parts: str, n: int = 6) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:n]


def server_slug(server_id: str) -> str:
    """'@upstash/context7-mcp' → 'upstash_context7-mcp' (lower case, `[a-z0-9_-]`, ≤ SLUG_MAX)."""
    s = server_id.strip().lstrip("@").replace("/", "_").lower()
    s = re.sub(r"[^a-z0-9_-]+", "_", s)
    s = re.sub(r"_{2,}", "_", s).strip("_-") or "server"  # keep '__' free for the tool separator
    if len(s) > SLUG_MAX:
        s = s[: SLUG_MAX - 7].rstrip("_-") + "-" + _short_hash(server_id)
    return s


def _usage(value: object) -> int:
    text = re.sub(r"[,\s_]", "", str(value))
    return int(text) if text.isdigit() else -1


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def read_server(path: Path) -> tuple[Server, list[tuple[str, int, Any]], int]:
    """The server of one crawl file, its tool entries as (origin, index, raw), and how many crawled
    entries were verbatim mirrors of live ones (read once)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise CrawlFileError(f"not readable JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
        raise CrawlFileError("no 'metadata' object")
    meta = data["metadata"]
    labels = data.get("labels") if isinstance(data.get("labels"), dict) else {}
    info = meta.get("server_info_crawled") if isinstance(meta.get("server_info_crawled"), dict) else {}
    remote = (
        meta.get("remote_server_response") if isinstance(meta.get("remote_server_response"), dict) else {}
    )
    homepage = _text(info.get("homepage"))
    if "/server/" in homepage:
        server_id = homepage.split("/server/", 1)[1].split("?")[0].strip("/")
    else:
        server_id = Path(_text(meta.get("original_file")) or path.name).stem.removesuffix("_labeled")
    if not server_id:
        raise CrawlFileError("no server id (homepage or original_file)")
    live, crawled = remote.get("tools"), info.get("tools")
    for what, value in (("remote_server_response.tools", live), ("server_info_crawled.tools", crawled)):
        if value is not None and not isinstance(value, list):
            raise CrawlFileError(f"{what} is a {type(value).__name__}, not a list")
    live, crawled = live or [], crawled or []
    seen = {dumps(t, sort_keys=True) for t in live}
    entries = [("live", i, t) for i, t in enumerate(live)]
    rest = [("crawled", i, t) for i, t in enumerate(crawled) if dumps(t, sort_keys=True) not in seen]
    repo = _text(info.get("repository_url"))
    server = Server(
        file=path.name,
        server_id=server_id,
        name=_text(info.get("name")) or _text(meta.get("server_name")) or server_id,
        category=_text(labels.get("primary_label")) or "Others",
        custom_label=_text(labels.get("custom_label")) or None,
        overview=_text(info.get("overview")),
        license_raw=info.get("license"),
        license=normalize_license(info.get("license")),
        package=repo or homepage or None,
        usage=_usage(info.get("usage_count", meta.get("usage_count"))),
    )
    return server, entries + rest, len(crawled) - len(rest)


# ---- schemas --------------------------------------------------------------------------------------

JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})
TYPE_ALIASES = {
    **dict.fromkeys(
        ("str", "text", "char", "uuid", "date", "datetime", "email", "url", "uri", "path"), "string"
    ),
    **dict.fromkeys(("int", "long", "int32", "int64", "uint", "short"), "integer"),
    **dict.fromkeys(("float", "double", "decimal", "numeric", "real", "num"), "number"),
    **dict.fromkeys(("bool",), "boolean"),
    **dict.fromkeys(("list", "tuple", "set", "sequence"), "array"),
    **dict.fromkeys(("dict", "map", "record", "json", "hash", "struct"), "object"),
    **dict.fromkeys(("none", "nil", "nonetype"), "null"),
}
"""Loose type names → JSON Schema types; any other unknown name becomes "string"."""
ANY_TYPES = frozenset({"any", "unknown", "mixed", "*"})
"""Type names that mean "no constraint": the `type` keyword is dropped."""
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_ONE = (
    "items", "additionalProperties", "additionalItems", "contains", "not", "if", "then", "else",
    "propertyNames", "unevaluatedItems", "unevaluatedProperties",
)  # fmt: skip
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


@dataclass(frozen=True)
class SchemaResult:
    """A repaired input schema, or why none could be made."""

    schema: dict[str, Any] | None
    repairs: tuple[str, ...] = ()
    error: str | None = None


STOPWORDS = frozenset({
    "a", "an", "the", "of", "from", "in", "into", "to", "for", "by", "with", "on", "at", "and", "or", "new", "all",
    "any", "your", "its", "this", "that", "is", "are", "be",
})  # fmt: skip
_PROSE = re.compile(r"^(?:[A-Z][A-Za-z0-9]*|[a-z0-9]+)$")  # a word, not a lowerCamel or snake_case identifier


def clean_flat_parameters(
    tool: str, description: str, params: list[Any], siblings: Iterable[str] = ()
) -> tuple[list[Any], tuple[str, ...]]:
    """Remove what the Smithery page scraper took for parameters, and read the types it gives away.

    The flat lists come from the playground form of a server's page, and carry its chrome: the tool's
    own name as a header (`scrape_header`); the first words of the description rendered above the
    form, a run of optional prose words at the start (`scrape_prose`); the names of sibling tools
    linked below it (`scrape_sibling`); "True"/"False" radio labels after a boolean parameter, and
    "Add"/"Item" buttons after an array parameter (`scrape_boolean`, `scrape_array`, which also set
    the type of the parameter they follow). Entries that are not {name: text} dicts are kept for the
    caller to refuse.
    """
    repairs: list[str] = []
    words = {w.casefold() for w in re.findall(r"\w+", description)}
    first = next(iter(re.findall(r"\w+", description)), "").casefold()
    sibling_names = set(siblings) - {tool}
    out: list[Any] = []
    prose = True  # at the start of the list, where the page shows the description's first words
    in_run = False
    for p in params:
        name = p.get("name") if isinstance(p, dict) else None
        if not isinstance(name, str):
            out.append(p)
            continue
        optional = p.get("required") is not True
        if name == tool and optional:
            repairs.append("scrape_header")
            continue
        if optional and name in ("True", "False"):
            if out and isinstance(out[-1], dict):
                out[-1] = {**out[-1], "type": "boolean"}
            repairs.append("scrape_boolean")
            continue
        if optional and name in ("Add", "Item"):
            if out and isinstance(out[-1], dict):
                out[-1] = {**out[-1], "type": "array"}
            repairs.append("scrape_array")
            continue
        if optional and name in sibling_names:
            repairs.append("scrape_sibling")
            continue
        if prose and optional and _PROSE.match(name):
            low = name.casefold()
            starts = not out and not in_run and (name[0].isupper() or low == first)
            if starts or (in_run and (name[0].isupper() or low in words or low in STOPWORDS)):
                in_run = True
                repairs.append("scrape_prose")
                continue
        prose = False
        out.append(p)
    return out, tuple(dict.fromkeys(repairs))


_DOC_SECTION = re.compile(
    r"\b(?:Args|Arguments|Parameters|Params)\s*:\s*(.*?)"
    r"(?=\b(?:Returns?|Raises|Yields|Examples?|Notes?|Output|Response|Usage)\s*:|$)",
    re.DOTALL,
)
_DOC_ARG = re.compile(r"(?:^|(?<=\s))[-*•]?\s*([a-z_][A-Za-z0-9_]*)\s*(?:\(([^()]{0,40})\))?\s*:\s")
_DOC_NOT_ARGS = frozenset({
    "e", "eg", "i", "ie", "note", "default", "example", "max", "min", "type", "format", "options", "returns",
    "of", "include", "includes", "or", "and", "to", "from",
})  # fmt: skip
"""Words before a colon in an Args section that are not parameters (and do not end one's text)."""
_DOC_CONTEXT = frozenset({"ctx", "self", "cls"})
"""Documented arguments the caller never passes (FastMCP's context, the method's object)."""
_DOC_LISTING = re.compile(r"(?i)\b(?:valid|available|supported|allowed|possible|accepted|following)\s*$")
_DOC_OPTIONAL = re.compile(r"(?i)\boptional\b|\bdefaults?\b|\bif not (?:provided|given|specified)\b")
_DOC_TYPE_WORDS = frozenset(
    {
        "str",
        "string",
        "int",
        "integer",
        "float",
        "number",
        "bool",
        "boolean",
        "list",
        "dict",
        "array",
        "object",
    }
)
_DOC_TYPE = re.compile(r"\s*(?:optional\s*\[\s*)?([A-Za-z]+)\b[^\s,.;:]*[,.;:]?", re.IGNORECASE)


def _doc_type(text: str, *, leading: bool = False) -> tuple[str | None, int]:
    """The JSON type a docstring annotation ('str, optional', 'List[str]', 'Optional[int]') names, and
    where its word ends. With `leading`, only a lower-case Python type word opening a description
    ('str The ticker symbol') counts, so that 'Path to the file' or 'Date of birth' do not."""
    m = _DOC_TYPE.match(text)
    if m is None or (leading and m.group(1) not in _DOC_TYPE_WORDS):
        return None, 0
    low = m.group(1).lower()
    t = low if low in JSON_TYPES else TYPE_ALIASES.get(low)
    return t, (m.end() if t else 0)


def args_from_docstring(description: str) -> list[dict[str, Any]]:
    """The parameters a Python docstring's `Args:` section documents, as flat-parameter dicts.

    FastMCP servers publish their function docstrings as descriptions, so where the crawl captured no
    parameters the description often still lists them ('Args: post_id: Reddit post ID Returns: ...',
    newlines or not). A parameter is an identifier starting lower case, outside parentheses, before a
    colon, not a listing ('Valid types:'), a known non-parameter (`_DOC_NOT_ARGS`) or the server's
    context (`_DOC_CONTEXT`). Its type comes from the annotation ('(str, optional)') or a leading type
    word, else string; it is required unless its annotation or text says optional or names a default.
    Measured on the live tools of the Smithery/Toucan dump whose descriptions have such a section, the
    names match the live schema exactly for 94% of the tools, and the required flag is right for 77% of
    the parameters found (see the crawl REPORT.md).
    """
    m = _DOC_SECTION.search(description)
    if m is None:
        return []
    body = m.group(1)
    depth, d = [], 0
    for ch in body:
        d = d + 1 if ch in "([{" else max(0, d - 1) if ch in ")]}" else d
        depth.append(d)
    hits = [
        h for h in _DOC_ARG.finditer(body)
        if depth[h.start(1)] == 0 and h.group(1) not in _DOC_NOT_ARGS and not _DOC_LISTING.search(body[: h.start(1)])
    ]  # fmt: skip
    out: list[dict[str, Any]] = []
    for i, h in enumerate(hits):
        if h.group(1) in _DOC_CONTEXT:
            continue
        note = h.group(2) or ""
        text = " ".join(body[h.end() : hits[i + 1].start() if i + 1 < len(hits) else len(body)].split())
        t, _ = _doc_type(note)
        if t is None:
            t, end = _doc_type(text, leading=True)
            text = text[end:].strip()
        param: dict[str, Any] = {
            "name": h.group(1),
            "required": not _DOC_OPTIONAL.search(f"{note} {text}"),
            "type": t or "string",
        }
        if text:
            param["description"] = _trim(text, 300)
        out.append(param)
    return out


def schema_from_parameters(params: object, tool: str = "", description: str = "",
                           siblings: Iterable[str] = ()) -> SchemaResult:  # fmt: skip
    """A flat crawled `parameters: [{name, required, type}]` list as an object schema; when the page
    gave no parameter, the ones the description's docstring documents (`args_from_docstring`)."""
    if not isinstance(params, list):
        return SchemaResult(None, error=f"parameters is a {type(params).__name__}, not a list")
    params, scraped = clean_flat_parameters(tool, description, params, siblings)
    repairs = ["flat_parameters", *scraped]
    if not params:
        params = args_from_docstring(description)
        if params:
            repairs.append("docstring_args")
    props: dict[str, Any] = {}
    required: list[str] = []
    for p in params:
        name = p.get("name") if isinstance(p, dict) else None
        if not isinstance(name, str) or not name.strip():
            return SchemaResult(None, error="a parameter has no name")
        name = name.strip()
        if name in props:
            repairs.append("duplicate_parameter")
            continue
        sub: dict[str, Any] = {"type": p["type"]} if "type" in p else {"type": "string"}
        if "type" not in p:
            repairs.append("unknown_type")
        if isinstance(p.get("description"), str) and p["description"].strip():
            sub["description"] = p["description"].strip()
        if isinstance(p.get("enum"), list) and p["enum"]:
            sub["enum"] = p["enum"]
        props[name] = sub
        if p.get("required") is True or str(p.get("required")).strip().lower() == "true":
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    res = normalize_schema(schema)
    return SchemaResult(res.schema, tuple(dict.fromkeys([*repairs, *res.repairs])), res.error)


def _fix_type(t: object, repairs: list[str]) -> object:
    """The JSON Schema type for a crawled `type` value; None to drop the keyword."""
    if isinstance(t, list):
        fixed = [_fix_type(x, repairs) for x in t]
        if None in fixed:
            return None
        out = list(dict.fromkeys(fixed))
        if out != t:
            repairs.append("loose_type")
        return out[0] if len(out) == 1 else out
    if not isinstance(t, str):
        repairs.append("unknown_type")
        return "string"
    low = t.strip().lower()
    if low in JSON_TYPES:
        if low != t:
            repairs.append("loose_type")
        return low
    if low in ANY_TYPES:
        repairs.append("loose_type")
        return None
    if low in TYPE_ALIASES:
        repairs.append("loose_type")
        return TYPE_ALIASES[low]
    repairs.append("unknown_type")
    return "string"


def _fix(s: dict[str, Any], repairs: list[str]) -> None:
    """Repair one (sub)schema in place, then its subschemas."""
    if "type" in s:
        t = _fix_type(s["type"], repairs)
        if t is None:
            del s["type"]
        else:
            s["type"] = t
    for k in ("exclusiveMinimum", "exclusiveMaximum"):  # draft-04 booleans
        if isinstance(s.get(k), bool):
            repairs.append("draft4_exclusive")
            bound = s.pop("minimum" if k == "exclusiveMinimum" else "maximum", None)
            if s.pop(k) and isinstance(bound, int | float):
                s[k] = bound
    if isinstance(s.get("items"), list):  # draft-07 tuple form → 2020-12
        repairs.append("tuple_items")
        s["prefixItems"] = s.pop("items")
        if "additionalItems" in s:
            s["items"] = s.pop("additionalItems")
    if isinstance(s.get("dependencies"), dict):  # draft-07 → dependentRequired / dependentSchemas
        repairs.append("dependencies")
        for name, dep in s.pop("dependencies").items():
            key = "dependentRequired" if isinstance(dep, list) else "dependentSchemas"
            s.setdefault(key, {})[name] = dep
    if "properties" in s and not isinstance(s["properties"], dict):
        repairs.append("bad_properties")
        del s["properties"]
    props = s.get("properties")
    if isinstance(props, dict):
        for name, sub in list(props.items()):
            if isinstance(sub, str):  # {"city": "string"}: a bare type name
                repairs.append("property_shorthand")
                props[name] = sub = {"type": sub}
            elif not isinstance(sub, dict | bool):
                repairs.append("bad_property")
                props[name] = sub = {}
            if isinstance(sub, dict) and isinstance(sub.get("required"), bool):  # draft-03 flag
                repairs.append("property_required_flag")
                if sub.pop("required"):
                    req = s.get("required")
                    s["required"] = [*(req if isinstance(req, list) else []), name]
    if "required" in s:
        req = s["required"]
        if not isinstance(req, list):
            repairs.append("bad_required")
            del s["required"]
        else:
            names = [r for r in req if isinstance(r, str)]
            if isinstance(props, dict):
                names = [r for r in names if r in props]
            names = list(dict.fromkeys(names))
            if names != req:
                repairs.append("required_absent")
            if names:
                s["required"] = names
            else:
                del s["required"]
    for k in _SCHEMA_MAPS:
        if isinstance(s.get(k), dict):
            for sub in s[k].values():
                if isinstance(sub, dict):
                    _fix(sub, repairs)
    for k in _SCHEMA_ONE:
        if isinstance(s.get(k), dict):
            _fix(s[k], repairs)
    for k in _SCHEMA_LISTS:
        if isinstance(s.get(k), list):
            for sub in s[k]:
                if isinstance(sub, dict):
                    _fix(sub, repairs)


def meta_error(schema: Any) -> str | None:
    """None when `schema` passes meta-validation under its `$schema` dialect (Draft 2020-12 when it
    declares none), else the best-matching reason (`agentgym.schema.check_schema`)."""
    return check_schema(schema)


def normalize_schema(schema: object) -> SchemaResult:
    """An MCP `inputSchema` as a meta-valid Draft 2020-12 object schema (see module doc)."""
    repairs: list[str] = []
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError:
            return SchemaResult(None, error="schema is text that is not JSON")
        repairs.append("json_text")
    if not isinstance(schema, dict):
        return SchemaResult(None, error=f"schema is a {type(schema).__name__}, not an object")
    s: dict[str, Any] = json.loads(dumps(schema))  # a deep copy we may change
    inner = s.get("properties")
    if (
        isinstance(inner, dict)
        and inner.get("type") == "object"
        and isinstance(inner.get("properties"), dict)
    ):
        repairs.append("nested_schema")  # {"type": "object", "properties": {<a whole schema>}}
        s = {**{k: v for k, v in s.items() if k != "properties"}, **inner}
    if "$schema" in s:
        # One dialect for every shipped schema: the declared one is converted (tuple items,
        # dependencies, draft-04 exclusive bounds) and the key dropped, so each reads as 2020-12.
        repairs.append("dialect")
        del s["$schema"]
    t = s.get("type")
    if t is None:
        repairs.append("missing_type")
        s["type"] = "object"
    elif t != "object":
        if (isinstance(t, list) and "object" in t) or (
            isinstance(t, str) and t.strip().lower() in ("object", "dict", "map")
        ):
            repairs.append("loose_type")
            s["type"] = "object"
        else:
            return SchemaResult(None, error=f"top-level type is {t!r}, not 'object'")
    _fix(s, repairs)
    if "properties" not in s:
        repairs.append("missing_properties")
        s["properties"] = {}
    err = meta_error(s)
    if err is not None:
        return SchemaResult(None, error=f"not a valid JSON Schema: {err}"[:300])
    return SchemaResult(s, tuple(dict.fromkeys(repairs)))


def repair_schema(raw: dict[str, Any], siblings: Iterable[str] = ()) -> SchemaResult:
    """The input schema of a tool entry in either shape (see `normalize_schema`, `schema_from_parameters`);
    `siblings` are the names of the other tools of its server."""
    for key in ("input_schema", "inputSchema"):
        if key in raw:
            if raw[key] is None:
                return SchemaResult(None, error="input schema is null")
            return normalize_schema(raw[key])
    if "parameters" in raw:
        name, desc = raw.get("name"), raw.get("description")
        return schema_from_parameters(raw["parameters"], name if isinstance(name, str) else "",
                                      desc if isinstance(desc, str) else "", siblings)  # fmt: skip
    return SchemaResult(None, error="no input schema and no parameters")


# ---- descriptions ---------------------------------------------------------------------------------

PAGE_CHROME = (
    re.compile(r"\bDeploy Server\b.*\bTry in Playground\b", re.DOTALL),
    re.compile(r"^Access and manage servers by signing in\.?$"),
)
"""Smithery page text a scraper took for a description ('Deploy Server <title> <id> Try in
Playground <a tool name>'; the sign-in banner under a pseudo-tool 'Optional Settings')."""
PLACEHOLDERS = frozenset({
    "description not available", "no description", "no description available", "no description provided",
    "not available", "n a", "na", "none", "null", "undefined", "todo", "tbd", "description", "tool",
    "missing description", "placeholder",
})  # fmt: skip
"""Descriptions (lower case, punctuation collapsed) that say nothing."""
_NO_DESCRIPTION = re.compile(
    r"^(?:the )?(?:tool )?description (?:is )?not (?:available|accessible|provided)\b"
)
_CODE_WORD = re.compile(r"^(?:[a-z]+[A-Z]\w*|\w*_\w*|[\w-]+\*|[a-z]+(?:-[a-z]+)+)$")


def _norm_text(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def canonical_name(name: str) -> str:
    """Case, separators and punctuation ignored: 'getUser', 'get-user' and 'get_user' are one name."""
    return re.sub(r"[\W_]+", "", name.casefold())


_NAME_LABEL = re.compile(r"^Name:\s*\S+\s+Description:\s*")


def clean_description(value: object) -> str:
    """A description as text: docstring indentation removed, a 'Name: <tool> Description: ' label some
    servers put in front dropped, ends trimmed ('' when not text)."""
    return _NAME_LABEL.sub("", inspect.cleandoc(value)).strip() if isinstance(value, str) else ""


def boilerplate_reason(name: str, description: str) -> str | None:
    """Why a description tells a model nothing about the tool, or None when it is informative.

    'empty'; 'page_chrome' (see `PAGE_CHROME`); 'placeholder' (see `PLACEHOLDERS`, or "Tool
    description not accessible ..."); 'field_list' (only identifiers, at least half of them
    code-like — 'description dueDatetime deadlineDate quick-add-task': a form's field names scraped as
    text); 'restates_name' (the name again, whatever the case and separators: 'list_chapters' →
    'List Chapters'); 'too_short' (a single word, or under 4 characters of non-Latin text).
    """
    d = description.strip()
    if not d:
        return "empty"
    if any(p.search(d) for p in PAGE_CHROME):
        return "page_chrome"
    norm = _norm_text(d)
    if norm in PLACEHOLDERS or _NO_DESCRIPTION.match(norm):
        return "placeholder"
    words = d.split()
    if (
        len(words) >= 2
        and all(re.fullmatch(r"[\w.*/-]+", w) for w in words)
        and sum(bool(_CODE_WORD.match(w)) for w in words) * 2 >= len(words)
    ):
        return "field_list"
    if canonical_name(d) == canonical_name(name):
        return "restates_name"
    if len(re.findall(r"\w+", d)) < 2 and (d.isascii() or len(d) < 4):
        return "too_short"
    return None


# ---- annotations ----------------------------------------------------------------------------------

_HINTS = {
    "readOnlyHint": "read_only_hint", "destructiveHint": "destructive_hint",
    "idempotentHint": "idempotent_hint", "openWorldHint": "open_world_hint",
}  # fmt: skip


def annotations_of(raw: object) -> ToolAnnotations:
    """MCP camelCase annotations (snake_case accepted) as `ToolAnnotations`; values of the wrong type
    and unknown keys (zod internals, vendor hints) are dropped."""
    if not isinstance(raw, dict):
        return ToolAnnotations()
    out: dict[str, Any] = {}
    if isinstance(raw.get("title"), str) and raw["title"].strip():
        out["title"] = raw["title"].strip()
    for camel, snake in _HINTS.items():
        v = raw.get(camel, raw.get(snake))
        if isinstance(v, bool):
            out[snake] = v
    return ToolAnnotations(**out)


# ---- the pipeline ---------------------------------------------------------------------------------


def _parse(e: Entry, siblings: Iterable[str] = (), keep_unknown_arguments: bool = False) -> None:
    """Name, description, schema and annotations of an entry; `invalid` when unusable (see `import_crawl`
    for `keep_unknown_arguments`)."""
    raw = e.raw
    if not isinstance(raw, dict):
        e.bucket, e.reason = "invalid", "entry_not_object"
        return
    name = raw.get("name")
    e.name = name.strip() if isinstance(name, str) else None
    if not e.name or not re.search(r"[A-Za-z0-9]", e.name):
        e.bucket, e.reason = "invalid", "no_usable_name"
        return
    e.description = clean_description(raw.get("description"))
    e.annotations = annotations_of(raw.get("annotations"))
    title = raw.get("title")
    e.title = title.strip() if isinstance(title, str) and title.strip() else None
    res = repair_schema(raw, siblings)
    e.schema, e.repairs = res.schema, res.repairs
    if res.error is not None:
        e.bucket, e.reason = "invalid", res.error
    elif e.shape == "flat" and not res.schema["properties"] and not keep_unknown_arguments:  # type: ignore[index]
        # The page showed no parameter and the description documents none: the crawl missed the
        # arguments. In the Smithery/Toucan dump 15% of live tools take none, but 59% of flat entries
        # show none, and 85% of those that share their name with a live tool have a live namesake that
        # takes some; an empty schema would tell the model "no arguments" wrongly most of the time.
        e.bucket, e.reason = "invalid", "arguments_unknown"


_SHAPE_RANK = {"live": 0, "mcp": 1, "flat": 2}


def _rank(e: Entry) -> tuple[Any, ...]:
    """Keep-best order among copies: a permissive licence first (only it can ship), then the live MCP
    shape over crawled (flat copies lose types and descriptions), then the more used server, then
    file and position (deterministic)."""
    return (not e.server.permissive, _SHAPE_RANK[e.shape], -e.server.usage, e.server.file, e.origin, e.index)


def similarity(a: str, b: str) -> float:
    """Description similarity in [0, 1]: difflib's ratio over the words of case- and
    punctuation-folded text (word-level, so one changed word in a short description counts fully)."""
    wa, wb = _norm_text(a).split(), _norm_text(b).split()
    if wa == wb:
        return 1.0
    return SequenceMatcher(None, wa, wb, autojunk=False).ratio()


_SENTENCE_START = re.compile(r"(?:^|[.!?:\n]\s*)\W*([A-Za-z]\w*)")


def product_names(text: str) -> set[str]:
    """Mixed-case words not at a sentence start ('GitHub', 'Freshdesk', 'Neon'), case-folded: the
    products a description names. All-caps words (ID, API, SQL, WARNING) are not counted."""
    starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    return {
        m.group(0).casefold() for m in re.finditer(r"\b[A-Za-z][A-Za-z0-9]*\b", text)
        if m.start() not in starts and not m.group(0).isupper() and not m.group(0).islower()
    }  # fmt: skip


def _argument_names(schema: dict[str, Any] | None) -> set[str]:
    return {canonical_name(k) for k in ((schema or {}).get("properties") or {})}


def near_duplicate(kept: Entry, e: Entry, threshold: float = NEAR_THRESHOLD) -> str | None:
    """Why `e` is a near duplicate of `kept` (same canonical name assumed), or None.

    'same_server_same_name': a server cannot offer one name twice, so the worse copy is a stale
    crawl. 'similar_description': another server, description similarity ≥ `threshold`, no product
    named on one side only (GitLab vs GitHub, Freshdesk vs Freshservice are different tools), and,
    when both schemas list arguments, at least half of the argument names shared (a fork keeps its
    interface; two services' `create_event` with different arguments are two tools).
    """
    if kept.server is e.server:
        return "same_server_same_name"
    if similarity(kept.description, e.description) < threshold:
        return None
    words_k = set(re.findall(r"\w+", kept.description.casefold()))
    words_e = set(re.findall(r"\w+", e.description.casefold()))
    if product_names(kept.description) - words_e or product_names(e.description) - words_k:
        return None
    ak, ae = _argument_names(kept.schema), _argument_names(e.schema)
    if ak and ae and len(ak & ae) / len(ak | ae) < 0.5:
        return None
    return "similar_description"


def dedupe(entries: Iterable[Entry], threshold: float = NEAR_THRESHOLD) -> None:
    """Mark exact and near duplicates among entries still unbucketed (see module doc), best first.

    Exact: same canonical name, same schema, same folded description as a better copy. Near: see
    `near_duplicate`, against the copies kept so far (never against a duplicate)."""
    exact: dict[tuple[str, str, str], Entry] = {}
    kept: dict[str, list[Entry]] = defaultdict(list)
    for e in sorted((e for e in entries if e.bucket is None), key=_rank):
        assert e.name is not None and e.schema is not None
        canon = canonical_name(e.name)
        key = (canon, hashlib.sha1(dumps(e.schema, sort_keys=True)).hexdigest(), _norm_text(e.description))
        if key in exact:
            first = exact[key]
            e.bucket, e.reason = "duplicate_exact", "same_server" if first.server is e.server else "copy"
            e.duplicate_of = first.duplicate_of or first
            continue
        exact[key] = e
        for rep in kept[canon]:
            why = near_duplicate(rep, e, threshold)
            if why is not None:
                e.bucket, e.reason, e.duplicate_of = "duplicate_near", why, rep
                break
        else:
            kept[canon].append(e)


def assign_names(pairs: list[tuple[str, str]]) -> list[str]:
    """Exposed names for (server slug, original tool name) pairs: `qualified_name`, and where two
    pairs would share one (the 64-character cut, or characters outside the charset), each of them
    gets `_` + a hash of its pair in its last 7 characters. Deterministic and order-independent."""
    names = [qualified_name(s, t) for s, t in pairs]
    counts = Counter(names)
    out = []
    for (s, t), n in zip(pairs, names, strict=True):
        if counts[n] > 1:
            n = f"{n[:57]}_{_short_hash(s, t)}"
        out.append(n)
    if len(set(out)) != len(out):  # a hash collision among colliding names: longer hashes, still stable
        out = [n if counts[q] == 1 else f"{q[:51]}_{_short_hash(s, t, n=12)}" for (s, t), q, n in
               zip(pairs, names, out, strict=True)]  # fmt: skip
    if len(set(out)) != len(out):
        raise ValueError("tool names still collide after hashing")  # pragma: no cover
    return out


def _assign_slugs(servers: list[Server]) -> None:
    taken: set[str] = set()
    for s in sorted(servers, key=lambda s: (s.server_id.lower(), s.file)):
        base = server_slug(s.server_id)
        if base in RESERVED:
            base = f"{base}_crawl"
        slug, k = base, 2
        while slug in taken:
            slug, k = f"{base}-{k}", k + 1
        s.slug = slug
        taken.add(slug)


def _trim(text: str, limit: int = OVERVIEW_MAX) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


# ---- the report -----------------------------------------------------------------------------------


class CrawlReport(Record):
    """What an import read, dropped, repaired and shipped; the terminal buckets add up to `read`."""

    source: str
    """The crawl folder as given."""
    files: int
    """JSON files found."""
    servers: int
    """Files read as a server."""
    unreadable_files: list[dict[str, str]] = Field(default_factory=list)
    """{file, reason} of each file that could not be read."""
    mirrored: int = 0
    """Crawled entries that repeat a live entry of the same file verbatim (read once, not counted)."""
    totals: dict[str, int]
    """read, each terminal bucket, repaired, executable."""
    by_shape: dict[str, dict[str, int]]
    """The same counts per entry shape (live, mcp, flat)."""
    by_category: dict[str, dict[str, int]]
    """The same counts per primary category, plus servers and domains."""
    reasons: dict[str, dict[str, int]]
    """Terminal bucket → reason → entries."""
    repairs: dict[str, int]
    """Repair kind → entries it was applied to."""
    licences: dict[str, dict[str, int]]
    """SPDX id (or marker, or 'unspecified') → servers, read, licence_excluded, shipped."""
    licence_strings: list[dict[str, Any]]
    """Each raw licence string, what it normalised to, and how many servers gave it."""
    executable: dict[str, Any]
    """Tools and domains with inferred semantics, by operation."""
    shipped_schemas: dict[str, int]
    """Shipped tools by where their schema came from: live, mcp (crawled in MCP shape),
    flat_with_parameters, flat_docstring (parameters read from the description's Args section),
    flat_without_parameters (arguments unknown; only with `keep_unknown_arguments`)."""
    docstring_check: dict[str, Any]
    """`args_from_docstring` measured on the live tools whose description has an Args section: tools,
    names_exact (share whose parameter names equal the live schema's), precision and recall of names,
    required_right (share of found parameters whose required flag matches)."""
    domains: int
    """Domains (servers with at least one shipped tool)."""
    examples: dict[str, list[dict[str, str]]]
    """Bucket → a few real entries, one per reason first."""
    settings: dict[str, Any]
    """Thresholds and limits the import ran with."""


@dataclass
class CrawlImport:
    """The result of `import_crawl`."""

    domains: list[DomainSpec]
    report: CrawlReport
    entries: list[Entry]


def _counts(entries: Iterable[Entry]) -> dict[str, int]:
    c = Counter({"read": 0, **dict.fromkeys(BUCKETS, 0), "repaired": 0, "executable": 0})
    for e in entries:
        c["read"] += 1
        c[e.bucket or "?"] += 1
        c["repaired"] += bool(e.repairs)
        c["executable"] += bool(e.tool is not None and e.tool.semantics is not None)
    return dict(c)


def _example(e: Entry) -> dict[str, str]:
    ex = {"file": e.server.file, "server": e.server.server_id, "tool": str(e.name), "reason": str(e.reason),
          "description": _trim(e.description, 140)}  # fmt: skip
    if e.duplicate_of is not None:
        ex["duplicate_of"] = e.duplicate_of.label
    if e.bucket == "licence_excluded":
        ex["license"] = str(e.server.license_raw)
    return ex


def _examples(entries: list[Entry], per_bucket: int = 3) -> dict[str, list[dict[str, str]]]:
    """Per dropped bucket, the first entry of each of its most common reasons, then more of the first."""
    out: dict[str, list[dict[str, str]]] = {}
    for bucket in BUCKETS[:-1]:
        mine = [e for e in entries if e.bucket == bucket]
        freq = Counter(e.reason for e in mine)
        first: dict[str | None, Entry] = {}
        for e in mine:
            first.setdefault(e.reason, e)
        picked = [first[r] for r, _ in freq.most_common(per_bucket)]
        picked += [e for e in mine if e not in picked][: per_bucket - len(picked)]
        out[bucket] = [_example(e) for e in picked]
    return out


def _schema_kind(e: Entry) -> str:
    if e.shape != "flat":
        return e.shape
    if "docstring_args" in e.repairs:
        return "flat_docstring"
    return "flat_with_parameters" if (e.schema or {}).get("properties") else "flat_without_parameters"


def docstring_check(entries: Iterable[Entry]) -> dict[str, Any]:
    """How well `args_from_docstring` recovers the schemas of live tools (see `CrawlReport`)."""
    tools = exact = found = right = wanted = required_right = 0
    for e in entries:
        if e.shape != "live" or e.schema is None:
            continue
        params = args_from_docstring(e.description)
        if not params:
            continue
        props, req = e.schema.get("properties") or {}, set(e.schema.get("required") or ())
        names = {p["name"] for p in params}
        tools += 1
        exact += names == set(props)
        found, wanted, right = found + len(names), wanted + len(props), right + len(names & set(props))
        required_right += sum(p["required"] == (p["name"] in req) for p in params if p["name"] in props)

    def share(a: int, b: int) -> float | None:
        return round(a / b, 3) if b else None

    return {"tools": tools, "names_exact": share(exact, tools), "precision": share(right, found),
            "recall": share(right, wanted), "required_right": share(required_right, right)}  # fmt: skip


def _report(
    source: str, files: int, servers: list[Server], unreadable: list[dict[str, str]], mirrored: int,
    entries: list[Entry], domains: list[DomainSpec], options: dict[str, Any] | None = None,
) -> CrawlReport:  # fmt: skip
    totals = _counts(entries)
    if sum(totals[b] for b in BUCKETS) != totals["read"]:
        raise RuntimeError(f"buckets do not add up to the entries read: {totals}")  # a bug, never data
    by_cat: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_cat[e.server.category].append(e)
    cat_servers = Counter(s.category for s in servers)
    cat_domains = Counter(d.category for d in domains)
    by_category = {
        c: {**_counts(by_cat.get(c, [])), "servers": cat_servers[c], "domains": cat_domains[c]}
        for c in sorted(cat_servers, key=lambda c: (-_counts(by_cat.get(c, []))["shipped"], c))
    }
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    repairs: Counter[str] = Counter()
    for e in entries:
        reasons[str(e.bucket)][str(e.reason or "ok")] += 1
        repairs.update(e.repairs)
    licences: dict[str, Counter[str]] = defaultdict(Counter)
    for s in servers:
        licences[s.license or "unspecified"]["servers"] += 1
    for e in entries:
        lic = licences[e.server.license or "unspecified"]
        lic["read"] += 1
        if e.bucket in ("licence_excluded", "shipped"):
            lic[e.bucket] += 1
    raw_strings = Counter((str(s.license_raw), s.license or "unspecified") for s in servers)
    ops = Counter(t.semantics.operation for d in domains for t in d.tools if t.semantics is not None)
    executable = {
        "tools": sum(ops.values()),
        "domains": sum(any(t.semantics is not None for t in d.tools) for d in domains),
        "collections": sum(len(d.entities) for d in domains),
        "by_operation": dict(sorted(ops.items())),
    }
    return CrawlReport(
        source=source,
        files=files,
        servers=len(servers),
        unreadable_files=unreadable,
        mirrored=mirrored,
        totals=totals,
        by_shape={k: _counts(e for e in entries if e.shape == k) for k in _SHAPE_RANK},
        by_category=by_category,
        reasons={b: dict(reasons[b].most_common()) for b in BUCKETS if b in reasons},
        repairs=dict(repairs.most_common()),
        licences={k: {f: v[f] for f in ("servers", "read", "licence_excluded", "shipped")}
                  for k, v in sorted(licences.items(), key=lambda kv: (-kv[1]["servers"], kv[0]))},
        licence_strings=[{"raw": r, "spdx": s, "servers": n} for (r, s), n in raw_strings.most_common()],
        executable=executable,
        shipped_schemas=dict(Counter(_schema_kind(e) for e in entries if e.bucket == "shipped").most_common()),
        docstring_check=docstring_check(entries),
        domains=len(domains),
        examples=_examples(entries),
        settings={**(options or {}), "near_threshold": NEAR_THRESHOLD, "slug_max": SLUG_MAX,
                  "overview_max": OVERVIEW_MAX, "reserved_names": sorted(RESERVED)},
    )  # fmt: skip


def _read_all(
    files: list[Path], progress: Callable[[str], None] | None
) -> tuple[list[Server], list[Entry], list[dict[str, str]], int]:
    servers: list[Server] = []
    entries: list[Entry] = []
    unreadable: list[dict[str, str]] = []
    mirrored = 0
    for path in files:
        try:
            server, raws, mirrors = read_server(path)
        except CrawlFileError as e:
            unreadable.append({"file": path.name, "reason": str(e)})
        except Exception as e:  # a malformed file must never stop the import; it is counted instead
            unreadable.append({"file": path.name, "reason": f"{type(e).__name__}: {e}"})
        else:
            servers.append(server)
            mirrored += mirrors
            for origin, i, raw in raws:
                flat = (
                    isinstance(raw, dict)
                    and "parameters" in raw
                    and not {"input_schema", "inputSchema"} & set(raw)
                )
                shape = "live" if origin == "live" else "flat" if flat else "mcp"
                entries.append(Entry(server=server, origin=origin, index=i, shape=shape, raw=raw))
        if progress is not None:
            progress(path.name)
    return servers, entries, unreadable, mirrored


def _classify(entries: list[Entry], keep_unknown_arguments: bool = False) -> list[Entry]:
    """Put every entry in its terminal bucket (see module doc); returns the shipped ones in input order."""
    siblings: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        if isinstance(e.raw, dict) and isinstance(e.raw.get("name"), str):
            siblings[e.server.file].add(e.raw["name"])
    for e in entries:
        _parse(e, siblings[e.server.file], keep_unknown_arguments)
        if e.bucket is None:
            why = boilerplate_reason(e.name or "", e.description)
            if why is not None:
                e.bucket, e.reason = "boilerplate", why
    dedupe(entries)
    for e in entries:
        if e.bucket is None:
            if e.server.permissive:
                e.bucket = "shipped"
            else:
                e.bucket, e.reason = "licence_excluded", e.server.license or "unspecified"
    return [e for e in entries if e.bucket == "shipped"]


def _build_domains(ship: list[Entry], servers: list[Server]) -> list[DomainSpec]:
    """One DomainSpec per server with shipped tools, through `infer_domain`; sets each `Entry.tool`."""
    names = assign_names([(e.server.slug, e.name or "") for e in ship])
    per_server: dict[str, list[ToolSpec]] = defaultdict(list)
    for e, name in zip(ship, names, strict=True):
        s = e.server
        e.tool = ToolSpec(
            name=name,
            description=e.description,
            input_schema=e.schema or {},
            title=e.title,
            annotations=e.annotations,
            provenance=Provenance(source="crawl", server=s.slug, original_name=e.name or "", package=s.package,
                                  license=s.license),
            taxonomy=Taxonomy(category=s.category, domain=s.domain_label),
        )  # fmt: skip
        per_server[s.slug].append(e.tool)
    by_slug = {s.slug: s for s in servers}
    domains = []
    for slug in sorted(per_server):
        s = by_slug[slug]
        spec = DomainSpec(name=slug, category=s.category, description=_trim(s.overview or s.name),
                          entities=(), tools=tuple(per_server[slug]))  # fmt: skip
        domains.append(infer_domain(spec)[0])
    final = {t.name: t for d in domains for t in d.tools}
    for e in ship:
        e.tool = final[e.tool.name]  # type: ignore[union-attr]  # the tool with its inferred semantics
    return domains


def import_crawl(
    directory: Path | str,
    progress: Callable[[str], None] | None = None,
    *,
    keep_unknown_arguments: bool = False,
) -> CrawlImport:
    """Read every `*.json` crawl file in `directory` and build the crawl domains (see module doc).

    `progress(file_name)` is called after each file is read. A flat entry whose arguments the crawl
    did not capture (no parameter on the page, none in the description's docstring) is `invalid`
    ('arguments_unknown'); `keep_unknown_arguments=True` ships it with an empty object schema instead.
    """
    directory = Path(directory)
    files = sorted(directory.glob("*.json"))
    servers, entries, unreadable, mirrored = _read_all(files, progress)
    _assign_slugs(servers)
    ship = _classify(entries, keep_unknown_arguments)
    domains = _build_domains(ship, servers)
    report = _report(str(directory), len(files), servers, unreadable, mirrored, entries, domains,
                     {"keep_unknown_arguments": keep_unknown_arguments})  # fmt: skip
    return CrawlImport(domains=domains, report=report, entries=entries)
