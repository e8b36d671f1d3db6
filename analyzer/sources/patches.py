"""Reading patch series: mbox files, patch files, directories of them, stdin.

A :class:`Patch` is one message's diff with what identifies it to a human
(``[PATCH n/N] subject``). Cover letters (0/N) and messages without a diff
are dropped; patches are put in ``n/N`` order.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.message import EmailMessage
from pathlib import Path

from ..errors import InputError

_SUBJECT_TAG = re.compile(r"^\s*\[(?P<tag>[^\]]*)\]\s*")
_COUNTER = re.compile(r"(?:^|\s)(?P<n>\d+)\s*/\s*(?P<total>\d+)(?:\s|$)")
_DIFF_START = re.compile(r"^(?:diff --git |--- (?:a/|/dev/null)|Index: )", re.M)
_PREIMAGE = re.compile(r"^diff --git a/(?P<a>\S+) b/(?P<b>\S+)\n"
                       r"(?P<hdr>(?:(?!diff --git )[^\n]*\n)*?)"
                       r"(?=--- |Binary files |GIT binary patch|diff --git |\Z)", re.M)
_INDEX = re.compile(r"^index (?P<pre>[0-9a-f]{7,64})\.\.(?P<post>[0-9a-f]{7,64})", re.M)
_BASE_COMMIT = re.compile(r"^base-commit: *(?P<sha>[0-9a-f]{7,64})\s*$", re.M)


@dataclass(frozen=True)
class FileChange:
    """One file of a diff: old and new path (None for /dev/null) and preimage blob id."""

    old: str | None
    new: str | None
    preimage: str | None


@dataclass(frozen=True)
class Patch:
    index: int  # 1-based position in the series as applied
    total: int
    subject: str
    source: str  # where it came from (file name, "stdin", a commit id)
    diff: str  # the diff part only, from the first "diff --git"
    base_commit: str | None = None
    diff_line: int = 1  # line of the input file on which the diff starts (checkpatch's #N)

    @property
    def label(self) -> str:
        return f"patch {self.index}/{self.total} '{self.subject}'"


def _clean_subject(subject: str) -> tuple[str, int | None, int | None]:
    subject = " ".join(subject.split())
    n = total = None
    while m := _SUBJECT_TAG.match(subject):
        c = _COUNTER.search(m.group("tag"))
        if c:
            n, total = int(c.group("n")), int(c.group("total"))
        subject = subject[m.end():]
    return subject, n, total


def _body_text(msg: EmailMessage, source: str) -> str:
    """The text/plain body, transfer encoding and charset decoded."""
    part = msg
    if msg.is_multipart():
        plain = [p for p in msg.walk() if p.get_content_type() in ("text/plain", "text/x-patch",
                                                                  "text/x-diff")]
        if not plain:
            return ""
        part = plain[0] if len(plain) == 1 else None
        if part is None:  # body and attached patch: join them
            return "\n".join(_decode(p, source) for p in plain)
    return _decode(part, source)


def _decode(part, source: str) -> str:
    payload = part.get_payload(decode=True)
    if payload is None:
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset)
    except (LookupError, UnicodeDecodeError):
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{source}: message body is not valid {charset}") from None


def _unescape_mboxrd(text: str) -> str:
    # mboxrd quotes "From " lines as ">From ", ">>From " ...; a diff line never
    # starts with ">", so removing one level is always safe.
    return re.sub(r"^>(>*From )", r"\1", text, flags=re.M)


def _diff_part(body: str) -> str:
    m = _DIFF_START.search(body)
    if not m:
        return ""
    diff = body[m.start():]
    # a format-patch signature ("-- \n2.16.1") follows the last hunk
    sig = re.search(r"^-- \n(?:[^\n]*\n?){0,3}\Z", diff, re.M)
    return diff[: sig.start()] if sig else diff


def changes(diff: str) -> list[FileChange]:
    """The files a diff touches, from its ``diff --git`` headers (or ---/+++)."""
    out = []
    for m in _PREIMAGE.finditer(diff):
        hdr = m.group("hdr")
        old, new = m.group("a"), m.group("b")
        if re.search(r"^new file mode", hdr, re.M):
            old = None
        if re.search(r"^deleted file mode", hdr, re.M):
            new = None
        ren_from = re.search(r"^rename from (.+)$", hdr, re.M)
        ren_to = re.search(r"^rename to (.+)$", hdr, re.M)
        if ren_from and ren_to:
            old, new = ren_from.group(1), ren_to.group(1)
        idx = _INDEX.search(hdr)
        pre = idx.group("pre") if idx and old is not None else None
        out.append(FileChange(old, new, pre))
    if not out:  # a plain unified diff without git headers
        for m in re.finditer(r"^--- (\S+).*\n\+\+\+ (\S+)", diff, re.M):
            a, b = m.group(1), m.group(2)
            out.append(FileChange(None if a == "/dev/null" else a.partition("/")[2] or a,
                                  None if b == "/dev/null" else b.partition("/")[2] or b, None))
    return out


def _hunks(diff: str, first_line: int):
    """(path, claimed new start, postimage lines, [(offset in postimage, patch line)])."""
    path, hunk = None, None
    for n, line in enumerate(diff.split("\n"), first_line):
        if line.startswith("+++ "):
            if hunk:
                yield hunk
            hunk = None
            path = None if line[4:].strip() == "/dev/null" else line[4:].strip()[2:]
        elif (m := re.match(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@", line)) and path:
            if hunk:
                yield hunk
            hunk = (path, int(m.group(1)), [], [])
        elif hunk and line.startswith("+"):
            hunk[3].append((len(hunk[2]), n))
            hunk[2].append(line[1:])
        elif hunk and line.startswith(" "):
            hunk[2].append(line[1:])
        elif hunk and line.startswith("diff --git "):
            yield hunk
            hunk = None
    if hunk:
        yield hunk


def _landed(claimed: int, post: list[str], text: str | None) -> int:
    """Where a hunk's postimage sits in the file: git apply moves hunks by an offset."""
    if text is None or not post:
        return claimed
    lines = text.split("\n")
    for delta in range(max(claimed, len(lines)) + 1):
        for start in (claimed - delta, claimed + delta):
            if start >= 1 and lines[start - 1:start - 1 + len(post)] == post:
                return start
    return claimed


def added_lines(patches: list[Patch], after: Callable[[int, str], str | None] | None = None
                ) -> dict[tuple[int, str, int], int]:
    """(patch index, path, new-file line) -> line number in the patch, for added lines.

    Numbered as checkpatch's ``#N``: lines of the input file as sent, headers
    and commit message included. ``after(index, path)`` gives the file as the
    patch left it, to follow hunks that applied at an offset.
    """
    out: dict[tuple[int, str, int], int] = {}
    for p in patches:
        for path, claimed, post, added in _hunks(p.diff, p.diff_line):
            start = _landed(claimed, post, after(p.index, path) if after else None)
            for offset, n in added:
                out[(p.index, path, start + offset)] = n
    return out


def check_paths(patch: Patch) -> None:
    """Refuse paths that leave the tree: absolute, or with a '..' component."""
    for ch in changes(patch.diff):
        for p in (ch.old, ch.new):
            if p is None:
                continue
            if p.startswith("/") or ".." in p.split("/") or "\\" in p:
                raise InputError(f"{patch.label}: path {p!r} escapes the tree")


def _from_message(msg: EmailMessage, source: str) -> tuple[Patch | None, int | None, str | None]:
    """(the patch or None for a message without a diff, its n of n/N, its base-commit)."""
    raw_subject = str(msg.get("Subject", "") or "")
    subject, n, total = _clean_subject(raw_subject)
    body = _unescape_mboxrd(_body_text(msg, source)).replace("\r\n", "\n")
    diff = _diff_part(body)
    m = _BASE_COMMIT.search(body)
    base = m.group("sha") if m else None
    if not diff:
        return None, n, base
    return Patch(n or 0, total or 0, subject or Path(source).name, source, diff, base), n, base


_MBOX_FROM = re.compile(rb"^From \S+ +\S{3} \S{3} +\d+ \d\d:\d\d:\d\d \d{4}\r?$\n?", re.M)
_HEADER = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:")


def _split_mbox(data: bytes, source: str) -> list[tuple[bytes, int]]:
    """The messages, each with the line of the input its headers start on (0-based)."""
    seps = list(_MBOX_FROM.finditer(data))
    if not seps or seps[0].start() != 0:
        raise InputError(f"{source}: malformed mbox (no 'From ' separator line)")
    ends = [m.start() for m in seps[1:]] + [len(data)]
    return [(data[m.end():end], data.count(b"\n", 0, m.end()))
            for m, end in zip(seps, ends, strict=True)]


def _diff_line(chunk: bytes, diff: str, first: int) -> int:
    """The input line where ``diff`` starts (1 when its text is encoded, e.g. base64)."""
    head = diff.split("\n", 1)[0].encode()
    m = re.search(rb"^" + re.escape(head), chunk, re.M)
    return first + chunk.count(b"\n", 0, m.start()) + 1 if m else 1


def _parse_bytes(data: bytes, source: str) -> tuple[list[tuple[Patch, int | None]], str | None]:
    """The patches of one input with their n of n/N, and its cover letter's base-commit."""
    # git am (mailsplit) drops the CR of CRLF line ends: web mail and some
    # archives send them, sometimes on only part of the lines
    data = data.replace(b"\r\n", b"\n")
    lead = len(data) - len(data.lstrip(b"\n"))
    data = data[lead:]
    if not data.strip():
        raise InputError(f"{source}: empty input")
    if b"\0" in data[:65536]:
        raise InputError(f"{source}: not a patch or mbox (binary data)")
    if data.startswith(b"From "):
        raw = _split_mbox(data, source)
    elif _HEADER.match(data) and not data.startswith((b"diff ", b"Index:")):
        raw = [(data, 0)]
    else:  # a bare diff
        try:
            diff = _diff_part(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{source}: not UTF-8") from None
        if not diff:
            raise InputError(f"{source}: no diff found (not a patch or mbox)")
        line = _diff_line(data, diff, lead)
        return [(Patch(0, 0, Path(source).name, source, diff, diff_line=line), None)], None
    out, cover_base = [], None
    for chunk, first in raw:
        msg = email.message_from_bytes(chunk, policy=email.policy.default)
        if not msg.keys():
            raise InputError(f"{source}: malformed mbox (a message without headers)")
        patch, n, base = _from_message(msg, source)
        if patch is not None and n != 0:  # 0/N is a cover letter, even with a diffstat
            out.append((replace(patch, diff_line=_diff_line(chunk, patch.diff, lead + first)),
                        n))
        elif base:
            cover_base = base  # format-patch --base puts it in the cover letter only
    return [(p if p.base_commit or not cover_base else replace(p, base_commit=cover_base), n)
            for p, n in out], cover_base


def read_series(inputs: list[str], stdin: bytes | None = None) -> list[Patch]:
    """Patches from the given files/directories ("-" is stdin), ordered and numbered.

    A cover letter may come as a file of its own (``format-patch -o``); its
    ``base-commit:`` then applies to the patches of the other files.
    """
    found: list[tuple[Patch, int | None]] = []
    cover_base = None
    for source, data in _inputs(inputs, stdin):
        got, base = _parse_bytes(data, source)
        found += got
        cover_base = cover_base or base
    if not found:
        where = inputs[0] if len(inputs) == 1 and inputs[0] != "-" else (
            "stdin" if inputs == ["-"] else "the input")
        raise InputError(f"{where}: no patch found (no message carries a diff)")
    # order by [PATCH n/N] when every patch has a counter; else keep input order
    if all(n is not None for _, n in found):
        found.sort(key=lambda pn: pn[1])
    total = len(found)
    return [replace(p, index=i, total=total, base_commit=p.base_commit or cover_base)
            for i, (p, _) in enumerate(found, 1)]


def _inputs(inputs: list[str], stdin: bytes | None):
    for item in inputs:
        if item == "-":
            yield "stdin", stdin if stdin is not None else b""
        elif os.path.isdir(item):
            names = sorted(p for p in Path(item).iterdir()
                           if p.suffix in (".patch", ".diff", ".eml", ".mbox") and p.is_file())
            if not names:
                raise InputError(f"{item}: no .patch, .diff, .eml or .mbox files")
            for p in names:
                yield str(p), _read(p)
        else:
            yield item, _read(Path(item))


def _read(p: Path) -> bytes:
    """A patch or mbox file, refused past the series-size limit before it is read."""
    from ..limits import check

    try:
        check("series_bytes", p.stat().st_size, str(p))
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory") from None
    except OSError as e:
        raise InputError(f"{p}: cannot read: {e.strerror}") from None
