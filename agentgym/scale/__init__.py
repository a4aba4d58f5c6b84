"""Scale-out of rollouts beyond one process: picklable env/policy specs and Ray rollout workers.

`specs` (no Ray import) describes what a worker builds; `ray_rollout` runs the workers as Ray actors
with the driver owning the resumable store. Import `agentgym.scale.ray_rollout` only where Ray is
used: importing Ray costs most of a second.
"""

from agentgym.scale.specs import EnvSpec, PolicySpec

__all__ = ["EnvSpec", "PolicySpec"]
