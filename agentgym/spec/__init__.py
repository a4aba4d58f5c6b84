"""The contracts: typed, frozen, JSON-round-trippable data shared by every part of agentgym."""

from agentgym.spec.agent import AgentSpec
from agentgym.spec.jsonl import JsonlAppender, JsonlError, read_jsonl, write_jsonl
from agentgym.spec.rubric import (
    AnswerCriterion,
    CallCriterion,
    CallPattern,
    CheckpointCriterion,
    Criterion,
    ForbiddenCriterion,
    JudgeCriterion,
    Rubric,
    StateCriterion,
)
from agentgym.spec.task import GoldCall, GoldTurn, TaskSpec, UserProfile
from agentgym.spec.tool import (
    Condition,
    Effect,
    FilterArg,
    Provenance,
    Taxonomy,
    ToolAnnotations,
    ToolSemantics,
    ToolSpec,
    qualified_name,
)
from agentgym.spec.trajectory import (
    TRANSIENT_ERRORS,
    CallOutcome,
    Change,
    CriterionResult,
    ErrorKind,
    FunctionCall,
    Message,
    RubricResult,
    ToolCall,
    Trajectory,
    TurnRecord,
)
from agentgym.spec.world import DomainSpec, EntitySpec, WorldSnapshot

__all__ = [
    "TRANSIENT_ERRORS", "AgentSpec", "AnswerCriterion", "CallCriterion", "CallOutcome", "CallPattern",
    "Change", "CheckpointCriterion", "Condition", "Criterion", "CriterionResult", "Effect", "ErrorKind",
    "FilterArg", "ForbiddenCriterion", "FunctionCall", "GoldCall", "GoldTurn", "JsonlAppender",
    "JsonlError", "JudgeCriterion", "Message", "Provenance", "Rubric", "RubricResult", "StateCriterion",
    "TaskSpec", "Taxonomy", "ToolAnnotations", "ToolCall", "ToolSemantics", "ToolSpec", "Trajectory",
    "DomainSpec", "EntitySpec", "TurnRecord", "UserProfile", "WorldSnapshot", "qualified_name", "read_jsonl", "write_jsonl",
]
