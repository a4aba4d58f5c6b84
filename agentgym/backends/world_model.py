"""WorldModelBackend: an LLM answers calls to tools whose semantics are not known.

Given the tool's documentation, the relevant state slice (the records of the tool's own server
namespace, capped), the episode's earlier calls to that server and the arguments, the model
(any `ChatModel`) writes `{"result": ..., "state_patch": [...]}` (prompt:
`prompts/world_model.txt`). The result must validate against the tool's output schema when it has
one (one retry with the error shown, then an `invalid_output` error); a patch may only put or
remove records in the server's own collections, with string ids, valid against the entity's
schema when one is known — and a read-only tool (by `readOnlyHint`, else by its verb) may not patch
at all: its patch is refused and counted, its result still returned. Faults are injected as for
simulated tools; results and patches go through the replay cache keyed on the state lineage, so
an episode replays exactly without calling the model again. Counters per episode:
`episode.extras["world_model"]`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from agentgym.backends.base import Episode, ToolResult
from agentgym.jsonutil import dumps_str, first_object
from agentgym.models.base import ChatModel, SamplingParams
from agentgym.repository.semantics import looks_read_only
from agentgym.schema import validator
from agentgym.spec.tool import ToolSpec
from agentgym.spec.world import EntitySpec

PROMPT = (Path(__file__).parent / "prompts" / "world_model.txt").read_text(encoding="utf-8")


def server_of(tool: ToolSpec) -> str:
    return tool.name.split("__", 1)[0] if "__" in tool.name else tool.provenance.server


class WorldModelBackend:
    name: ClassVar[str] = "world_model"
    is_sync = False

    def __init__(
        self,
        model: ChatModel,
        *,
        entities: dict[str, EntitySpec] | None = None,
        sampling: SamplingParams | None = None,
        max_state_records: int = 40,
        history: int = 8,
        retries: int = 1,
    ) -> None:
        self.model = model
        self.entities = entities or {}
        self.sampling = sampling or SamplingParams(temperature=0.0, max_new_tokens=384)
        self.max_state_records = max_state_records
        self.history = history
        self.retries = retries

    def handles(self, tool: ToolSpec) -> bool:
        return tool.semantics is None

    async def start_episode(self, episode: Episode) -> None:
        episode.extras.setdefault("world_model", Counter())

    async def end_episode(self, episode: Episode) -> None:
        return None

    def _prompt(
        self, tool: ToolSpec, args: dict[str, Any], episode: Episode, read_only: bool, error: str | None
    ) -> str:
        server = server_of(tool)
        state: dict[str, list[Any]] = {}
        left = self.max_state_records
        for col, table in episode.state.collections.items():
            if col.startswith(server + ".") and left > 0:
                recs = list(table.values())[-left:]
                state[col] = recs
                left -= len(recs)
        hist = episode.extras.setdefault("world_model_history", {}).get(server, [])[-self.history :]
        text = PROMPT.format(
            server=server,
            name=tool.name,
            description=tool.description,
            input_schema=dumps_str(tool.input_schema),
            output=("JSON matching this schema: " + dumps_str(tool.output_schema))
            if tool.output_schema
            else "any JSON value that fits the description",
            mode="READ-ONLY: it must not change anything"
            if read_only
            else "allowed to change the server's state",
            state=dumps_str(state) if state else "(empty)",
            history="\n".join(
                f"{h['tool']}({dumps_str(h['arguments'])}) -> {dumps_str(h['result'])[:400]}" for h in hist
            )
            or "(none)",
            arguments=dumps_str(args),
            patch_rule="A read-only tool returns an empty state_patch."
            if read_only
            else "Include in state_patch every record this call creates, changes or deletes.",
        )
        if error:
            text += f"\n\nYour previous answer was rejected: {error}. Answer again."
        return text

    async def call(self, tool: ToolSpec, arguments: dict[str, Any], episode: Episode) -> ToolResult:
        stats: Counter[str] = episode.extras.setdefault("world_model", Counter())
        episode.calls += 1
        fault = episode.faults.draw(tool.name, False)
        if fault.error is not None:
            return ToolResult.failure(fault.error, fault.message, injected=True)
        read_only = looks_read_only(tool)
        key = b""
        if episode.cache is not None:
            key = episode.cache.key(episode.state.lineage, tool.name, arguments)
            hit = episode.cache.get(key)
            if hit is not None:
                stats["cache_hits"] += 1
                result, patch = hit
                self._apply(tool, patch, episode, stats)
                self._remember(tool, arguments, result, episode)
                return ToolResult(dumps_str(result), result, cached=True)
        error = None
        for _ in range(self.retries + 1):
            stats["model_calls"] += 1
            reply = await self.model.generate(
                [{"role": "user", "content": self._prompt(tool, arguments, episode, read_only, error)}],
                None,
                self.sampling,
            )
            obj = first_object(reply.text)
            if obj is None or "result" not in obj:
                error = 'no JSON object with a "result" key'
                continue
            result = obj["result"]
            if tool.output_schema is not None:
                why = validator(tool.output_schema).check(result)
                if why is not None:
                    error = f"the result does not match the output schema: {why}"
                    continue
            patch = obj.get("state_patch") or []
            if not isinstance(patch, list):
                patch = []
            if read_only and patch:
                stats["patches_refused_read_only"] += 1
                patch = []
            patch = self._valid_ops(tool, patch, episode, stats)
            if episode.cache is not None:
                episode.cache.put(key, (result, patch))
            self._apply(tool, patch, episode, stats)
            self._remember(tool, arguments, result, episode)
            return ToolResult(dumps_str(result), result)
        stats["invalid_output"] += 1
        return ToolResult.failure(
            "invalid_output", f"the simulated {tool.name} gave no valid answer: {error}"
        )

    def _valid_ops(
        self, tool: ToolSpec, patch: list[Any], episode: Episode, stats: Counter[str]
    ) -> list[dict[str, Any]]:
        server = server_of(tool)
        ok = []
        for op in patch:
            col = op.get("collection") if isinstance(op, dict) else None
            if not isinstance(col, str) or not col.startswith(server + "."):
                stats["patch_ops_refused"] += 1
                continue
            if (
                op.get("op") == "put"
                and isinstance(op.get("record"), dict)
                and isinstance(op["record"].get("id"), str)
            ):
                ent = self.entities.get(col)
                if ent is not None and validator(ent.record_schema).check(op["record"]) is not None:
                    stats["patch_ops_refused"] += 1
                    continue
                ok.append({"op": "put", "collection": col, "record": json.loads(dumps_str(op["record"]))})
            elif op.get("op") == "remove" and isinstance(op.get("id"), str):
                ok.append({"op": "remove", "collection": col, "id": op["id"]})
            else:
                stats["patch_ops_refused"] += 1
        return ok

    @staticmethod
    def _apply(tool: ToolSpec, patch: list[dict[str, Any]], episode: Episode, stats: Counter[str]) -> None:
        for op in patch:
            if op["op"] == "put":
                episode.state.put(op["collection"], dict(op["record"]))
            else:
                episode.state.remove(op["collection"], op["id"])
            stats["patch_ops_applied"] += 1

    @staticmethod
    def _remember(tool: ToolSpec, args: dict[str, Any], result: Any, episode: Episode) -> None:
        hist = episode.extras.setdefault("world_model_history", {}).setdefault(server_of(tool), [])
        hist.append({"tool": tool.name, "arguments": args, "result": result})
