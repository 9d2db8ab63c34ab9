"""Every example in ``docs/`` runs as written, on loopback, and shows what the page says.

The convention (also stated in ``docs/development.rst``):

* ``.. code-block:: python`` blocks are run. A page's blocks run in order in
  one namespace, in a child process with a time limit, by
  ``tests/support/docs_runner.py``: a block with top-level ``await`` runs on
  one event loop shared by the page (as in the ``python -m asyncio`` REPL),
  any other block runs as a script. A block that starts with ``>>>`` (or a
  ``pycon`` block) is a doctest: each result is compared with the one shown.
* ``.. code-block:: text`` with ``:caption: Output`` right after a Python
  block is that block's output; it must match, with ``...`` standing for
  any text (doctest's ``ELLIPSIS``), as numbers that vary are written.
* ``.. code-block:: console`` shows shell sessions (``$ command`` then its
  output). Every ``asyncnet`` / ``python -m asyncnet`` command in them is
  parsed by the real argument parser. A session made only of loopback
  commands (the asyncnet CLI, ``python -m http.server``, simple shell) is run
  in a temporary directory: a command ending in ``&`` is started in the
  background and waited for until its port accepts connections (the test
  uses a free port in place of the one shown), the others must print what
  the page shows (or exit 0 when it shows nothing). Sessions with other
  commands (``pip``, ``pytest``) are shown, not run: CI runs those itself.
* A bare ``::`` block is plain text (``highlight_language = "none"``); one
  that is Python code fails this test, so that no example escapes it.

Examples included with ``literalinclude`` are files under ``docs/examples/``,
run by ``tests/test_guide_examples.py`` (which checks that every file there
is run by some test), ``tests/framing/test_protocol_examples.py`` and
``tests/http/test_http_client_examples.py``.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import doctest
import inspect
import io
import itertools
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import asyncnet
from asyncnet._cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RUNNER = ROOT / "tests" / "support" / "docs_runner.py"
PAGES = sorted(DOCS.glob("*.rst"))

# A whole page's blocks must finish within this (seconds).
PAGE_TIMEOUT = 120
# One shell command of a session.
COMMAND_TIMEOUT = 60

_DIRECTIVE = re.compile(
    r"^(?P<indent>\s*)\.\.\s+(?:code-block|code|sourcecode)::\s*(?P<lang>\S*)\s*$"
)
_OTHER_DIRECTIVE = re.compile(r"^\s*\.\.\s+\S+::")
_OPTION = re.compile(r"^\s*:(?P<name>[\w-]+):\s*(?P<value>.*)$")


@dataclass
class Block:
    """One literal or code block of a page."""

    page: str
    line: int  # 1-based line of the block's first content line
    lang: str  # "python", "text", "console", ... or "" for a bare "::" block
    text: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"docs/{self.page}:{self.line}"

    @property
    def kind(self) -> str:
        if self.lang in ("python", "python3", "py"):
            return "doctest" if self.text.lstrip().startswith(">>>") else "python"
        if self.lang == "pycon":
            return "doctest"
        if self.lang == "text" and self.options.get("caption", "").strip() == "Output":
            return "output"
        if self.lang == "console":
            return "console"
        return "literal" if self.lang == "" else "other"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _body(lines: list[str], start: int, parent_indent: int) -> tuple[str, int, int]:
    """Return the dedented body after ``start`` (lines indented deeper than the parent)."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    first = i
    body: list[str] = []
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > parent_indent):
        body.append(lines[i])
        i += 1
    while body and not body[-1].strip():
        body.pop()
    if not body:
        return "", first, i
    cut = min(_indent(x) for x in body if x.strip())
    return "\n".join(x[cut:] for x in body) + "\n", first, i


def parse_page(path: Path) -> list[Block]:
    """Find every code-block and bare ``::`` literal block of an RST page, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _DIRECTIVE.match(line)
        if m:
            indent = len(m["indent"])
            options: dict[str, str] = {}
            j = i + 1
            while j < len(lines) and lines[j].strip() and (opt := _OPTION.match(lines[j])):
                options[opt["name"]] = opt["value"]
                j += 1
            text, first, end = _body(lines, j, indent)
            blocks.append(Block(path.name, first + 1, m["lang"], text, options))
            i = end
            continue
        if line.rstrip().endswith("::") and not _OTHER_DIRECTIVE.match(line):
            text, first, end = _body(lines, i + 1, _indent(line))
            if text:
                blocks.append(Block(path.name, first + 1, "", text))
            i = end
            continue
        i += 1
    return blocks


def _is_python_code(text: str) -> bool:
    """True for text that compiles as Python and does something (imports, calls, assigns...)."""
    try:
        tree = compile(
            text, "<block>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
    except SyntaxError:
        return False
    doing = (
        ast.Import, ast.ImportFrom, ast.Call, ast.Assign, ast.AnnAssign, ast.AugAssign,
        ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.With, ast.AsyncWith,
        ast.For, ast.AsyncFor, ast.Await,
    )  # fmt: skip
    return any(isinstance(node, doing) for node in ast.walk(tree))


ALL_BLOCKS = {page.name: parse_page(page) for page in PAGES}
RUNNABLE_PAGES = sorted(
    name
    for name, blocks in ALL_BLOCKS.items()
    if any(b.kind in ("python", "doctest") for b in blocks)
)


def _check_output(want: str, got: str) -> bool:
    want = "\n".join(x.rstrip() for x in want.strip("\n").splitlines()) + "\n"
    got = "\n".join(x.rstrip() for x in got.strip("\n").splitlines()) + "\n"
    return doctest.OutputChecker().check_output(want, got, doctest.ELLIPSIS)


def _is_slow_callback_log(line: str) -> bool:
    # asyncio debug mode (-X dev) logs any step over 100 ms: timing, not a defect.
    return line.startswith("Executing <") and " took " in line and line.endswith(" seconds")


# -- the parser of this file is itself tested, on a page written for it --------

_SAMPLE = """\
Title
=====

Text::

    plain = "literal"

.. code-block:: python

    x = 1
    print(x)

.. code-block:: text
   :caption: Output

   1

.. note::

   A note with code::

       print("nested")

.. code-block:: console

    $ python -m asyncnet --version
"""


def test_page_parser_finds_every_block(tmp_path: Path) -> None:
    page = tmp_path / "sample.rst"
    page.write_text(_SAMPLE)
    blocks = parse_page(page)
    assert [(b.kind, b.text) for b in blocks] == [
        ("literal", 'plain = "literal"\n'),
        ("python", "x = 1\nprint(x)\n"),
        ("output", "1\n"),
        ("literal", 'print("nested")\n'),
        ("console", "$ python -m asyncnet --version\n"),
    ]
    assert [_is_python_code(b.text) for b in blocks if b.kind == "literal"] == [True, True]


def _run_spec(blocks: list[dict[str, str]], tmp_path: Path) -> list[dict[str, str | None]]:
    spec, result = tmp_path / "spec.json", tmp_path / "result.json"
    spec.write_text(json.dumps(blocks))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(RUNNER), str(spec), str(result)],
        capture_output=True, text=True, timeout=PAGE_TIMEOUT, cwd=tmp_path, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results: list[dict[str, str | None]] = json.loads(result.read_text())
    return results


def test_runner_shares_one_namespace_and_one_loop_and_checks_doctests(tmp_path: Path) -> None:
    ok = _run_spec(
        [
            {"name": "a", "kind": "python", "source": "import asyncio\nx = 2\nprint(x)\n"},
            {
                "name": "b",
                "kind": "python",
                "source": "ev = asyncio.Event()\nawait asyncio.sleep(0)\n",
            },
            {"name": "c", "kind": "python", "source": "ev.set()\nprint(await ev.wait(), x)\n"},
            {"name": "d", "kind": "doctest", "source": ">>> await asyncio.sleep(0, result=x)\n2\n"},
        ],
        tmp_path,
    )
    assert [(r["output"], r["error"]) for r in ok] == [
        ("2\n", None),
        ("", None),
        ("True 2\n", None),
        ("", None),
    ]


def test_runner_reports_wrong_doctests_failing_blocks_and_leftover_tasks(tmp_path: Path) -> None:
    [wrong] = _run_spec([{"name": "d", "kind": "doctest", "source": ">>> 1 + 1\n3\n"}], tmp_path)
    assert wrong["error"] is not None and "expected:\n3" in wrong["error"]
    (tmp_path / "2").mkdir()
    failed = _run_spec(
        [
            {"name": "a", "kind": "python", "source": "raise ValueError('boom')\n"},
            {"name": "b", "kind": "python", "source": "print('never')\n"},
        ],
        tmp_path / "2",
    )
    assert len(failed) == 1 and "ValueError: boom" in (failed[0]["error"] or "")
    (tmp_path / "3").mkdir()
    source = (
        "import asyncio\nt = asyncio.ensure_future(asyncio.sleep(60))\nawait asyncio.sleep(0)\n"
    )
    left = _run_spec([{"name": "a", "kind": "python", "source": source}], tmp_path / "3")
    assert left[-1]["name"] == "end of page" and "tasks left running" in (left[-1]["error"] or "")


def test_output_comparison_allows_ellipsis_only_where_written() -> None:
    assert _check_output("200 ... bytes\n", "200 1234 bytes\n")
    assert _check_output("a\n...\n", "a\nb\nc\n")
    assert not _check_output("200 12 bytes\n", "200 1234 bytes\n")
    assert not _check_output("a\nb\n", "a\n")


def test_the_docs_have_examples_to_run() -> None:
    assert {"index.rst", "quickstart.rst", "http-client.rst", "fetching.rst"} <= set(RUNNABLE_PAGES)


# -- Python blocks ----------------------------------------------------------


def _run_page(name: str, tmp_path: Path) -> tuple[list[Block], list[dict[str, str | None]], str]:
    blocks = [b for b in ALL_BLOCKS[name] if b.kind in ("python", "doctest")]
    spec = tmp_path / "spec.json"
    result = tmp_path / "result.json"
    spec.write_text(
        json.dumps([{"name": b.name, "kind": b.kind, "source": b.text} for b in blocks])
    )
    work = tmp_path / "cwd"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", COLUMNS="80")
    env.pop("NO_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-X", "dev", str(RUNNER), str(spec), str(result)],
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        cwd=work,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stderr = "\n".join(x for x in proc.stderr.splitlines() if not _is_slow_callback_log(x))
    return blocks, json.loads(result.read_text()), stderr


@pytest.mark.parametrize("name", RUNNABLE_PAGES)
def test_python_blocks_run_and_print_what_the_page_shows(name: str, tmp_path: Path) -> None:
    blocks, results, stderr = _run_page(name, tmp_path)
    for res in results:
        assert res["error"] is None, f"{res['name']} failed:\n{res['error']}"
    assert len(results) == len(blocks)
    # -X dev: an unclosed transport, a never-retrieved exception or a
    # ResourceWarning is reported on stderr; an example must leave none.
    assert stderr == "", stderr
    outputs = {r["name"]: r["output"] for r in results}
    page = ALL_BLOCKS[name]
    for before, block in itertools.pairwise(page):
        if block.kind != "output":
            continue
        got = outputs[before.name] or ""
        assert _check_output(block.text, got), (
            f"{before.name}: output differs from {block.name}\nshown:\n{block.text}\ngot:\n{got}"
        )


@pytest.mark.parametrize("name", sorted(ALL_BLOCKS))
def test_output_blocks_follow_a_python_block(name: str) -> None:
    page = ALL_BLOCKS[name]
    for before, block in zip([None, *page], page, strict=False):
        if block.kind == "output":
            assert before is not None and before.kind == "python", (
                f"{block.name}: an Output block must directly follow the Python block it shows"
            )


@pytest.mark.parametrize("name", sorted(ALL_BLOCKS))
def test_no_python_hides_in_a_plain_block(name: str) -> None:
    for block in ALL_BLOCKS[name]:
        if block.kind in ("literal", "other") and block.lang not in ("rst", "ini", "toml"):
            assert not _is_python_code(block.text), (
                f"{block.name} is Python in a plain block: write '.. code-block:: python' "
                "so the tests run it"
            )
            assert not block.text.startswith("$ "), (
                f"{block.name} is a shell session: write '.. code-block:: console'"
            )


# -- shell sessions -----------------------------------------------------------


@dataclass
class Command:
    line: str
    expected: str
    background: bool


def _session(block: Block) -> list[Command]:
    commands: list[Command] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        assert line.startswith("$ "), f"{block.name}: output before any command: {line!r}"
        cmd = line[2:]
        while cmd.endswith("\\"):
            i += 1
            cmd = cmd[:-1] + " " + lines[i].strip()
        i += 1
        out: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            out.append(lines[i])
            i += 1
        background = cmd.rstrip().endswith("&")
        if background:
            cmd = cmd.rstrip()[:-1].rstrip()
        commands.append(Command(cmd, "\n".join(out), background))
    return commands


CONSOLE_BLOCKS = [b for blocks in ALL_BLOCKS.values() for b in blocks if b.kind == "console"]
# Commands a session may contain and still be run by the test: loopback only.
_LOOPBACK_COMMANDS = (
    "python -m asyncnet",
    "asyncnet",
    "python -m http.server",
    "mkdir",
    "printf",
    "echo",
    "cat",
)


def _asyncnet_argvs(command: str) -> list[list[str]]:
    argvs = []
    for part in command.split("|"):
        words = shlex.split(part)
        if words[:3] == ["python", "-m", "asyncnet"]:
            argvs.append(words[3:])
        elif words[:1] == ["asyncnet"]:
            argvs.append(words[1:])
    return argvs


@pytest.mark.parametrize("block", CONSOLE_BLOCKS, ids=lambda b: b.name)
def test_cli_commands_shown_are_accepted_by_the_parser(block: Block) -> None:
    for command in _session(block):
        for argv in _asyncnet_argvs(command.line):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    build_parser().parse_args(argv)
                except SystemExit as exc:
                    assert exc.code == 0, f"{block.name}: {command.line}\n{err.getvalue()}"


def _runnable(block: Block) -> bool:
    return all(
        any(part.strip().startswith(p) for p in _LOOPBACK_COMMANDS)
        for c in _session(block)
        for part in c.line.split("|")
    )


RUNNABLE_SESSIONS = [b for b in CONSOLE_BLOCKS if _runnable(b)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited with status {proc.returncode}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a port another process opens: no event to wait on
    raise AssertionError(f"{what} did not listen on port {port}")


def _session_env(tmp_path: Path) -> dict[str, str]:
    """PATH with ``python`` (this interpreter) and ``asyncnet`` (as pip writes it) first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    script = bin_dir / "asyncnet"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom asyncnet._cli import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", COLUMNS="80")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env.pop("NO_COLOR", None)
    return env


def test_some_sessions_are_run() -> None:
    assert len(RUNNABLE_SESSIONS) >= 2


@pytest.mark.parametrize("block", RUNNABLE_SESSIONS, ids=lambda b: b.name)
def test_loopback_sessions_run_and_print_what_the_page_shows(block: Block, tmp_path: Path) -> None:
    commands = _session(block)
    # The page shows fixed ports; the test runs the session on free ones.
    ports = {}
    for c in commands:
        if c.background:
            m = re.search(r"(?:--port[ =]|http\.server )(\d{4,5})\b", c.line)
            assert m, f"{block.name}: a background server must name its port: {c.line}"
            ports[m[1]] = str(_free_port())

    def local(text: str) -> str:
        for shown, real in ports.items():
            text = re.sub(rf"(?<!\d){shown}(?!\d)", real, text)
        return text

    env = _session_env(tmp_path)
    work = tmp_path / "cwd"
    work.mkdir()
    background: list[subprocess.Popen[bytes]] = []
    try:
        for c in commands:
            line = local(c.line)
            if c.background:
                assert not c.expected.strip(), f"{block.name}: no output may be shown for {c.line}"
                proc = subprocess.Popen(
                    ["bash", "-c", f"exec {line}"],
                    cwd=work, env=env, start_new_session=True,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                background.append(proc)
                port = int(re.search(r"(?:--port[ =]|http\.server )(\d+)", line)[1])  # type: ignore[index]
                _wait_listening(port, proc, c.line)
                continue
            done = subprocess.run(
                ["bash", "-c", line],
                cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True, timeout=COMMAND_TIMEOUT, check=False,
            )  # fmt: skip
            if c.expected.strip():
                assert _check_output(local(c.expected), done.stdout), (
                    f"{block.name}: {c.line}\nshown:\n{c.expected}\ngot:\n{done.stdout}"
                )
            else:
                assert done.returncode == 0, f"{block.name}: {c.line}\n{done.stdout}"
    finally:
        for proc in background:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# -- the reference documents every public name and field ----------------------

_AUTO = re.compile(r"^\.\.\s+auto(?:class|function|exception|data)::\s+asyncnet\.(\w+)\s*$")


def _reference_directives() -> dict[str, list[str]]:
    """Map each public name documented with autodoc to the options of its directive."""
    found: dict[str, list[str]] = {}
    for page in ("reference.rst", "exceptions.rst"):
        lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = _AUTO.match(line)
            if m:
                opts = []
                for nxt in lines[i + 1 :]:
                    if not nxt.startswith("   :"):
                        break
                    opts.append(nxt.strip())
                found[m[1]] = opts
    return found


def test_reference_lists_every_public_name() -> None:
    documented = _reference_directives()
    missing = sorted(set(asyncnet.__all__) - set(documented) - {"__version__"})
    assert missing == []


def _public_dataclasses() -> list[type]:
    return [
        obj for name in asyncnet.__all__
        if inspect.isclass(obj := getattr(asyncnet, name)) and dataclasses.is_dataclass(obj)
    ]  # fmt: skip


def test_public_dataclasses_document_every_field() -> None:
    """Each public field has a ``#:`` comment, and the reference shows every one."""
    directives = _reference_directives()
    undocumented = []
    for cls in _public_dataclasses():
        fields = [f for f in dataclasses.fields(cls) if not f.name.startswith("_")]
        members = next((o for o in directives[cls.__name__] if o.startswith(":members:")), None)
        assert members is not None, f"{cls.__name__}: the reference needs ':members:'"
        listed = {m.strip() for m in members.removeprefix(":members:").split(",") if m.strip()}
        hidden = [f.name for f in fields if listed and f.name not in listed]
        assert hidden == [], f"{cls.__name__}: ':members:' leaves out {hidden}"
        # The class says asyncnet (tracebacks read asyncnet.X); its source
        # is in the module it was defined in.
        module = sys.modules[asyncnet._defined_in[cls.__name__]]
        tree = inspect.getsource(module).splitlines()
        start = next(i for i, x in enumerate(tree) if re.match(rf"class {cls.__name__}\b", x))
        source = tree[start:]
        for f in fields:
            at = next(i for i, x in enumerate(source) if re.match(rf"\s+{f.name}\s*:", x))
            if not source[at - 1].strip().startswith("#:"):
                undocumented.append(f"{cls.__name__}.{f.name}")
    assert undocumented == []


def test_fetching_page_explains_every_result_field() -> None:
    text = (DOCS / "fetching.rst").read_text(encoding="utf-8")
    section = text.split("What a result holds")[1].split("\nLimits\n")[0]
    missing = [
        f.name for f in dataclasses.fields(asyncnet.FetchResult) if f"``{f.name}``" not in section
    ]
    assert missing == []
