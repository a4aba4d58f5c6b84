"""Grading: rubric scores as pure functions of trajectory and state."""

from agentgym.grading.rubric import (
    GRADERS,
    CallRecord,
    Evidence,
    calls_from_trajectory,
    combine,
    final_answer,
    grade,
    replies,
)

__all__ = [
    "GRADERS",
    "CallRecord",
    "Evidence",
    "calls_from_trajectory",
    "combine",
    "final_answer",
    "grade",
    "replies",
]
