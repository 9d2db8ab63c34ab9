"""Parse multipart/form-data bodies with parsers nobody here wrote.

* :func:`parse_form`: the standard library's ``email`` parser (RFC 2046/7578).
* :func:`node_form_data`: Node's built-in ``Request.formData()`` (undici,
  which follows the HTML standard), run as a subprocess; :data:`NODE` is
  ``None`` when ``node`` is not installed, and tests that need it skip.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import shutil
import subprocess
from typing import Any

__all__ = ["NODE", "node_form_data", "parse_form"]


def parse_form(content_type: str, body: bytes) -> list[tuple[str, str | None, str | None, bytes]]:
    """Parse a multipart/form-data body with the stdlib: (name, filename, type, payload)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart()
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        ctype = part.get("content-type")
        parts.append((name, filename, None if ctype is None else str(ctype),
                      part.get_payload(decode=True)))
    return parts


NODE = shutil.which("node")

# Reads a body on stdin and its Content-Type as argv[1]; prints the entries.
NODE_FORM_DATA = r"""
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const form = await new Request("http://127.0.0.1/", {
  method: "POST", body: Buffer.concat(chunks), headers: {"content-type": process.argv[1]},
}).formData();
const out = [];
for (const [name, value] of form.entries()) {
  if (typeof value === "string") out.push([name, null, null, value]);
  else out.push([name, value.name, value.type,
                 Buffer.from(await value.arrayBuffer()).toString("base64")]);
}
console.log(JSON.stringify(out));
"""


def node_form_data(content_type: str, body: bytes) -> list[list[Any]]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", NODE_FORM_DATA, content_type],
        input=body, capture_output=True, timeout=60, check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]
