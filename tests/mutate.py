"""A small mutation-testing runner for asyncnet's developers (standard library only).

Usage::

    python tests/mutate.py asyncnet/_flow.py --tests tests/test_flow.py \
        [--sample N] [--seed S] [--jobs J] [--timeout-factor F] [--list] [--only IDS]

It parses one module of the ``asyncnet`` package, enumerates small source-level
mutations (each one a single edit a plausible bug would make), and runs the
given test files against every mutant.  A mutant the tests fail on is *killed*;
one they pass on *survives* and points at behaviour no test pins down.

Mutations:

* comparison boundaries and negations: ``<`` / ``<=``, ``>`` / ``>=``,
  ``==`` / ``!=``, ``in`` / ``not in``, ``is`` / ``is not``;
* integer constants +1 and -1, ``True`` / ``False`` swapped;
* ``and`` / ``or`` swapped, ``+`` / ``-`` swapped;
* ``return X`` becomes ``return None``;
* a simple statement inside a function replaced by ``pass``;
* the condition of an ``if`` or ``while`` negated.

Determinism: mutants are numbered in source order, ``--sample`` draws from
them with a fixed seed, and the child test runs set ``CI=1`` so that
``tests/conftest.py`` loads hypothesis's derandomized "ci" profile.

Isolation: the working tree is never written to.  Each mutant gets a fresh
temporary copy of the ``asyncnet`` package with the mutated module written into
it; pytest runs with that directory as its working directory and first on
``PYTHONPATH``, with the project's ``pythonpath = ["."]`` overridden so that the
worktree's own package cannot shadow the mutant, and with bytecode writing off.
Before any mutant runs, the unmutated copy must pass (its time sets the
timeout) and a sanity mutant that breaks the module at import must be killed,
which proves the children really import the copy.

This file is not named ``test_*``, so pytest does not collect it.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import dataclasses
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "asyncnet"

# Comparison operators and what each one becomes: ordering operators move their
# boundary by one (the classic off-by-one), the others are negated.
_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}

# Simple statements whose deletion is a meaningful mutant.  Bare ``pass``,
# docstrings and ``...`` are left alone; compound statements are reached
# through their own bodies.
_DELETABLE = (
    ast.Expr,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Raise,
    ast.Assert,
    ast.Delete,
    ast.Break,
    ast.Continue,
)


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One single-edit mutation of the module's source."""

    ident: int
    kind: str
    lineno: int
    end_lineno: int
    source: str  # the whole mutated module
    original_lines: tuple[str, ...]
    mutated_lines: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the test run made of one mutant."""

    mutant: Mutant
    status: str  # "killed", "survived", "timeout" or "error"
    seconds: float
    detail: str = ""


class _Edit:
    """A replacement of one node's source span, positions as (line, UTF-8 byte column)."""

    def __init__(self, node: ast.AST, text: str, kind: str, *, wrap: bool = False) -> None:
        # wrap: ``text`` is a prefix put before the node's own source in parentheses.
        self.start = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
        self.end = (node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        self.text = text
        self.kind = kind
        self.wrap = wrap


def _is_all_assignment(node: ast.AST) -> bool:
    return isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
    )


def _is_type_checking_block(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def _skipped_spans(tree: ast.Module) -> set[int]:
    """Ids of nodes never mutated: annotations, docstrings, f-string innards, ``__all__``."""
    skip: set[int] = set()

    def skip_all(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(sub) for sub in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.arg | ast.AnnAssign):
            skip_all(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip_all(node.returns)
        elif isinstance(node, ast.JoinedStr):
            # Positions inside f-strings are unreliable before Python 3.12.
            skip_all(node)
        elif _is_all_assignment(node) or _is_type_checking_block(node):
            skip_all(node)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                skip_all(body[0])
    return skip


def _function_bodies(tree: ast.Module) -> set[int]:
    """Ids of statements that run inside a function (deleting module code only breaks imports)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for sub in ast.walk(node):
                if isinstance(sub, ast.stmt) and sub is not node:
                    inside.add(id(sub))
    return inside


def _edits(tree: ast.Module) -> Iterator[_Edit]:
    """Every candidate edit, in ``ast.walk`` order (sorted by position later)."""
    skip = _skipped_spans(tree)
    in_function = _function_bodies(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                swapped = _COMPARE_SWAPS.get(type(op))
                if swapped is None:
                    continue
                new = ast.Compare(
                    left=node.left,
                    ops=[*node.ops[:i], swapped(), *node.ops[i + 1 :]],
                    comparators=node.comparators,
                )
                yield _Edit(node, ast.unparse(new), "compare")
        elif isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                yield _Edit(node, repr(not value), "constant")
            elif isinstance(value, int):
                for changed in (value + 1, value - 1):
                    text = f"({changed})" if changed < 0 else str(changed)
                    yield _Edit(node, text, "constant")
        elif isinstance(node, ast.BoolOp):
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            yield _Edit(node, ast.unparse(ast.BoolOp(op=other, values=node.values)), "boolop")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            other_op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            new_binop = ast.BinOp(left=node.left, op=other_op, right=node.right)
            yield _Edit(node, ast.unparse(new_binop), "arith")
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add | ast.Sub):
            other_op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            new_aug = ast.AugAssign(target=node.target, op=other_op, value=node.value)
            yield _Edit(node, ast.unparse(new_aug), "arith")
        if isinstance(node, ast.Return) and node.value is not None:
            returned = node.value
            if not (isinstance(returned, ast.Constant) and returned.value is None):
                yield _Edit(returned, "None", "return")
        if isinstance(node, ast.If | ast.While):
            yield _Edit(node.test, "not ", "negate", wrap=True)
        if (
            isinstance(node, _DELETABLE)
            and id(node) in in_function
            and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ):
            yield _Edit(node, "pass", "delete")


def _apply(lines: list[bytes], edit: _Edit) -> str:
    (sl, sc), (el, ec) = edit.start, edit.end
    before = b"".join(lines[: sl - 1]) + lines[sl - 1][:sc]
    after = lines[el - 1][ec:] + b"".join(lines[el:])
    if el == sl:
        own = lines[sl - 1][sc:ec]
    else:
        own = lines[sl - 1][sc:] + b"".join(lines[sl : el - 1]) + lines[el - 1][:ec]
    text = edit.text.encode() + b"(" + own + b")" if edit.wrap else edit.text.encode()
    mutated: bytes = before + text + after
    return mutated.decode()


def enumerate_mutants(path: Path) -> list[Mutant]:
    """Every mutant of the module at ``path`` that compiles and differs from it, numbered."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.encode().splitlines(keepends=True)
    original = source.splitlines()
    edits = sorted(_edits(tree), key=lambda e: (e.start, e.end, e.kind, e.text))
    mutants: list[Mutant] = []
    seen: set[str] = set()
    for edit in edits:
        mutated = _apply(lines, edit)
        if mutated == source or mutated in seen:
            continue
        try:
            compile(mutated, str(path), "exec")
        except SyntaxError:
            continue
        seen.add(mutated)
        sl, el = edit.start[0], edit.end[0]
        new_lines = mutated.splitlines()
        span = (el - sl) + len(new_lines) - len(original)
        mutants.append(
            Mutant(
                ident=len(mutants) + 1,
                kind=edit.kind,
                lineno=sl,
                end_lineno=el,
                source=mutated,
                original_lines=tuple(original[sl - 1 : el]),
                mutated_lines=tuple(new_lines[sl - 1 : sl + span]),
            )
        )
    return mutants


class Runner:
    """Runs the chosen tests against temporary copies of the package."""

    def __init__(self, module: Path, tests: Sequence[Path]) -> None:
        self.module = module
        self.relative = module.relative_to(ROOT)
        self.tests = [str(t) for t in tests]
        self.timeout: float | None = None

    def run(self, source: str) -> tuple[str, float, str]:
        """Run the tests with the module replaced by ``source``; (status, seconds, tail)."""
        with tempfile.TemporaryDirectory(prefix="asyncnet-mutate-") as tmp:
            shutil.copytree(
                ROOT / PACKAGE,
                Path(tmp) / PACKAGE,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            (Path(tmp) / self.relative).write_text(source, encoding="utf-8")
            env = dict(os.environ)
            # The copy first, then the worktree for ``tests.support``; the
            # project's own pythonpath ("." = the worktree) is switched off below.
            env["PYTHONPATH"] = os.pathsep.join([tmp, str(ROOT)])
            env["CI"] = "1"
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env["PYTHONHASHSEED"] = "0"
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(ROOT),
                "-c",
                str(ROOT / "pyproject.toml"),
                "-o",
                "pythonpath=",
                *self.tests,
            ]
            started = time.monotonic()
            # cwd is the temporary directory: ``python -m`` puts it first on
            # sys.path, and hypothesis keeps its example database there.
            proc = subprocess.Popen(
                command,
                cwd=tmp,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                out, _ = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                # The child leads its own session: end it and anything it started.
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                return "timeout", time.monotonic() - started, ""
            seconds = time.monotonic() - started
            tail = "\n".join(out.decode(errors="replace").splitlines()[-15:])
            if proc.returncode == 0:
                return "survived", seconds, tail
            if proc.returncode in (1, 2, 3):  # failed, interrupted (collection error), internal
                return "killed", seconds, tail
            return "error", seconds, f"pytest exit {proc.returncode}\n{tail}"


def _show(mutant: Mutant) -> str:
    lines = [f"#{mutant.ident} {mutant.kind} at line {mutant.lineno}:"]
    lines += [f"  - {line.strip()}" for line in mutant.original_lines]
    lines += [f"  + {line.strip()}" for line in mutant.mutated_lines]
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python tests/mutate.py",
        description="Run the given tests against mutants of one asyncnet module.",
    )
    parser.add_argument("module", type=Path, help="a module of the asyncnet package")
    parser.add_argument("--tests", type=Path, nargs="+", required=True, help="test files to run")
    parser.add_argument("--sample", type=int, default=0, help="run N mutants drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed for --sample (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument(
        "--timeout-factor",
        type=float,
        default=3.0,
        help="a mutant times out after the unmutated run's time times F, plus 10 s (default 3)",
    )
    parser.add_argument("--only", default="", help="comma-separated mutant numbers to run")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.sample < 0 or args.timeout_factor <= 0:
        parser.error("--jobs must be >= 1, --sample >= 0, --timeout-factor > 0")
    module = args.module.resolve()
    try:
        relative = module.relative_to(ROOT)
    except ValueError:
        parser.error(f"{args.module} is not inside {ROOT}")
    if relative.parts[0] != PACKAGE or module.suffix != ".py" or not module.is_file():
        parser.error(f"{args.module} is not a module of the {PACKAGE} package")
    args.module = module
    args.tests = [t.resolve() for t in args.tests]
    for test in args.tests:
        if not test.exists():
            parser.error(f"no such test path: {test}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    mutants = enumerate_mutants(args.module)
    total = len(mutants)
    chosen = mutants
    if args.only:
        wanted = {int(part) for part in args.only.split(",") if part.strip()}
        chosen = [m for m in mutants if m.ident in wanted]
    elif args.sample and args.sample < total:
        picked = random.Random(args.seed).sample(range(total), args.sample)
        chosen = [mutants[i] for i in sorted(picked)]
    relative = args.module.relative_to(ROOT)
    print(f"{relative}: {total} mutants, running {len(chosen)}", flush=True)
    if args.list:
        for mutant in chosen:
            print(_show(mutant))
        return 0

    runner = Runner(args.module, args.tests)
    original = args.module.read_text(encoding="utf-8")
    status, baseline, tail = runner.run(original)
    if status != "survived":
        print(f"the unmutated module fails its tests ({status}); fix that first:\n{tail}")
        return 2
    sanity_source = original + "\nraise ImportError('tests/mutate.py sanity mutant')\n"
    status, _, tail = runner.run(sanity_source)
    if status != "killed":
        print(
            f"the sanity mutant (module raises at import) was {status}: the tests "
            f"do not import the temporary copy, so no result would mean anything:\n{tail}"
        )
        return 2
    runner.timeout = baseline * args.timeout_factor + 10.0
    print(
        f"baseline {baseline:.1f} s, timeout {runner.timeout:.1f} s, sanity mutant killed",
        flush=True,
    )

    outcomes: list[Outcome] = []

    def run_one(mutant: Mutant) -> Outcome:
        status, seconds, tail = runner.run(mutant.source)
        return Outcome(mutant, status, seconds, tail if status == "error" else "")

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for done, outcome in enumerate(pool.map(run_one, chosen), 1):
            outcomes.append(outcome)
            print(
                f"[{done}/{len(chosen)}] #{outcome.mutant.ident} line {outcome.mutant.lineno} "
                f"{outcome.mutant.kind}: {outcome.status} ({outcome.seconds:.1f} s)",
                flush=True,
            )

    statuses = ("killed", "survived", "timeout", "error")
    counts = {s: sum(o.status == s for o in outcomes) for s in statuses}
    detected = counts["killed"] + counts["timeout"]
    scored = detected + counts["survived"]
    score = 100.0 * detected / scored if scored else 0.0
    print()
    for outcome in outcomes:
        if outcome.status in ("survived", "error"):
            print(f"{outcome.status.upper()} {relative}:{outcome.mutant.lineno}")
            print(_show(outcome.mutant))
            if outcome.detail:
                print(outcome.detail)
    print(
        f"\n{relative}: killed {counts['killed']}, survived {counts['survived']}, "
        f"timed out {counts['timeout']}, errors {counts['error']}; "
        f"score {score:.0f}% ({detected}/{scored})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
