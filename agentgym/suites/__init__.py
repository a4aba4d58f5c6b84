"""Task suites: agents and tasks over a world, loaded from `tasks/<suite>/`."""

from agentgym.suites.suite import SuiteError, TaskSuite, load_suite

__all__ = ["SuiteError", "TaskSuite", "load_suite"]
