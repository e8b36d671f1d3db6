"""Build public-inbox (v2) epochs for tests and benchmarks: one commit per message,
the raw message in a file named ``m`` (``d`` for a deletion), via git fast-import."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from .gitutil import ENV

AUTHOR = "Sam Bobroff <sam.bobroff@au1.ibm.com>"


def mail(msgid: str | None, subject: str, body: str | bytes, *, day: int,
         parents: Sequence[str] = (), author: str = AUTHOR, extra: str = "") -> bytes:
    """A raw message; ``parents`` are References, the last one also In-Reply-To."""
    hdr = [f"From: {author}", f"Subject: {subject}",
           f"Date: Thu, {day:02d} Apr 2018 10:00:00 +0000"]
    if msgid is not None:
        hdr.append(f"Message-ID: <{msgid}>")
    if parents:
        hdr.append(f"In-Reply-To: <{parents[-1]}>")
        hdr.append("References: " + " ".join(f"<{p}>" for p in parents))
    head = ("\n".join(hdr) + "\n" + extra).encode()
    return head + b"\n" + (body.encode() if isinstance(body, str) else body)


def _blob_cmd(path: str, data: bytes) -> bytes:
    return f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"


def append(epoch: Path, items: Iterable[bytes | tuple[str, bytes]]) -> None:
    """Append one commit per item to ``epoch`` (created bare if missing): a message,
    or ``("d", message)`` to delete it as public-inbox does."""
    if not (epoch / "HEAD").exists():
        subprocess.run(["git", "init", "-q", "--bare", "-b", "master", str(epoch)], env=ENV,
                       check=True)
    has_tip = subprocess.run(["git", "-C", str(epoch), "rev-parse", "-q", "--verify",
                              "refs/heads/master"], env=ENV, capture_output=True).returncode == 0
    stream = []
    for i, item in enumerate(items):
        kind, data = item if isinstance(item, tuple) else ("m", item)
        msg = f"message {i}\n".encode()
        stream.append(b"commit refs/heads/master\n"
                      b"committer Inbox <inbox@example.invalid> 1523526000 +0000\n"
                      + f"data {len(msg)}\n".encode() + msg)
        if i == 0 and has_tip:
            stream.append(b"from refs/heads/master^0\n")
        if kind == "d":
            stream.append(b"D m\n" + _blob_cmd("d", data))
        else:
            stream.append(b"D d\n" + _blob_cmd("m", data))
        stream.append(b"\n")
    subprocess.run(["git", "-C", str(epoch), "fast-import", "--quiet"], env=ENV,
                   input=b"".join(stream), check=True)
