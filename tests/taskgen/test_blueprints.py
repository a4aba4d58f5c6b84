"""Gold-blueprint tasks: the chain runs on the simulator, the rubric is read off what happened,
the oracle scores 1.0 and doing nothing (or the wrong thing) scores less."""

from __future__ import annotations

import asyncio
import random

import pytest

from agentgym.env.tool_env import ToolUseEnv
from agentgym.policies.oracle import OraclePolicy
from agentgym.runner import run_episode
from agentgym.spec.agent import AgentSpec
from agentgym.spec.task import GoldCall, GoldTurn
from agentgym.suites.suite import TaskSuite
from agentgym.suites.validate import check_task
from agentgym.taskgen.blueprints import BLUEPRINTS, LEVELS
from agentgym.taskgen.generate import TaskGenerator
from agentgym.taskgen.sketch import AgentView, Reject, Sketch, derive_rubric
from agentgym.taskgen.worldgen import sample_state
from agentgym.world.state import WorldState

DOMAINS = ("physio_clinic", "coupon_promotion_engine")
REAL = "exa"


@pytest.fixture(scope="module")
def world(repo):
    return repo.world([*DOMAINS, REAL])


@pytest.fixture(scope="module")
def agent(world):
    tools = [t for t in world.tools if t.split("__")[0] in (*DOMAINS, REAL)]
    return AgentSpec(
        id="everything",
        name="Test agent",
        system_prompt="You help.",
        tools=tuple(tools),
        domains=(*DOMAINS, REAL),
    )


def draw(world, agent, name, seed=0, tries=60):
    """A sketch of blueprint `name` that worked, and the task made from it."""
    view = AgentView(world, agent)
    gen = TaskGenerator(world)
    for i in range(tries):
        rng = random.Random(f"{seed}/{name}/{i}")
        sk = Sketch(
            world, view, WorldState.from_snapshot(sample_state(world, view.cols, rng)), rng, "neutral"
        )
        sk.kind = name
        try:
            BLUEPRINTS[name][1](sk)
            sk.rubric = derive_rubric(sk)
        except Reject:
            continue
        return sk, gen._task(agent, sk, f"t-{name}", rng)
    raise AssertionError(f"blueprint {name} never worked on the test agent")


@pytest.fixture(scope="module")
def drawn(world, agent):
    return {name: draw(world, agent, name) for name in BLUEPRINTS}


@pytest.fixture(scope="module")
def suite(world, agent, drawn):
    return TaskSuite("bp", world, {agent.id: agent}, {t.id: t for _, t in drawn.values()})


@pytest.mark.parametrize("name", sorted(BLUEPRINTS))
def test_oracle_one_noop_low(suite, drawn, name):
    env = ToolUseEnv(suite)
    check = check_task(env, f"t-{name}")
    assert check.ok, check.problems
    assert check.oracle == 1.0 and check.noop < 0.5


@pytest.mark.parametrize("name", sorted(BLUEPRINTS))
def test_difficulty_follows_the_gold_chain(drawn, name):
    sk, task = drawn[name]
    calls = sum(len(g.calls) for g in task.gold)
    assert calls == sk.num_calls
    if task.difficulty == "simple":
        assert calls == 1 and not task.user.follow_ups
    if task.difficulty == "complex":
        assert calls >= 5 and (task.user.follow_ups or sk.failed_calls)
    if LEVELS[name] == "complex":
        assert task.difficulty == "complex"


def _ids(result):
    return {r["id"] for r in result.get("items", ())} | ({result["id"]} if "id" in result else set())


@pytest.mark.parametrize(
    "name",
    [
        "find_update",
        "find_action",
        "find_delete",
        "create_for_parent",
        "move_child",
        "bulk_action",
        "bulk_update_ask",
        "list_children",
    ],
)
def test_ids_are_read_then_used(drawn, name):
    """Each write's target was returned by an earlier read and was never said by the user."""
    sk, task = drawn[name]
    seen: set[str] = set()
    writes = 0
    for s in sk.steps:
        sem = s.tool.semantics
        if sem.operation in ("get", "list", "search"):
            seen |= _ids(s.result)
            continue
        writes += 1
        used = {
            v
            for a, v in s.args.items()
            if isinstance(v, str)
            and a in (sem.id_arg, *s.tool.input_schema.get("properties", {}))
            and "_0" in v
        }
        assert used and used <= seen | {
            r["id"]
            for st in sk.steps
            if st.ok and isinstance(st.result, dict) and "id" in st.result
            for r in [st.result]
        }
        assert not any(u in task.instruction for u in used if u in seen)
    if name != "list_children":
        assert writes >= 1
        assert any(c.kind == "checkpoint" for c in task.rubric.criteria)


def test_state_criteria_come_from_the_diff(drawn):
    sk, task = drawn["bulk_update_ask"]
    updated = [c for c in task.rubric.criteria if c.kind == "state"]
    writes = [s for s in sk.steps if s.tool.semantics.operation == "update"]
    assert len(updated) == len(writes) >= 3
    forbidden = next(c for c in task.rubric.criteria if c.kind == "forbidden")
    assert sorted(forbidden.allow_changes) == sorted(
        f"{s.tool.semantics.collection}/{s.args[s.tool.semantics.id_arg]}" for s in writes
    )


def test_ask_blueprints_hide_the_value(drawn):
    for name in ("ask_then_update", "bulk_update_ask"):
        _, task = drawn[name]
        ((key, value),) = task.user.hidden_facts.items()
        assert str(value) not in task.instruction
        assert str(value) in task.user.follow_ups[0]
        assert task.gold[0].answer and "?" in task.gold[0].answer  # the agent asks first
        assert "multi_turn" in task.tags and "ask_user" in task.tags


def test_recovery_and_refusal_keep_the_failed_call(drawn):
    for name in ("bulk_action", "bulk_filtered_action", "refused_action"):
        sk, task = drawn[name]
        assert sk.failed_calls >= 1
        assert all(s.error == "precondition_failed" for s in sk.steps if s.executed and not s.ok)
    _, refused = drawn["refused_action"]
    forbidden = next(c for c in refused.rubric.criteria if c.kind == "forbidden")
    assert forbidden.allow_changes == ()  # refusing means changing nothing


def test_real_tools_are_graded_by_call_pattern_and_judge(drawn):
    _, task = drawn["real_call"]
    kinds = {c.kind for c in task.rubric.criteria}
    assert kinds == {"call", "judge"}
    call = next(c for c in task.rubric.criteria if c.kind == "call")
    assert call.succeeded is None and call.args == task.gold[0].calls[0].arguments


def _replay(suite, task, gold):
    env = ToolUseEnv(suite)
    altered = task.model_copy(update={"gold": gold})

    class Policy(OraclePolicy):
        def start(self, t, messages, tools):
            super().start(altered, messages, tools)

    traj = asyncio.run(run_episode(env, Policy(), task.id, 0))
    return traj.reward


def test_rubric_rejects_wrong_work(suite, drawn):
    """Mutations of the gold path lose credit: another target, a skipped lookup, collateral damage."""
    _, task = drawn["find_update"]
    lookup, write, answer = task.gold
    call = write.calls[0]
    (id_arg, target), *_ = ((k, v) for k, v in call.arguments.items() if isinstance(v, str) and "_0" in v)
    wrong = target[:-1] + ("2" if target[-1] != "2" else "3")
    bad_target = GoldTurn(calls=(GoldCall(tool=call.tool, arguments={**call.arguments, id_arg: wrong}),))
    assert _replay(suite, task, (lookup, bad_target, answer)) < 0.5  # the wrong record (or none)
    assert _replay(suite, task, (write, answer)) < 1.0  # no lookup first: the checkpoint fails
    assert _replay(suite, task, (lookup, answer)) < 0.5  # never wrote, only claimed it
    # the right work plus collateral damage (another record deleted) is gated to 0
    col = suite.world.tools[call.tool].semantics.collection
    other = next(r["id"] for r in task.initial_state.collections[col] if r["id"] != target)
    delete = next(
        t
        for t in suite.agents[task.agent_id].tools
        if suite.world.tools[t].semantics
        and suite.world.tools[t].semantics.operation == "delete"
        and suite.world.tools[t].semantics.collection == col
    )
    sem = suite.world.tools[delete].semantics
    extra = GoldTurn(calls=(GoldCall(tool=delete, arguments={sem.id_arg: other}),))
    assert _replay(suite, task, (lookup, write, extra, answer)) == 0.0


def test_generator_is_deterministic_and_dedups(world, agent):
    a = TaskGenerator(world).for_agent(agent, 12, random.Random(5))
    b = TaskGenerator(world).for_agent(agent, 12, random.Random(5))
    assert [t.model_dump() for t in a] == [t.model_dump() for t in b]
    assert len({t.instruction for t in a}) == len(a) >= 10


def test_paraphraser_rewords_only_when_facts_survive(world, agent, scripted):
    keep = scripted([lambda msgs: "Kindly: " + msgs[-1]["content"].split("Request: ", 1)[1]])
    gen = TaskGenerator(world, paraphraser=keep)
    tasks = gen.for_agent(agent, 4, random.Random(9))
    assert gen.paraphrased == len(tasks) and all(t.instruction.startswith("Kindly: ") for t in tasks)
    drop = scripted(["Please do the usual thing."])
    gen = TaskGenerator(world, paraphraser=drop)
    tasks = gen.for_agent(agent, 4, random.Random(9))
    assert gen.paraphrased == 0 and not any(t.instruction.startswith("Please do the usual") for t in tasks)
