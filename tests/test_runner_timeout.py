"""Per-episode time-outs in the runner: a cut episode is a finished, truncated, ungraded trajectory,
written once and skipped on resume; the env it ran on is replaced, so later episodes are unaffected."""

from __future__ import annotations

import asyncio

import pytest

from agentgym.env.tool_env import ToolUseEnv
from agentgym.policies import OraclePolicy
from agentgym.runner import TIMEOUT, EnvPool, run_episode_with_timeout, run_episodes
from agentgym.spec.jsonl import read_jsonl
from agentgym.spec.trajectory import Trajectory

SLOW = "calendar-cancel-demo"  # three gold turns: call, call, answer
FAST = ["calendar-dentist-time", "calendar-hiring-location", "calendar-create-gym"]


class SleepyOracle(OraclePolicy):
    """The oracle, except that on `SLOW` its turn number `stall_at` sleeps far past any limit."""

    def __init__(self, stall_at: int = 1) -> None:
        super().__init__("hermes")
        self.stall_at = stall_at

    def start(self, task, messages, tools):
        super().start(task, messages, tools)
        self._task, self._turn = task.id, 0

    async def act(self, observation):
        self._turn += 1
        if self._task == SLOW and self._turn > self.stall_at:
            await asyncio.sleep(60)
        return await super().act(observation)


def test_timed_out_episode_is_recorded_once_and_resume_skips_it(starter, tmp_path):
    out = tmp_path / "t.jsonl"
    made, seen = [], []

    def make_env():
        made.append(1)
        return ToolUseEnv(starter)

    jobs = [(SLOW, 0), *[(t, 0) for t in FAST]]
    run = run_episodes(
        make_env, SleepyOracle, jobs, out=out, concurrency=1, on_done=seen.append, episode_timeout_s=0.3
    )
    trajs = asyncio.run(run)
    assert len(trajs) == len(seen) == 4  # the cut episode is counted by the progress callback too
    cut = next(t for t in trajs if t.task_id == SLOW)
    assert (cut.truncated, cut.terminated, cut.end_reason) == (True, False, TIMEOUT)
    assert cut.rubric is None and cut.reward == 0.0 and cut.metrics["timeout_s"] == 0.3
    # what the env had accumulated: the first (gold) turn was played, its tool result is there
    assert len(cut.turns) == 1 and [m.role for m in cut.messages] == ["system", "user", "assistant", "tool"]
    assert cut.id == f"{SLOW}/0/oracle" and cut.seed is not None
    # the env that was cut was replaced, and the next episodes on the fresh one score as usual
    assert len(made) == 2
    assert all(t.reward == 1.0 and t.end_reason == "answered" for t in trajs if t.task_id != SLOW)
    stored = list(read_jsonl(out, Trajectory))
    assert sorted(t.id for t in stored) == sorted(t.id for t in trajs) and stored[0] == cut

    before = out.read_bytes()
    again = asyncio.run(run_episodes(make_env, SleepyOracle, jobs, out=out, episode_timeout_s=0.3))
    assert again == [] and out.read_bytes() == before


async def test_cut_during_reset_records_an_empty_episode(starter):
    class SlowReset(ToolUseEnv):
        async def areset(self, *, seed=None, options=None):
            await asyncio.sleep(60)

    traj = await run_episode_with_timeout(SlowReset(starter), OraclePolicy(), SLOW, 3, 0.1)
    assert (traj.end_reason, traj.truncated, traj.messages, traj.turns) == (TIMEOUT, True, (), ())
    assert traj.id == f"{SLOW}/3/oracle" and traj.agent_id == starter.tasks[SLOW].agent_id


async def test_no_limit_and_fast_episodes_are_untouched(starter):
    env = ToolUseEnv(starter)
    plain = await run_episode_with_timeout(env, OraclePolicy(), FAST[0], 0, None)
    limited = await run_episode_with_timeout(env, OraclePolicy(), FAST[0], 0, 30.0)
    assert plain.end_reason == limited.end_reason == "answered" and plain.reward == limited.reward == 1.0
    assert "timeout_s" not in limited.metrics


async def test_a_timeout_error_of_the_episode_itself_is_not_a_cut(starter):
    class Raises(OraclePolicy):
        async def act(self, observation):
            raise TimeoutError("the model server timed out")

    with pytest.raises(TimeoutError, match="model server"):
        await run_episode_with_timeout(ToolUseEnv(starter), Raises(), FAST[0], 0, 30.0)


async def test_concurrent_cut_does_not_hold_up_the_others(starter):
    pool = EnvPool(
        lambda: ToolUseEnv(starter), lambda: SleepyOracle(stall_at=0), size=4, episode_timeout_s=0.5
    )
    trajs = await asyncio.gather(*(pool.play(t, 0) for t in [SLOW, *FAST]))
    pool.close()
    assert [t.end_reason for t in trajs] == [TIMEOUT, "answered", "answered", "answered"]
    assert trajs[0].turns == ()  # cut on its first turn: reset done, nothing stepped


def test_bad_limits_are_refused(starter):
    with pytest.raises(ValueError, match="> 0"):
        EnvPool(lambda: ToolUseEnv(starter), OraclePolicy, size=1, episode_timeout_s=0)
    with pytest.raises(ValueError, match="pool size"):
        EnvPool(lambda: ToolUseEnv(starter), OraclePolicy, size=0)
    with pytest.raises(ValueError, match="> 0"):
        asyncio.run(run_episode_with_timeout(ToolUseEnv(starter), OraclePolicy(), FAST[0], 0, -1.0))
