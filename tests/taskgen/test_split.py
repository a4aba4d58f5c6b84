"""Splits with held-out domains; near-duplicate detection (exact against brute force) and decontamination."""

from __future__ import annotations

import random

from agentgym.spec.agent import AgentSpec
from agentgym.taskgen.split import assign_splits, decontaminate, jaccard, near_duplicates, shingles


def test_shingles_mask_ids_and_numbers():
    assert shingles("Delete session ses_0003 now") == shingles("delete SESSION ses_0417 now")
    assert shingles("Set the pain score to 4") == shingles("Set the pain score to 5")
    assert shingles("Set the pain score to 4") != shingles("Set the mood score to 4")


def test_near_duplicates_match_brute_force():
    rng = random.Random(0)
    words = [
        "set",
        "the",
        "pain",
        "score",
        "of",
        "session",
        "to",
        "change",
        "update",
        "delete",
        "patient",
        "plan",
        "status",
        "booked",
        "cancel",
        "move",
    ]
    a = [" ".join(rng.choices(words, k=rng.randint(4, 9))) for _ in range(150)]
    b = [" ".join(rng.choices(words, k=rng.randint(4, 9))) for _ in range(150)] + a[:10]
    for t in (0.5, 0.8):
        fast = {(i, j) for i, j, _ in near_duplicates(a, b, t)}
        slow = {
            (i, j) for i, x in enumerate(a) for j, y in enumerate(b) if jaccard(shingles(x), shingles(y)) >= t
        }
        assert fast == slow and len(slow) >= 10


def _agents():
    return {
        f"a{i}": AgentSpec(id=f"a{i}", name="x", system_prompt="p", tools=("t",), domains=(f"d{i % 10}",))
        for i in range(40)
    }


def test_heldout_domains_are_test_only(drawn_tasks):
    agents = _agents()
    tasks, heldout = assign_splits(
        drawn_tasks(agents), agents, random.Random(1), heldout_frac=0.2, test_frac=0.1
    )
    assert len(heldout) == 2
    for t in tasks:
        if set(agents[t.agent_id].domains) & heldout:
            assert t.split == "test" and "heldout_domain" in t.tags
    train_domains = {d for t in tasks if t.split == "train" for d in agents[t.agent_id].domains}
    assert not train_domains & heldout
    in_domain_test = {t.agent_id for t in tasks if t.split == "test" and "heldout_domain" not in t.tags}
    assert in_domain_test  # some agents of seen domains are test too


def test_decontaminate_drops_the_train_side(drawn_tasks):
    agents = _agents()
    tasks, _ = assign_splits(drawn_tasks(agents), agents, random.Random(1), 0.2, 0.1)
    test = next(t for t in tasks if t.split == "test")
    copy = next(t for t in tasks if t.split == "train").model_copy(
        update={"instruction": test.instruction + " Thanks!"}
    )
    tasks = [copy if t.id == copy.id else t for t in tasks]
    kept, dropped = decontaminate(tasks, 0.8)
    assert dropped >= 1 and copy.id not in {t.id for t in kept} and test.id in {t.id for t in kept}
    train = [t.instruction for t in kept if t.split == "train"]
    assert not near_duplicates(train, [t.instruction for t in kept if t.split == "test"], 0.8)
