"""Run one documentation page's Python blocks in order, as a reader would paste them.

Used by ``tests/test_docs_examples.py`` as a child process::

    python tests/support/docs_runner.py SPEC.json RESULT.json

``SPEC.json`` is a list of blocks ``{"name", "kind", "source"}`` with kind
``"python"`` or ``"doctest"``. All blocks of a page share one namespace, so a
later block may use what an earlier one defined. The rules are those of the
``python -m asyncio`` REPL:

* a block without a top-level ``await`` runs as a script in the main thread
  (its own ``asyncio.run(...)`` works, signal handlers included);
* a block with a top-level ``await`` (or ``async with`` / ``async for``) runs
  on one event loop kept for the whole page in a second thread, so objects
  made by one such block can be used by the next.

Each block's stdout is captured separately. ``RESULT.json`` gets one entry per
block (its output and, if it raised, the traceback) and the runner stops at
the first failure. At the end the page loop must have no task left running.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import doctest
import inspect
import io
import json
import sys
import threading
import traceback
from typing import Any

__all__ = ["main"]

# One block may not take longer than this (the test also bounds the whole page).
BLOCK_TIMEOUT = 60.0


class _PageLoop:
    """The event loop shared by a page's top-level-await blocks, in its own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(BLOCK_TIMEOUT)

    def close(self) -> list[str]:
        """Stop the loop; return a description of tasks a block left running."""

        async def leftovers() -> list[str]:
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()
            return [repr(t) for t in tasks]

        left = self.run(leftovers())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(BLOCK_TIMEOUT)
        self.loop.close()
        return left


def _compile(source: str, name: str, mode: str) -> Any:
    return compile(source, name, mode, flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


def _execute(code: Any, namespace: dict[str, Any], page: list[_PageLoop | None]) -> None:
    if code.co_flags & inspect.CO_COROUTINE:
        if page[0] is None:
            page[0] = _PageLoop()
        page[0].run(eval(code, namespace))
    else:
        exec(code, namespace)


def _run_python(
    block: dict[str, Any], ns: dict[str, Any], page: list[_PageLoop | None]
) -> dict[str, Any]:
    out = io.StringIO()
    error = None
    try:
        code = _compile(block["source"], block["name"], "exec")
        with contextlib.redirect_stdout(out):
            _execute(code, ns, page)
    except BaseException:  # a failing example, whatever it raised, is reported
        error = traceback.format_exc()
    return {"name": block["name"], "output": out.getvalue(), "error": error}


def _run_doctest(
    block: dict[str, Any], ns: dict[str, Any], page: list[_PageLoop | None]
) -> dict[str, Any]:
    """Run ``>>>`` examples like the REPL and compare each with the output shown."""
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS
    mismatches = []
    for example in doctest.DocTestParser().get_examples(block["source"]):
        out = io.StringIO()
        got_exc = None
        try:
            code = _compile(example.source, block["name"], "single")
            with contextlib.redirect_stdout(out):
                # "single" mode echoes expression values through sys.displayhook,
                # which writes to the redirected sys.stdout.
                _execute(code, ns, page)
        except Exception as exc:
            got_exc = "".join(traceback.format_exception_only(type(exc), exc))
        if example.exc_msg is not None:
            ok = got_exc is not None and checker.check_output(example.exc_msg, got_exc, flags)
            got = got_exc or out.getvalue()
        else:
            got = out.getvalue() + (got_exc or "")
            ok = got_exc is None and checker.check_output(example.want, got, flags)
        if not ok:
            mismatches.append(
                f">>> {example.source.rstrip()}\nexpected:\n{example.want or example.exc_msg}"
                f"got:\n{got}"
            )
    return {
        "name": block["name"],
        "output": "",
        "error": "\n".join(mismatches) if mismatches else None,
    }


def main(argv: list[str]) -> int:
    spec_path, result_path = argv
    with open(spec_path, encoding="utf-8") as f:
        blocks = json.load(f)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    page: list[_PageLoop | None] = [None]
    results = []
    for block in blocks:
        run = _run_doctest if block["kind"] == "doctest" else _run_python
        result = run(block, namespace, page)
        results.append(result)
        if result["error"] is not None:
            break
    if page[0] is not None:
        left = page[0].close()
        if left and all(r["error"] is None for r in results):
            results.append(
                {"name": "end of page", "output": "", "error": f"tasks left running: {left}"}
            )
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
