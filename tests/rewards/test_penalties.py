"""Every penalty, gate and bonus formula against hand-computed values (built trajectories, no world)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentgym.rewards.penalties import (
    FormatGate,
    LanguageConsistency,
    MalformedCallPenalty,
    OverlongPenalty,
    RepetitionPenalty,
    TokenBudget,
    detect_language,
    repeated_calls,
    repeated_ngram_share,
    same_language,
)

GET = ("notes__get", {"id": "n1"})


def one(reward, task, traj):
    return reward.score_one(task, traj)


# ---- format gate -------------------------------------------------------------------------------


def test_format_gate_passes_clean_episode(tb):
    s = one(FormatGate(), tb.task(), tb.traj(tb.calls(GET), tb.answer("Note n1 says hi.")))
    assert s.value == 1.0
    assert s.detail == {"parse_errors": 0, "answered": 1.0, "cut": 0.0, "markup": 0.0}


@pytest.mark.parametrize(
    ("turns", "key", "value"),
    [
        (lambda tb: [tb.calls(("", "{bad", "parse_error")), tb.answer("Done.")], "parse_errors", 1),
        (lambda tb: [tb.calls(GET), tb.answer("   ")], "answered", 0.0),
        (lambda tb: [tb.calls(GET)], "answered", 0.0),  # ended on calls: no answer at all
        (lambda tb: [tb.answer("The note says", finish="length")], "cut", 1.0),
        (lambda tb: [tb.answer('Done <tool_call>{"name": "x"}')], "markup", 1.0),
        (lambda tb: [tb.answer("Done.<|im_end|>")], "markup", 1.0),
    ],
)
def test_format_gate_zero_on_malformed(tb, turns, key, value):
    s = one(FormatGate(), tb.task(), tb.traj(*turns(tb)))
    assert s.value == 0.0
    assert s.detail[key] == value


def test_format_gate_options_relax_it(tb):
    no_answer = tb.traj(tb.calls(GET))
    assert one(FormatGate(require_answer=False), tb.task(), no_answer).value == 1.0
    markup = tb.traj(tb.answer("use <think> tags"))
    assert one(FormatGate(forbid_markup=False), tb.task(), markup).value == 1.0
    # a parse error is never relaxed
    bad = tb.traj(tb.calls(("", "{", "parse_error")))
    assert one(FormatGate(require_answer=False), tb.task(), bad).value == 0.0


def test_other_call_errors_do_not_break_format(tb):
    t = tb.traj(tb.calls(("notes__get", {"id": "zz"}, "not_found")), tb.answer("No such note."))
    assert one(FormatGate(), tb.task(), t).value == 1.0


# ---- token budget (K2) -------------------------------------------------------------------------


def test_token_budget_by_difficulty_and_tag(tb):
    r = TokenBudget(budgets={"simple": 100, "complex": 300, "billing": 50}, penalty=-1.0)
    t150 = tb.traj(tb.calls(GET, tokens=120), tb.answer("ok", tokens=30))  # L = 150
    assert one(r, tb.task(difficulty="simple"), t150).value == -1.0  # 150 > 100
    s = one(r, tb.task(difficulty="complex"), t150)
    assert s.value == 0.0 and s.detail["budget"] == 300 and s.detail["tokens"] == 150
    tagged = one(r, tb.task(difficulty="complex", tags=("misc", "billing")), t150)
    assert tagged.value == -1.0 and tagged.detail["budget"] == 50  # the tag wins over difficulty
    exact = tb.traj(tb.answer("ok", tokens=100))
    assert one(r, tb.task(difficulty="simple"), exact).value == 0.0  # L == budget is within


def test_token_budget_truncation_signals(tb):
    r = TokenBudget(penalty=-0.5)  # no budgets: only the env / model truncation signals count
    env_cut = tb.traj(tb.calls(GET), truncated=True, end_reason="token_budget")
    assert one(r, tb.task(), env_cut).value == -0.5
    length_cut = tb.traj(tb.calls(GET, finish="length"), tb.answer("ok"))
    s = one(r, tb.task(), length_cut)
    assert s.value == -0.5 and s.detail["length_cut"] == 1.0 and "budget" not in s.detail
    turns_cut = tb.traj(tb.calls(GET), truncated=True, end_reason="max_turns")
    assert one(r, tb.task(), turns_cut).value == 0.0  # running out of turns is not a token overrun
    assert (
        one(TokenBudget(default=5), tb.task(difficulty="moderate"), tb.traj(tb.answer("x", tokens=6))).value
        == -1
    )


def test_token_budget_refuses_bad_params():
    with pytest.raises(ValidationError):
        TokenBudget(penalty=0.5)
    with pytest.raises(ValidationError, match="token budgets must be >= 1"):
        TokenBudget(budgets={"simple": 0})


# ---- overlong (DAPO) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, 0.0),
        (384, 0.0),  # L = L_max - L_cache: still free
        (385, -1 / 128),  # (384 - 385) / 128
        (448, -0.5),  # (384 - 448) / 128
        (512, -1.0),  # L = L_max: (384 - 512) / 128
        (513, -1.0),
        (5000, -1.0),
    ],
)
def test_overlong_formula(tb, length, expected):
    r = OverlongPenalty(max_tokens=512, cache=128)
    half = length // 2
    t = tb.traj(tb.calls(GET, tokens=half), tb.answer("ok", tokens=length - half))
    assert one(r, tb.task(), t).value == pytest.approx(expected)


def test_overlong_refuses_cache_beyond_max():
    with pytest.raises(ValidationError, match="must not exceed"):
        OverlongPenalty(max_tokens=100, cache=200)
    with pytest.raises(ValidationError):
        OverlongPenalty(max_tokens=0)


# ---- repetition (GLM-4.5) ----------------------------------------------------------------------


def test_repeated_ngram_share_by_hand():
    # words: a b c a b c a b (8), 3-grams: abc bca cab abc bca cab → 6 grams, 3 distinct → 3/6
    assert repeated_ngram_share("a b c a b c a b", 3) == pytest.approx(0.5)
    assert repeated_ngram_share("A, b! C a B c", 3) == pytest.approx(1 / 4)  # 4 grams, 3 distinct
    assert repeated_ngram_share("too short", 3) == 0.0
    assert repeated_ngram_share("one two three four five", 2) == 0.0


def test_repeated_calls_canonicalise_and_spare_transient_retries(tb):
    t = tb.traj(
        tb.calls(("notes__get", '{"id": "n1", "x": 1}')),
        tb.calls(("notes__get", '{"x":1,"id":"n1"}')),  # same call, other key order → repeat 1
        tb.calls(("notes__list", {}, "timeout")),
        tb.calls(("notes__list", {})),  # retry after a transient error → not a repeat
        tb.calls(("notes__list", {})),  # after a success → repeat 2
        tb.calls(("notes__get", {"id": "n2"})),
        tb.answer("done"),
    )
    assert repeated_calls(t) == (2, 6)


def test_repetition_formula(tb):
    # calls: 4, repeats 1 → r_calls = 1/4; text "a b c a b c a b" with n = 3 → r_text = 1/2
    t = tb.traj(
        tb.calls(GET, ("notes__list", {})),
        tb.calls(GET, ("notes__find", {"q": "x"})),
        tb.answer("a b c a b c a b"),
    )
    s = one(RepetitionPenalty(n=3, call_weight=0.4, text_weight=1.0), tb.task(), t)
    assert s.value == pytest.approx(-(0.4 * 0.25 + 1.0 * 0.5))
    assert s.detail == {"repeated_calls": 1, "call_share": 0.25, "text_share": 0.5}
    clean = tb.traj(tb.calls(GET), tb.answer("Note n1 reads: buy milk today."))
    assert one(RepetitionPenalty(), tb.task(), clean).value == 0.0


def test_repetition_text_spans_turns(tb):
    # n = 2 over the joined replies "x y" + "x y": grams xy, yx, xy → 1 repeat of 3
    t = tb.traj(tb.calls(GET, text="x y"), tb.answer("x y"))
    assert one(RepetitionPenalty(n=2, call_weight=0, text_weight=1), tb.task(), t).value == pytest.approx(
        -1 / 3
    )


# ---- malformed calls ---------------------------------------------------------------------------


def test_malformed_calls_formula_and_cap(tb):
    t = tb.traj(
        tb.calls(("", "{", "parse_error"), ("nope", {}, "unknown_tool")),
        tb.calls(("notes__get", {"id": 3}, "invalid_arguments"), ("notes__get", {"id": "zz"}, "not_found")),
        tb.calls(("notes__get", {"id": "n1"}, "timeout")),
        tb.answer("ok"),
    )
    s = one(MalformedCallPenalty(alpha=0.2, cap=1.0), tb.task(), t)
    assert s.value == pytest.approx(-0.6)  # 3 malformed (not_found and timeout are the tools' doing)
    assert s.detail == {"malformed": 3, "parse_error": 1, "unknown_tool": 1, "invalid_arguments": 1}
    assert one(MalformedCallPenalty(alpha=0.2, cap=0.5), tb.task(), t).value == pytest.approx(-0.5)
    only_parse = one(MalformedCallPenalty(alpha=0.2, kinds=("parse_error",)), tb.task(), t)
    assert only_parse.value == pytest.approx(-0.2)
    assert one(MalformedCallPenalty(), tb.task(), tb.traj(tb.calls(GET), tb.answer("ok"))).value == 0.0


def test_malformed_calls_refuse_unknown_kind():
    with pytest.raises(ValidationError):
        MalformedCallPenalty(kinds=("oops",))


# ---- language (Magistral) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Please tell me what the status of this ticket is.", "en"),
        ("Pouvez-vous me dire le statut de la commande, merci.", "fr"),
        ("Bitte sag mir, ob die Rechnung bezahlt ist und wann.", "de"),
        ("¿Puede decirme el estado del pedido, por favor? Gracias.", "es"),
        ("Сколько открытых заявок сейчас?", "cyrillic"),
        ("注文の状態を教えてください", "ja"),
        ("请告诉我订单的状态", "han"),
        ("42 / 17", None),
        ("Zyx qwv", "latin"),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_same_language_rules():
    assert same_language("en", "en") and same_language(None, "fr") and same_language("latin", "de")
    assert not same_language("en", "fr") and not same_language("en", "cyrillic")


def test_language_bonus(tb):
    r = LanguageConsistency(bonus=0.2)
    user = "Bitte sag mir, ob die Rechnung bezahlt ist."
    de = tb.traj(tb.answer("Ja, die Rechnung ist bezahlt und nicht offen."), user=user)
    en = tb.traj(tb.answer("Yes, the invoice is paid and this is not open."), user=user)
    number = tb.traj(tb.answer("42"), user=user)
    none = tb.traj(tb.calls(GET), user=user)
    assert one(r, tb.task(), de).value == 0.2
    s = one(r, tb.task(), en)
    assert s.value == 0.0 and s.detail["user_language"] == "de" and s.detail["answer_language"] == "en"
    assert one(r, tb.task(), number).value == 0.2
    assert one(r, tb.task(), none).value == 0.0


# ---- the group contract ------------------------------------------------------------------------


async def test_score_keeps_order_and_never_mutates(tb):
    ts = [tb.traj(tb.answer("ok", tokens=n)) for n in (10, 500, 1000)]
    before = [t.model_dump() for t in ts]
    got = await OverlongPenalty(max_tokens=600, cache=200).score(tb.task(), ts)
    assert [s.value for s in got] == [0.0, pytest.approx(-0.5), -1.0]
    assert [t.model_dump() for t in ts] == before
