"""Check the coding task suite against its own hidden tests.

    python bench/check_coding_tasks.py            # every task in tasks/coding/tasks/{implement,fix,modules}.yaml
    python bench/check_coding_tasks.py -v         # also name the failing test methods

In: the three task files (a YAML list each, see tasks/coding/tasks/implement.yaml for the shape).
For every task, in a fresh temporary directory per run:

1. starter: write the `state_patch` `sandbox.files`, write the hidden test files of each `kind: tests`
   criterion, run unittest discovery (`test_*.py`) - the pass rate must be strictly below 0.5;
2. oracle: write the starter files, apply the gold `sandbox__write_file` calls in order, write the
   hidden tests, run - every test method must pass, in under 1 s of test time.

A run's rate is passed test methods / all test methods, where "all" is counted from the test files'
source, so a test module that fails to import scores 0 instead of vanishing from the denominator.
Shape checks: unique `coding-` ids, 32 tasks, the tag and difficulty counts below, >= 6 test methods
per test file, only standard-library or workspace imports in tests, no workspace module shadowing the
standard library, no hidden test file shadowing a starter or gold file, module tasks writing every
file and more than one.

Out: one line per task (id, starter rate, oracle rate), then the problems; exit status 1 if any.
Standard library + pyyaml only; never touches the checkout outside temporary directories.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TASK_FILES = [ROOT / "tasks/coding/tasks" / name for name in ("implement.yaml", "fix.yaml", "modules.yaml")]
EXPECTED_TASKS = 32
EXPECTED_TAGS = {"implement": 18, "fix": 9, "module": 5}
EXPECTED_DIFFICULTY = {"simple": 12, "moderate": 12, "complex": 8}
MIN_TEST_METHODS = 6
MAX_TEST_SECONDS = 1.0
RUN_TIMEOUT_S = 60

# Runs in the task directory: unittest discovery with a result that reports what passed, as JSON.
_DRIVER = r"""
import json, time, unittest

class Result(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.passed = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test.id())

suite = unittest.defaultTestLoader.discover(".", pattern="test_*.py", top_level_dir=".")
result = Result()
t0 = time.perf_counter()
suite.run(result)
seconds = time.perf_counter() - t0
def reason(tb):
    # The exception line follows the last frame ("  File ...") and its indented source lines.
    lines = tb.rstrip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    rest = [line for line in lines[frames[-1] + 1:] if not line.startswith("    ")] if frames else lines
    return (rest or lines)[0][:160]

problems = [(t.id(), reason(tb)) for t, tb in result.failures + result.errors]
problems += [(t.id(), "unexpected success") for t in result.unexpectedSuccesses]
print(json.dumps({"passed": len(result.passed), "run": result.testsRun, "seconds": seconds,
                  "problems": problems}))
"""


@dataclass
class RunResult:
    """One unittest run over a task directory."""

    passed: int
    total: int
    seconds: float
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass
class TaskCheck:
    task_id: str
    starter: RunResult | None = None
    oracle: RunResult | None = None
    problems: list[str] = field(default_factory=list)


def load_tasks(paths: list[Path]) -> list[tuple[Path, dict]]:
    tasks = []
    for path in paths:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise SystemExit(f"{path}: expected a YAML list of tasks, got {type(data).__name__}")
        tasks.extend((path, task) for task in data)
    return tasks


def starter_files(task: dict) -> dict[str, str]:
    entries = (task.get("state_patch") or {}).get("sandbox.files") or []
    return {entry["id"]: entry["content"] for entry in entries}


def hidden_test_files(task: dict) -> dict[str, str]:
    files: dict[str, str] = {}
    for criterion in task.get("rubric", {}).get("criteria", []):
        if criterion.get("kind") == "tests":
            files.update(criterion.get("files") or {})
    return files


def gold_writes(task: dict) -> list[tuple[str, str]]:
    """The gold `sandbox__write_file` calls as (path, content), in order; other tools are refused."""
    writes = []
    for step in task.get("gold") or []:
        for call in step.get("calls") or []:
            if call.get("tool") != "sandbox__write_file":
                raise ValueError(f"gold calls {call.get('tool')!r}; only sandbox__write_file is replayable")
            args = call.get("arguments") or {}
            writes.append((args["path"], args["content"]))
    return writes


def count_test_methods(source: str) -> int:
    tree = ast.parse(source)
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test")
    )


def imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def safe_relative(path: str) -> bool:
    parts = Path(path).parts
    return bool(parts) and not Path(path).is_absolute() and ".." not in parts


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def run_tests(files: dict[str, str], tests: dict[str, str]) -> RunResult:
    """Write `files` then `tests` into a fresh directory and run unittest discovery there."""
    total = sum(count_test_methods(source) for source in tests.values())
    with tempfile.TemporaryDirectory(prefix="coding-task-") as tmp:
        root = Path(tmp)
        write_tree(root, files)
        write_tree(root, tests)
        proc = subprocess.run(
            [sys.executable, "-I", "-B", "-c", _DRIVER],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return RunResult(0, total, 0.0, [("<driver>", tail)])
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # An import error shows up as one synthetic failed test; the source count stays the denominator.
    return RunResult(report["passed"], max(total, report["run"]), report["seconds"], report["problems"])


def check_shape(tasks: list[tuple[Path, dict]]) -> list[str]:
    problems = []
    ids = Counter(task.get("id") for _, task in tasks)
    problems += [f"duplicate id {task_id!r} ({n} times)" for task_id, n in ids.items() if n > 1]
    if len(tasks) != EXPECTED_TASKS:
        problems.append(f"{len(tasks)} tasks, expected {EXPECTED_TASKS}")
    kinds = Counter(tag for _, task in tasks for tag in task.get("tags", []) if tag in EXPECTED_TAGS)
    if dict(kinds) != EXPECTED_TAGS:
        problems.append(f"tag counts {dict(kinds)}, expected {EXPECTED_TAGS}")
    levels = Counter(task.get("difficulty") for _, task in tasks)
    if dict(levels) != EXPECTED_DIFFICULTY:
        problems.append(f"difficulty counts {dict(levels)}, expected {EXPECTED_DIFFICULTY}")
    return problems


def check_task(task: dict) -> TaskCheck:
    check = TaskCheck(str(task.get("id")))
    problems = check.problems
    if not check.task_id.startswith("coding-"):
        problems.append("id must start with 'coding-'")
    if task.get("agent_id") != "coder":
        problems.append(f"agent_id {task.get('agent_id')!r}, expected 'coder'")
    tags = task.get("tags") or []
    kind_tags = [tag for tag in tags if tag in EXPECTED_TAGS]
    if "coding" not in tags or len(kind_tags) != 1:
        problems.append(f"tags {tags} need 'coding' and exactly one of {sorted(EXPECTED_TAGS)}")
    if not str(task.get("instruction", "")).strip():
        problems.append("empty instruction")
    gold = task.get("gold") or []
    if not gold or "answer" not in gold[-1]:
        problems.append("gold must end with an answer step")

    starter = starter_files(task)
    tests = hidden_test_files(task)
    try:
        writes = gold_writes(task)
    except (KeyError, ValueError) as exc:
        problems.append(f"gold: {exc}")
        return check
    if not tests:
        problems.append("no hidden test files")
        return check
    written = [path for path, _ in writes]
    for path in [*starter, *written, *tests]:
        if not safe_relative(path):
            problems.append(f"path {path!r} is not a plain relative path")
    for name in tests:
        if name in starter or name in written:
            problems.append(f"hidden test file {name!r} collides with a starter or gold file")
        if not (Path(name).name.startswith("test_") and name.endswith(".py")):
            problems.append(f"hidden test file {name!r} is not found by the pattern test_*.py")
    if "module" in tags:
        if len(set(written)) < 2:
            problems.append("a module task's gold must write more than one file")
        if missing := sorted(set(starter) - set(written)):
            problems.append(f"gold does not write every file: {missing}")
    workspace_roots = {Path(path).parts[0].removesuffix(".py") for path in [*starter, *written, *tests]}
    if shadowed := sorted(workspace_roots & set(sys.stdlib_module_names)):
        problems.append(f"workspace modules shadow the standard library: {shadowed}")
    for name, source in tests.items():
        try:
            methods = count_test_methods(source)
            roots = imported_roots(source)
        except SyntaxError as exc:
            problems.append(f"{name}: syntax error: {exc}")
            return check
        if methods < MIN_TEST_METHODS:
            problems.append(f"{name}: {methods} test methods, need >= {MIN_TEST_METHODS}")
        if foreign := sorted(roots - set(sys.stdlib_module_names) - workspace_roots):
            problems.append(f"{name}: imports outside the standard library and workspace: {foreign}")
    if problems:
        return check

    check.starter = run_tests(starter, tests)
    if check.starter.rate >= 0.5:
        problems.append(f"starter passes {check.starter.passed}/{check.starter.total} (must be < 50%)")
    solved = dict(starter)
    solved.update(writes)
    check.oracle = run_tests(solved, tests)
    if check.oracle.passed != check.oracle.total:
        problems.append(f"oracle passes {check.oracle.passed}/{check.oracle.total}")
        problems += [f"  oracle: {test}: {why}" for test, why in check.oracle.problems]
    if check.oracle.seconds > MAX_TEST_SECONDS:
        problems.append(f"oracle tests took {check.oracle.seconds:.2f} s (limit {MAX_TEST_SECONDS} s)")
    return check


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="task files (default: the three suite files)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list the starter's failing tests too")
    args = ap.parse_args()
    paths = args.files or TASK_FILES
    tasks = load_tasks(paths)

    failures = 0
    for path, task in tasks:
        check = check_task(task)
        starter = f"{check.starter.passed}/{check.starter.total}" if check.starter else "-"
        oracle = f"{check.oracle.passed}/{check.oracle.total}" if check.oracle else "-"
        rates = (
            f"starter {check.starter.rate:.2f} ({starter:>5})  oracle {check.oracle.rate:.2f} ({oracle:>5})"
            if check.starter and check.oracle
            else f"starter {starter}  oracle {oracle}"
        )
        status = "FAIL" if check.problems else "ok"
        print(f"{status:4} {check.task_id:34} {task.get('difficulty', '?'):8} {rates}  [{path.name}]")
        for problem in check.problems:
            print(f"       {problem}")
        if args.verbose and check.starter:
            for test, why in check.starter.problems:
                print(f"       starter: {test}: {why}")
        failures += bool(check.problems)

    suite_problems = check_shape(tasks) if not args.files else []
    for problem in suite_problems:
        print(f"SUITE  {problem}")
    kinds = Counter(tag for _, task in tasks for tag in task.get("tags", []) if tag in EXPECTED_TAGS)
    levels = Counter(task.get("difficulty") for _, task in tasks)
    print(
        f"\n{len(tasks)} tasks, {failures} failing; tags {dict(kinds)}; difficulty {dict(levels)}"
        + (f"; {len(suite_problems)} suite problems" if suite_problems else "")
    )
    return 1 if failures or suite_problems else 0


if __name__ == "__main__":
    sys.exit(main())
