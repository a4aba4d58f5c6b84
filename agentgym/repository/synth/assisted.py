"""Model-assisted blueprint generation: a ChatModel proposes domains; every proposal is validated,
repaired where that is safe, or rejected with a reason.

`AssistedSource(model, categories, n_per_category)` is a `BlueprintSource`. For each request it
fills `prompts/propose_domain.txt` (the category, the domains that already exist there), reads the
first JSON object of the reply, and repairs: names slugged to snake_case, archetype synonyms mapped
("user" → person, "product" → item, ...), unknown attribute types → string, enum attributes
without values → string, attributes shadowing reserved or archetype fields dropped, transitions
naming unknown states dropped (a lifecycle left without transitions is removed), references to
unknown entities dropped, entities beyond 4 dropped. What still fails `DomainBlueprint` or
`check_blueprint`, or repeats an existing name, is rejected. `stats` counts proposals, accepted,
repaired and rejected (with reasons), so acceptance is measured, not assumed.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from agentgym.jsonutil import first_object
from agentgym.models.base import ChatModel, SamplingParams
from agentgym.repository.synth.archetypes import ARCHETYPES, RESERVED
from agentgym.repository.synth.blueprint import Archetype, AttrType, DomainBlueprint
from agentgym.repository.synth.taxonomy import MAX_DOMAIN_NAME, check_blueprint

PROMPT = (Path(__file__).parent / "prompts" / "propose_domain.txt").read_text(encoding="utf-8")
ARCHETYPE_SYNONYMS = {
    "user": "person",
    "customer": "person",
    "member": "person",
    "employee": "person",
    "patient": "person",
    "company": "organization",
    "vendor": "organization",
    "supplier": "organization",
    "team": "organization",
    "product": "item",
    "good": "item",
    "part": "item",
    "sku": "item",
    "booking": "event",
    "appointment": "event",
    "meeting": "event",
    "reservation": "event",
    "note": "document",
    "article": "document",
    "report": "document",
    "file": "document",
    "payment": "transaction",
    "invoice": "transaction",
    "order": "transaction",
    "location": "place",
    "site": "place",
    "venue": "place",
    "ticket": "task",
    "issue": "task",
    "job": "task",
    "device": "asset",
    "equipment": "asset",
    "vehicle": "asset",
    "comment": "message",
    "post": "message",
    "reading": "measurement",
    "metric": "measurement",
    "plan": "subscription",
    "video": "media",
    "image": "media",
    "profile": "account",
}
TYPE_SYNONYMS = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "double": "number",
    "bool": "boolean",
    "timestamp": "datetime",
    "time": "datetime",
    "list": "tags",
    "array": "tags",
    "decimal": "money",
    "price": "money",
    "currency": "money",
    "uri": "url",
    "link": "url",
    "id": "code",
}
ARCHETYPE_NAMES = set(get_args(Archetype))
TYPE_NAMES = set(get_args(AttrType))


def _slug(s: Any) -> str:
    s = re.sub(r"[^a-z0-9]+", "_", str(s).strip().lower()).strip("_")
    return s if s and s[0].isalpha() else f"x_{s}" if s else ""


def repair(raw: dict[str, Any], category: str) -> tuple[dict[str, Any], list[str]]:
    """A cleaned copy of a proposed blueprint and the repairs made."""
    fixes: list[str] = []
    name = _slug(raw.get("name", ""))[:MAX_DOMAIN_NAME].rstrip("_")
    if name != raw.get("name"):
        fixes.append("domain name slugged")
    entities = [e for e in raw.get("entities") or [] if isinstance(e, dict)]
    if len(entities) > 4:
        entities, _ = entities[:4], fixes.append("entities beyond 4 dropped")
    out_entities = []
    for e in entities:
        ename = _slug(e.get("name", ""))
        arch = _slug(e.get("archetype", ""))
        if arch not in ARCHETYPE_NAMES:
            mapped = ARCHETYPE_SYNONYMS.get(arch) or ARCHETYPE_SYNONYMS.get(ename)
            if mapped is None:
                fixes.append(f"entity {ename!r}: unknown archetype {arch!r} → item")
                mapped = "item"
            else:
                fixes.append(f"entity {ename!r}: archetype {arch!r} → {mapped}")
            arch = mapped
        base = {a.name for a in ARCHETYPES[arch]}
        attrs, seen = [], set()
        for a in e.get("attributes") or []:
            if not isinstance(a, dict):
                continue
            an, at = _slug(a.get("name", "")), _slug(a.get("type", "string"))
            at = at if at in TYPE_NAMES else TYPE_SYNONYMS.get(at, "string")
            values = [str(v) for v in a.get("values") or [] if str(v).strip()] if at == "enum" else []
            if at == "enum" and not values:
                at = "string"
            if not an or an in RESERVED or an in base or an.endswith("_id") or an in seen:
                fixes.append(f"attribute {an!r} of {ename!r} dropped")
                continue
            seen.add(an)
            attrs.append(
                {"name": an, "type": at, "values": values, "required": bool(a.get("required", False))}
            )
        out = {
            "name": ename,
            "archetype": arch,
            "description": str(e.get("description", ""))[:300],
            "attributes": attrs,
            "refs": [_slug(r) for r in e.get("refs") or []],
        }
        lc = e.get("lifecycle")
        if isinstance(lc, dict):
            states = list(dict.fromkeys(_slug(s) for s in lc.get("states") or [] if _slug(s)))
            trans = []
            for t in lc.get("transitions") or []:
                if not isinstance(t, dict):
                    continue
                src = [_slug(s) for s in t.get("source") or []]
                tgt = _slug(t.get("target", ""))
                if src and tgt in states and all(s in states for s in src) and _slug(t.get("verb", "")):
                    trans.append({"verb": _slug(t["verb"]), "source": src, "target": tgt})
                else:
                    fixes.append(f"transition {t.get('verb')!r} of {ename!r} dropped")
            if len(states) >= 2 and trans:
                out["lifecycle"] = {
                    "states": states,
                    "transitions": list({t["verb"]: t for t in trans}.values()),
                }
            else:
                fixes.append(f"lifecycle of {ename!r} dropped")
        out_entities.append(out)
    names = {e["name"] for e in out_entities}
    for e in out_entities:
        kept = [r for r in e["refs"] if r in names and r != e["name"]]
        if kept != e["refs"]:
            fixes.append(f"references of {e['name']!r} to unknown entities dropped")
        e["refs"] = kept
    return {
        "name": name,
        "category": category,
        "description": str(raw.get("description", ""))[:300],
        "entities": out_entities,
    }, fixes


class AssistedSource:
    """Blueprints proposed by a model (see module doc)."""

    name = "model-assisted"

    def __init__(
        self,
        model: ChatModel,
        categories: Iterable[str],
        n_per_category: int = 1,
        existing: Iterable[str] = (),
        sampling: SamplingParams | None = None,
    ) -> None:
        self.model = model
        self.categories = list(categories)
        self.n = n_per_category
        self.existing = set(existing)
        self.sampling = sampling or SamplingParams(temperature=0.8, max_new_tokens=700)
        self.stats: Counter[str] = Counter()
        self.rejections: list[str] = []

    def propose(self, category: str, seed: int) -> DomainBlueprint | None:
        self.stats["proposals"] += 1
        prompt = PROMPT.format(
            category=category,
            existing=", ".join(sorted(self.existing)[:40]) or "none",
            archetypes="|".join(sorted(ARCHETYPE_NAMES)),
            types="|".join(sorted(TYPE_NAMES)),
        )
        sampling = self.sampling.model_copy(update={"seed": seed})
        reply = asyncio.run(self.model.generate([{"role": "user", "content": prompt}], None, sampling))
        raw = first_object(reply.text)
        if raw is None:
            return self._reject("no JSON object in the reply")
        fixed, fixes = repair(raw, category)
        try:
            bp = DomainBlueprint.model_validate(fixed)
        except ValidationError as e:
            return self._reject(f"invalid after repair: {e.errors()[0]['msg']}")
        problems = check_blueprint(bp)
        if problems:
            return self._reject(problems[0])
        if bp.name in self.existing:
            return self._reject(f"domain {bp.name!r} already exists")
        self.existing.add(bp.name)
        self.stats["accepted"] += 1
        self.stats["repaired"] += bool(fixes)
        return bp

    def _reject(self, why: str) -> None:
        self.stats["rejected"] += 1
        self.rejections.append(why)
        return None

    def blueprints(self) -> Iterator[DomainBlueprint]:
        for ci, cat in enumerate(self.categories):
            for k in range(self.n):
                bp = self.propose(cat, seed=ci * 1000 + k)
                if bp is not None:
                    yield bp
