"""Penalties, gates and bonuses: per-trajectory rewards that make reward hacking cost something.

Each class is a `TrajectoryReward` (scores one trajectory at a time, never mutates it) whose
parameters are validated on construction (pydantic dataclasses: a wrong type, a bad range or an
unknown keyword is a `ValidationError` naming the field). Each one's docstring gives its formula;
`Score.detail` says what triggered it. All register themselves in `agentgym.rewards.registry`
under the names shown, so a mix file can name them.

What "the model's output" means here, for every class: the assistant messages of the trajectory
(visible `content`, tool calls as written) and their `TurnRecord`s; L, the completion length, is
the sum of `TurnRecord.num_tokens` over assistant turns. Tool results, the system prompt and the
user's messages are never counted against the model.

- `format_gate` (Magistral): 1 when the output is well-formed, else 0; use with `Component(gate=True)`.
- `token_budget` (Kimi K2): a fixed penalty when the episode ran past its task type's token budget.
- `overlong` (DAPO): the soft overlong punishment, 0 down to -1 near the maximum length.
- `repetition` (GLM-4.5): minus the share of repeated tool calls and of repeated n-grams.
- `malformed_calls`: minus alpha per parse_error / unknown_tool / invalid_arguments call, capped.
- `language` (Magistral): a small bonus when the final answer is in the user's language.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from typing import ClassVar

from pydantic import ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

from agentgym.grading.rubric import replies
from agentgym.rewards.base import Score, TrajectoryReward
from agentgym.rewards.registry import register_reward
from agentgym.spec.task import TaskSpec
from agentgym.spec.trajectory import TRANSIENT_ERRORS, ErrorKind, Message, Trajectory

_STRICT = ConfigDict(extra="forbid")


def completion_tokens(trajectory: Trajectory) -> int:
    """L: tokens the model produced over the whole episode (sum of `TurnRecord.num_tokens`)."""
    return sum(t.num_tokens for t in trajectory.turns)


def last_assistant(trajectory: Trajectory) -> Message | None:
    """The episode's last assistant message (None when the model never spoke)."""
    return next((m for m in reversed(trajectory.dialogue()) if m.role == "assistant"), None)


def call_errors(trajectory: Trajectory) -> list[ErrorKind | None]:
    """The error kind of every call of the episode, in order (None: the call ran)."""
    return [c.error for t in trajectory.turns for c in t.calls]


# ---- format gate -------------------------------------------------------------------------------

_MARKUP = re.compile(
    r"</?(?:tool_call|tool_response|think|function|arg_key|arg_value)\b|<\|(?:im_start|im_end|eot_id)\|>"
)
"""Tool-call, reasoning or chat-template markup that must not leak into a final answer."""


@register_reward("format_gate")
@dataclass(frozen=True, config=_STRICT)
class FormatGate(TrajectoryReward):
    """1 if every assistant turn parsed cleanly and the final answer is well-formed, else 0.

    value = 1  iff  (no call has error `parse_error`)
                and (require_answer ⇒ the last assistant turn made no calls and has non-blank text,
                     and that turn was not cut off, i.e. its finish_reason is not 'length')
                and (forbid_markup ⇒ the answer holds no tool-call / think / chat-template markup)
            0  otherwise.
    As Magistral does, a malformed output earns nothing: put it in a mix as a gate.
    """

    name: ClassVar[str] = "format_gate"
    require_answer: bool = True
    """The episode must end with a (non-blank, uncut) answer turn."""
    forbid_markup: bool = True
    """The answer must not contain leftover tool-call, reasoning or chat-template tags."""

    def score_one(self, task: TaskSpec, trajectory: Trajectory) -> Score:
        parse_errors = sum(e == "parse_error" for e in call_errors(trajectory))
        last = last_assistant(trajectory)
        answer = (last.content or "") if last is not None and not last.tool_calls else ""
        answered = bool(answer.strip())
        cut = bool(trajectory.turns) and trajectory.turns[-1].finish_reason == "length"
        markup = bool(_MARKUP.search(answer))
        ok = (
            parse_errors == 0
            and (not self.require_answer or (answered and not cut))
            and not (self.forbid_markup and markup)
        )
        return Score(
            float(ok),
            {
                "parse_errors": parse_errors,
                "answered": float(answered),
                "cut": float(cut),
                "markup": float(markup),
            },
        )


# ---- token budget (K2) -------------------------------------------------------------------------


@register_reward("token_budget")
@dataclass(frozen=True, config=_STRICT)
class TokenBudget(TrajectoryReward):
    """A fixed penalty when the episode was truncated by its token budget (Kimi K2 budget control).

    budget(task) = budgets[first task tag found in budgets], else budgets[task.difficulty],
                   else `default` (None: no budget of its own, only truncation signals count).
    truncated    = L > budget(task)
                   or trajectory.end_reason == 'token_budget'   (the environment's budget cut it)
                   or some turn's finish_reason == 'length'      (the model hit its max length)
    value        = penalty if truncated else 0.
    A `max_turns` truncation is not a token overrun and is not penalised here.
    """

    name: ClassVar[str] = "token_budget"
    budgets: dict[str, int] = Field(default_factory=dict)
    """Token budget per task tag or difficulty ('simple', 'moderate', 'complex'); tags win."""
    default: int | None = Field(default=None, ge=1)
    """Budget for tasks no key matches (None: none)."""
    penalty: float = Field(default=-1.0, le=0)
    """Value of a truncated episode."""

    @model_validator(mode="after")
    def _positive(self) -> TokenBudget:
        bad = {k: v for k, v in self.budgets.items() if v < 1}
        if bad:
            raise ValueError(f"token budgets must be >= 1, got {bad}")
        return self

    def budget(self, task: TaskSpec) -> int | None:
        for tag in task.tags:
            if tag in self.budgets:
                return self.budgets[tag]
        return self.budgets.get(task.difficulty, self.default)

    def score_one(self, task: TaskSpec, trajectory: Trajectory) -> Score:
        n = completion_tokens(trajectory)
        budget = self.budget(task)
        over = budget is not None and n > budget
        env_cut = trajectory.end_reason == "token_budget"
        length_cut = any(t.finish_reason == "length" for t in trajectory.turns)
        truncated = over or env_cut or length_cut
        detail: dict[str, float] = {
            "tokens": n,
            "over_budget": float(over),
            "env_cut": float(env_cut),
            "length_cut": float(length_cut),
        }
        if budget is not None:
            detail["budget"] = budget
        return Score(self.penalty if truncated else 0.0, detail)


# ---- soft overlong (DAPO) ----------------------------------------------------------------------


@register_reward("overlong")
@dataclass(frozen=True, config=_STRICT)
class OverlongPenalty(TrajectoryReward):
    """DAPO's soft overlong punishment over the completion length L.

    value = 0                                   if L <= L_max - L_cache
            ((L_max - L_cache) - L) / L_cache   if L_max - L_cache < L <= L_max   (0 down to -1)
            -1                                  if L > L_max
    with L_max = `max_tokens`, L_cache = `cache`.
    """

    name: ClassVar[str] = "overlong"
    max_tokens: int = Field(default=4096, ge=1)
    """L_max: the length beyond which the penalty is -1."""
    cache: int = Field(default=1024, ge=1)
    """L_cache: the width of the soft zone below L_max."""

    @model_validator(mode="after")
    def _cache_fits(self) -> OverlongPenalty:
        if self.cache > self.max_tokens:
            raise ValueError(f"cache ({self.cache}) must not exceed max_tokens ({self.max_tokens})")
        return self

    def score_one(self, task: TaskSpec, trajectory: Trajectory) -> Score:
        n = completion_tokens(trajectory)
        soft = self.max_tokens - self.cache
        if n <= soft:
            v = 0.0
        elif n <= self.max_tokens:
            v = (soft - n) / self.cache
        else:
            v = -1.0
        return Score(v, {"tokens": n})


# ---- repetition / loops (GLM-4.5) --------------------------------------------------------------

_WORD = re.compile(r"\w+")


def _call_key(name: str, arguments: str) -> str:
    try:
        canonical = json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except (json.JSONDecodeError, TypeError):
        canonical = arguments.strip()
    return f"{name}\x00{canonical}"


def repeated_calls(trajectory: Trajectory) -> tuple[int, int]:
    """(repeats, calls): a call repeats when an identical call (same name, same arguments after JSON
    canonicalisation) came earlier and that earlier one did not fail transiently (a retry after a
    timeout, rate limit or server error is recovery, not a loop)."""
    errors = {c.call_id: c.error for t in trajectory.turns for c in t.calls}
    last_error: dict[str, str | None] = {}
    repeats = total = 0
    for m in trajectory.messages:
        for tc in m.tool_calls or ():
            total += 1
            key = _call_key(tc.function.name, tc.function.arguments)
            if key in last_error and last_error[key] not in TRANSIENT_ERRORS:
                repeats += 1
            last_error[key] = errors.get(tc.id)
    return repeats, total


def repeated_ngram_share(text: str, n: int) -> float:
    """Share of the text's word n-grams (lower-cased \\w+ words) that repeat an earlier n-gram:
    (count - distinct) / count; 0 when the text has fewer than n words."""
    words = [w.lower() for w in _WORD.findall(text)]
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return (len(grams) - len(set(grams))) / len(grams)


@register_reward("repetition")
@dataclass(frozen=True, config=_STRICT)
class RepetitionPenalty(TrajectoryReward):
    """Loop and repetition penalty (GLM-4.5 penalises repeated calls and degenerate text).

    r_calls = repeated calls / calls          (see `repeated_calls`; 0 without calls)
    r_text  = repeated n-grams / n-grams      over the visible text of all assistant messages,
                                              joined (see `repeated_ngram_share`)
    value   = -(call_weight * r_calls + text_weight * r_text)     (in [-(cw + tw), 0])
    """

    name: ClassVar[str] = "repetition"
    n: int = Field(default=4, ge=1)
    """n-gram size for text repetition."""
    call_weight: float = Field(default=0.5, ge=0)
    """Weight of the repeated-call share."""
    text_weight: float = Field(default=0.5, ge=0)
    """Weight of the repeated-n-gram share."""

    def score_one(self, task: TaskSpec, trajectory: Trajectory) -> Score:
        repeats, calls = repeated_calls(trajectory)
        r_calls = repeats / calls if calls else 0.0
        r_text = repeated_ngram_share("\n".join(replies(trajectory)), self.n)
        value = 0.0 - (self.call_weight * r_calls + self.text_weight * r_text)  # 0.0 - x: no -0.0
        return Score(value, {"repeated_calls": repeats, "call_share": r_calls, "text_share": r_text})


# ---- malformed calls ---------------------------------------------------------------------------


@register_reward("malformed_calls")
@dataclass(frozen=True, config=_STRICT)
class MalformedCallPenalty(TrajectoryReward):
    """-alpha per malformed call, capped.

    m     = number of calls whose error kind is in `kinds`
    value = -min(cap, alpha * m)
    """

    name: ClassVar[str] = "malformed_calls"
    alpha: float = Field(default=0.1, ge=0)
    """Penalty per malformed call."""
    cap: float = Field(default=1.0, ge=0)
    """Largest total penalty."""
    kinds: tuple[ErrorKind, ...] = ("parse_error", "unknown_tool", "invalid_arguments")
    """Error kinds that count as the model's malformed call (not the tool's failure)."""

    def score_one(self, task: TaskSpec, trajectory: Trajectory) -> Score:
        counts = Counter(e for e in call_errors(trajectory) if e in self.kinds)
        m = sum(counts.values())
        detail: dict[str, float] = {"malformed": m, **{k: counts[k] for k in self.kinds}}
        return Score(0.0 - min(self.cap, self.alpha * m), detail)


# ---- language consistency (Magistral) ----------------------------------------------------------

_STOPWORD_TEXT = {
    "en": "the and is are you your with have this that what please for not of to",
    "fr": "le la les et est vous avec pour une des du que qui pas sur merci",
    "de": "der die das und ist sie mit für nicht ein eine ich bitte auf den dem",
    "es": "el los las y es usted con para una por que del está no gracias",
    "it": "il gli le e è con per una che non sono della grazie del",
    "pt": "o os as e é você com para uma não que do da obrigado está",
    "nl": "de het een en is niet met voor van dat je u alstublieft zijn",
}
_STOPWORDS = {lang: frozenset(words.split()) for lang, words in _STOPWORD_TEXT.items()}
"""A few frequent, mostly distinctive function words per Latin-script language."""

_SCRIPTS = {
    "CYRILLIC": "cyrillic",
    "GREEK": "greek",
    "ARABIC": "arabic",
    "HEBREW": "hebrew",
    "HANGUL": "ko",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "CJK": "han",
    "DEVANAGARI": "devanagari",
    "THAI": "thai",
}


def detect_language(text: str) -> str | None:
    """A small heuristic language id: the dominant script of the letters (non-Latin scripts are their
    own label: 'cyrillic', 'han', 'ja', 'ko', ...; any kana makes Han text 'ja'); for Latin text, the
    language whose stop words occur most often (a tie or no hit: 'latin', i.e. some Latin-script
    language). None when the text has no letters."""
    scripts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            first = unicodedata.name(ch, "UNKNOWN").split()[0]
            scripts[_SCRIPTS.get(first, "latin" if first == "LATIN" else "other")] += 1
    if not scripts:
        return None
    script = scripts.most_common(1)[0][0]
    if script == "han" and scripts["ja"]:
        return "ja"
    if script != "latin":
        return script
    words = [w.lower() for w in _WORD.findall(text)]
    hits = {lang: sum(w in sw for w in words) for lang, sw in _STOPWORDS.items()}
    ranked = sorted(hits.values(), reverse=True)
    if ranked[0] == 0 or ranked[0] == ranked[1]:
        return "latin"
    return max(hits, key=hits.__getitem__)


def same_language(a: str | None, b: str | None) -> bool:
    """Consistent unless both are known and differ; 'latin' matches any Latin-script language."""
    if a is None or b is None or a == b:
        return True
    latin = set(_STOPWORDS) | {"latin"}
    return (a == "latin" and b in latin) or (b == "latin" and a in latin)


@register_reward("language")
@dataclass(frozen=True, config=_STRICT)
class LanguageConsistency(TrajectoryReward):
    """A bonus when the final answer is in the user's language (Magistral's consistency reward).

    user   = detect_language(first user message of the trajectory, else the task instruction)
    answer = detect_language(final answer)
    value  = bonus if same_language(user, answer) else 0
    (an answer without letters, e.g. a bare number, has nothing to disagree with and counts as
    consistent; an episode without an answer gets 0.)
    """

    name: ClassVar[str] = "language"
    bonus: float = Field(default=0.1, ge=0)
    """Value of a consistent answer."""

    def score_one(self, task: TaskSpec, trajectory: Trajectory) -> Score:
        first_user = next((m.content for m in trajectory.messages if m.role == "user" and m.content), None)
        last = last_assistant(trajectory)
        if last is None or last.tool_calls or not (last.content or "").strip():
            return Score(0.0, {"answered": 0.0, "consistent": 0.0})
        user_lang = detect_language(first_user or task.instruction)
        answer_lang = detect_language(last.content or "")
        ok = same_language(user_lang, answer_lang)
        return Score(
            self.bonus if ok else 0.0,
            {
                "answered": 1.0,
                "consistent": float(ok),
                "user_language": user_lang,
                "answer_language": answer_lang,
            },
        )
