"""TRL adapter: generated environment classes, the rubric reward, and one short real GRPOTrainer run."""

from __future__ import annotations

import inspect
import json

import pytest

from agentgym.adapters.episode import EpisodeDriver
from agentgym.adapters.pyfunc import UnsupportedSchema, tool_function
from agentgym.adapters.trl import agentgym_rubric, grpo_inputs
from agentgym.spec.tool import ToolSpec
from agentgym.suites.suite import load_suite


@pytest.fixture(scope="module")
def agentic():
    return load_suite("agentic")


def two_tasks(suite):
    """Two single-turn tasks of the agent whose prompt (system prompt + tool schemas) is shortest,
    with a third one left for the priming example: short prompts keep the CPU run short."""

    def size(agent_id):
        tools = sum(len(json.dumps(t.openai_schema())) for t in suite.tools_for(agent_id))
        return len(suite.agents[agent_id].system_prompt) + tools

    by_agent = {}
    for t in suite:
        if not t.user.follow_ups:
            by_agent.setdefault(t.agent_id, []).append(t.id)
    usable = [a for a, ids in by_agent.items() if len(ids) >= 3 and suite.tasks[ids[2]].gold[0].calls]
    for agent in sorted(usable, key=size):  # the first whose tools all run in the simulator
        if all(_gold_passes(suite, tid) for tid in by_agent[agent][:2]):
            return by_agent[agent][:2]
    raise AssertionError("no agentic agent with two simulatable single-turn tasks")


def _gold_passes(suite, task_id):
    driver = EpisodeDriver(suite)
    driver.start(task_id, 0)
    task = suite.tasks[task_id]
    ok = all(
        "error" not in json.loads(driver.call(c.tool, c.arguments)) for turn in task.gold for c in turn.calls
    )
    return driver.finish(task.gold[-1].answer).passed and ok


def test_dataset_and_classes_mirror_the_agent(agentic):
    from transformers.utils import get_json_schema

    ids = two_tasks(agentic)
    t = grpo_inputs(agentic, ids)
    assert t.dataset.column_names == ["prompt", "task_id", "environment"]
    row = t.dataset[0]
    task = agentic.tasks[ids[0]]
    assert row["task_id"] == ids[0] and row["environment"] == task.agent_id
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["prompt"][1]["content"] == task.instruction
    cls = t.environment_factory[task.agent_id]
    public = {n for n, _ in inspect.getmembers(cls, predicate=inspect.isfunction) if not n.startswith("_")}
    assert public == {"reset", *agentic.agents[task.agent_id].tools}
    for spec in agentic.tools_for(task.agent_id):
        schema = get_json_schema(getattr(cls, spec.name))["function"]
        assert schema["name"] == spec.name
        assert set(schema["parameters"]["properties"]) == set(spec.input_schema.get("properties") or {})
        assert set(schema["parameters"].get("required", [])) == set(spec.input_schema.get("required") or [])


def test_gold_path_scores_one_and_bad_calls_are_typed_errors(agentic):
    ids = two_tasks(agentic)
    seen = []
    t = grpo_inputs(agentic, ids, on_episode=seen.append)
    task = agentic.tasks[ids[0]]
    env = t.environment_factory[task.agent_id]()
    env.reset(**t.dataset[0])
    for turn in task.gold:
        for c in turn.calls:
            assert "error" not in json.loads(getattr(env, c.tool)(**c.arguments))
    assert agentgym_rubric([[{"role": "assistant", "content": task.gold[-1].answer}]], [env]) == [1.0]
    assert seen[-1].task_id == task.id and seen[-1].rubric.passed

    env.reset(**t.dataset[1])
    tool = agentic.tools_for(task.agent_id)[0]
    out = json.loads(getattr(env, tool.name)(no_such_argument=1))
    assert out["error"] == "invalid_arguments"
    [score] = agentgym_rubric([[{"role": "assistant", "content": "I cannot help."}]], [env])
    assert score == seen[-1].rubric.score < 1.0
    assert seen[-1].metrics["errors.invalid_arguments"] == 1.0


def test_refusals():
    starter = load_suite("starter")
    base: ToolSpec = next(iter(starter.world.tools.values()))
    for props in ({"from": {"type": "string"}}, {"start-date": {"type": "string"}}):
        spec = base.model_copy(update={"input_schema": {"type": "object", "properties": props}})
        with pytest.raises(UnsupportedSchema, match="not a Python identifier"):
            tool_function(spec, lambda n, a: None)
    multi = next(t.id for t in starter if t.user.follow_ups)
    with pytest.raises(ValueError, match="follow-ups"):
        grpo_inputs(starter, [multi])


@pytest.mark.slow
def test_short_real_grpo_run(agentic, tmp_path):
    """One GRPO step (2 tasks x G=2) of the embedded model on agentic tasks, tools routed into ToolUseEnv."""
    import torch
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from agentgym.adapters.trl import chat_template
    from agentgym.models.embedded import prepare

    torch.manual_seed(0)
    torch.set_num_threads(2)
    ids = two_tasks(agentic)
    # one-shot priming from a third task of the same agent, so the 135M model emits <tool_call> blocks
    shot_task = next(
        t
        for t in agentic
        if t.agent_id == agentic.tasks[ids[0]].agent_id and t.id not in ids and t.gold[0].calls
    )
    call = shot_task.gold[0].calls[0]
    shot = [
        {"role": "user", "content": shot_task.instruction},
        {
            "role": "assistant",
            "content": "<tool_call>\n"
            + json.dumps({"name": call.tool, "arguments": call.arguments})
            + "\n</tool_call>",
        },
    ]
    episodes = []
    t = grpo_inputs(agentic, ids, on_episode=episodes.append, priming=shot)
    rewards_seen = []

    def logged_rubric(completions, environments, **kw):
        scores = agentgym_rubric(completions, environments, **kw)
        rewards_seen.append((scores, [e._driver.result for e in environments]))
        return scores

    logged_rubric.__name__ = "agentgym_rubric"
    model = str(prepare(log=lambda *_: None))
    tok = AutoTokenizer.from_pretrained(model, padding_side="left")
    tok.chat_template = chat_template("qwen2_5")
    cfg = GRPOConfig(
        output_dir=str(tmp_path),
        num_generations=2,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        max_completion_length=32,
        max_tool_calling_iterations=1,
        max_steps=1,
        learning_rate=1e-6,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_vllm=False,
        bf16=False,
        fp16=False,
        use_cpu=True,
        temperature=1.0,
        beta=0.0,
        seed=0,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        args=cfg,
        train_dataset=t.dataset,
        processing_class=tok,
        environment_factory=t.environment_factory,
        reward_funcs=[logged_rubric],
    )
    trainer.train()

    assert trainer.state.global_step == 1
    assert len(episodes) == 4 and {e.task_id for e in episodes} == set(ids)
    # every reward TRL saw is the graded episode's rubric score
    assert len(rewards_seen) == 1
    for scores, results in rewards_seen:
        assert [r.score for r in results] == scores
        assert all(r is not None and r.criteria for r in results)
    assert sorted(e.reward for e in episodes) == sorted(s for scores, _ in rewards_seen for s in scores)
    logs = [entry for entry in trainer.state.log_history if "rewards/agentgym_rubric/mean" in entry]
    assert len(logs) == 1
    # the tool calls TRL ran are the ones the episodes recorded (each call one env turn)
    tool_calls = sum(e.metrics["tool_calls"] for e in episodes)
    assert tool_calls >= 1, "the primed model made no tool call in 4 rollouts"
    for e in episodes:
        assert e.metrics["tool_calls"] == sum(
            len(m.tool_calls or ()) for m in e.messages if m.role == "assistant"
        )
