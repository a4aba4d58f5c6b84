"""Adapters that hand agentgym tasks to peers' trainers and evaluators.

- `agentgym.adapters.trl`: a `datasets.Dataset` of prompts, an `environment_factory` and a rubric
  reward function for TRL's `GRPOTrainer` (extra `peers`, `trl==1.16.0`).
- `agentgym.adapters.verifiers`: a verifiers 0.4.0 (v1) `Taskset` whose tools are served by an
  MCP `Toolset` over a `ToolUseEnv` and whose reward is the agentgym rubric (verifiers pins
  `mcp==2.0.0`, so it lives in its own venv, which `install.sh` makes at `/tmp/agentgym-peers`).

Both sit on the same two pieces: `pyfunc.tool_function` (a tool's JSON schema as a real Python
signature, which both peers require) and `episode.EpisodeDriver` (one agentgym episode driven one
tool call at a time, then graded). Importing this package imports neither peer.
"""
