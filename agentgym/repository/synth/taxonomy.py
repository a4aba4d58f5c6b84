"""The taxonomy of synthetic domains: categories → application domains → entities, as YAML data.

Files in `taxonomy/*.yaml` each hold a list of categories:

    - name: Health & Fitness
      domains:
        - name: physio_clinic
          description: Books physiotherapy sessions and tracks treatment plans.
          entities:
            - {name: patient, archetype: person, attributes: [{name: injury, type: string}]}
            - name: session
              archetype: event
              refs: [patient]
              lifecycle: {states: [booked, attended, cancelled],
                          transitions: [{verb: cancel, source: [booked], target: cancelled}, ...]}

`load_taxonomy()` validates every domain as a `DomainBlueprint` (with its category filled in) and
checks what pydantic cannot: unique domain names across files, attribute names that do not shadow
an archetype's, `id`, `status` or a reference field. Errors name the file and domain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentgym.repository.synth.archetypes import ARCHETYPES, RESERVED
from agentgym.repository.synth.blueprint import CategoryBlueprint, DomainBlueprint, Taxonomy
from agentgym.repository.synth.build import BUILDER_VERBS
from agentgym.yamlfile import load_yaml

TAXONOMY_DIR = Path(__file__).parent / "taxonomy"
MAX_DOMAIN_NAME = 28


class TaxonomyError(ValueError):
    """A taxonomy file is invalid."""


def check_blueprint(bp: DomainBlueprint) -> list[str]:
    """Problems pydantic cannot see (empty when the blueprint can be built)."""
    problems = []
    if len(bp.name) > MAX_DOMAIN_NAME:
        problems.append(f"domain name {bp.name!r} is longer than {MAX_DOMAIN_NAME} characters")
    for e in bp.entities:
        for t in e.lifecycle.transitions if e.lifecycle else ():
            if t.verb in BUILDER_VERBS:
                problems.append(
                    f"{e.name}: lifecycle verb {t.verb!r} is one the builder uses for its own tools"
                )
        base = {a.name for a in ARCHETYPES[e.archetype]}
        refs = {f"{r}_id" for r in e.refs}
        seen = set()
        for a in e.attributes:
            if a.name in RESERVED or a.name in base or a.name in refs:
                problems.append(f"{e.name}.{a.name} shadows a reserved, archetype or reference field")
            if a.name in seen:
                problems.append(f"{e.name}.{a.name} is declared twice")
            seen.add(a.name)
    return problems


def load_taxonomy(root: Path = TAXONOMY_DIR) -> Taxonomy:
    categories: dict[str, list[DomainBlueprint]] = {}
    seen: dict[str, Path] = {}
    files = sorted(root.glob("*.yaml"))
    if not files:
        raise TaxonomyError(f"no taxonomy files in {root}")
    for f in files:
        raw: Any = load_yaml(f.read_text(encoding="utf-8")) or []
        if not isinstance(raw, list):
            raise TaxonomyError(f"{f}: expected a list of categories")
        for cat in raw:
            for d in cat.get("domains", []):
                try:
                    bp = DomainBlueprint.model_validate({**d, "category": cat["name"]})
                except (ValidationError, KeyError, TypeError) as e:
                    raise TaxonomyError(f"{f}: domain {d.get('name', '?')!r}: {e}") from e
                problems = check_blueprint(bp)
                if problems:
                    raise TaxonomyError(f"{f}: domain {bp.name!r}: " + "; ".join(problems))
                if bp.name in seen:
                    raise TaxonomyError(f"{f}: domain {bp.name!r} also defined in {seen[bp.name]}")
                seen[bp.name] = f
                categories.setdefault(cat["name"], []).append(bp)
    return Taxonomy(
        categories=tuple(CategoryBlueprint(name=n, domains=tuple(ds)) for n, ds in categories.items())
    )
