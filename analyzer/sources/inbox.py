"""Patch series where they live: a public-inbox archive, or a range of a remote.

A public-inbox (v2) epoch is a git repository whose every commit holds one raw
message in a file named ``m`` (a commit holding ``d`` deletes that message).
Each archive is fetched into the cache next to a SQLite index of its headers
(Message-ID, subject, author, date, In-Reply-To/References), updated after
every fetch from the commits that are new since the last indexed tip, so a
lookup costs a few queries however large the archive is. Mail is untrusted:
a message that cannot be used is one warning line, never a traceback.

Fetches go through :func:`analyzer.sources.gitread.fetch_to_cache`, as every
fetch of vpcheck does: the same URL check, environment, protocol allow-list,
lock and cache directory.
"""

from __future__ import annotations

import contextlib
import email.errors
import email.header
import email.parser
import email.policy
import email.utils
import hashlib
import re
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .gitread import cache_repo, fetch_to_cache, is_safe_ref
from .tree import cache_dir

Warn = Callable[[str], None]

INBOX_REF = "refs/vpcheck/inbox"
SCHEMA = "1"
MAX_THREAD = 5000  # messages (and Message-IDs referred to) in one thread
MAX_REFS = 128  # References kept per message: the nearest ancestors
MAX_HEADER = 256 * 1024  # header block parsed per message
BATCH = 1000  # messages per git cat-file --batch
MAX_MESSAGE = 32 * 1024 * 1024  # a patch mail larger than this is refused
_TEXT_MAX = 300  # characters kept of a subject or author

_MSGID = re.compile(r"<([^<>\s\x00-\x1f\x7f]{1,998})>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_REPLY = re.compile(r"^\s*(?:re|aw|fwd?|sv|antw|odp|r|\w{2,3}(?=:\s*\[))\s*:\s*", re.I)
_TAGS = re.compile(r"^\s*\[([^\]]*)\]\s*")
_COUNTER = re.compile(r"^(\d{1,5})/(\d{1,5})$")
_VERSION = re.compile(r"^v(\d{1,5})$", re.I)


# --- headers ----------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    """What the index keeps of one message: enough to thread and classify it."""

    blob: str
    msgid: str
    subject: str
    author: str
    date: float
    in_reply_to: str | None
    parents: tuple[str, ...]  # In-Reply-To and References, nearest last
    where: str = ""  # archive it came from (for messages)


def clean_msgid(value: str | None) -> str | None:
    """``<id@host>`` (or a bare ``id@host``) as the id without brackets."""
    if not value:
        return None
    m = _MSGID.search(value)
    if m:
        return m.group(1)
    bare = value.strip()
    ok = bare and len(bare) <= 998 and not re.search(r"[\s<>\x00-\x1f\x7f]", bare)
    return bare if ok else None


def msgid_argument(text: str) -> str:
    """A Message-ID as users paste it: bare, in ``<>``, ``id:…``, or a list-archive URL."""
    text = text.strip()
    if re.match(r"^https?://", text, re.I):
        parts = [urllib.parse.unquote(p) for p in urllib.parse.urlsplit(text).path.split("/")]
        found = [p for p in parts if "@" in p]
        if not found:
            raise InputError(f"{text}: no Message-ID in this URL")
        text = found[-1]
    text = re.sub(r"^(?:rfc822msg)?id:", "", text)
    mid = clean_msgid(text)
    if mid is None:
        raise InputError(f"{text!r}: not a Message-ID")
    return mid


def _text(value) -> str:
    """A header as one printable line: encoded words decoded, control characters gone."""
    raw = str(value or "")
    with contextlib.suppress(ValueError, LookupError, UnicodeError,
                             email.errors.HeaderParseError):
        raw = str(email.header.make_header(email.header.decode_header(raw)))
    return _CONTROL.sub(" ", " ".join(raw.split()))[:_TEXT_MAX].strip()


def _date(value) -> float:
    try:
        return email.utils.parsedate_to_datetime(str(value)).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0


def parse_headers(blob: str, raw: bytes) -> Header | str:
    """The index row of one message, or why it cannot have one."""
    try:
        msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
        mid = clean_msgid(str(msg.get("Message-ID", "") or ""))
        if mid is None:
            return "no Message-ID"
        irt = clean_msgid(str(msg.get("In-Reply-To", "") or ""))
        refs = _MSGID.findall(str(msg.get("References", "") or ""))
        parents = [r for r in dict.fromkeys([*refs, *([irt] if irt else [])]) if r != mid]
        return Header(blob, mid, _text(msg.get("Subject")), _text(msg.get("From")),
                      _date(msg.get("Date")), irt if irt != mid else None,
                      tuple(parents[-MAX_REFS:]))
    except (ValueError, TypeError, LookupError, UnicodeError, IndexError, AttributeError,
            email.errors.MessageError) as e:
        return f"unreadable headers ({type(e).__name__})"


# --- the Message-ID index ---------------------------------------------------

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS msgs (seq INTEGER PRIMARY KEY, blob TEXT, msgid TEXT,
    subject TEXT, author TEXT, date REAL, irt TEXT, parents TEXT);
CREATE TABLE IF NOT EXISTS links (seq INTEGER, parent TEXT);
CREATE INDEX IF NOT EXISTS msgs_msgid ON msgs (msgid);
CREATE INDEX IF NOT EXISTS msgs_blob ON msgs (blob);
CREATE INDEX IF NOT EXISTS links_parent ON links (parent);
"""


def _connect(path: Path, warn: Warn) -> sqlite3.Connection:
    """Open (or create) an index; a damaged or outdated one is rebuilt."""
    for attempt in (1, 2):
        try:
            conn = sqlite3.connect(path)
            conn.executescript(_SCHEMA_SQL)
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None or row[0] == SCHEMA:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA,))
                conn.commit()
                return conn
            conn.close()
        except sqlite3.DatabaseError:
            if attempt == 2:
                raise InputError(f"{path}: cannot use the index (remove it)") from None
            warn(f"{path}: damaged index, rebuilding it")
        path.unlink(missing_ok=True)
    raise InputError(f"{path}: cannot use the index (remove it)")


def _new_blobs(repo, since: str | None, tip: str) -> tuple[list[str], list[str]]:
    """Blobs of messages added (``m``) and deleted (``d``) by the commits after ``since``."""
    span = f"{since}..{tip}" if since else tip
    out = repo.git.log("--reverse", "--no-renames", "--raw", "--no-abbrev", "--root",
                       "--format=%x00%H", span)
    added, deleted = [], []
    for line in out.splitlines():
        if not line.startswith(":"):
            continue
        info, _, path = line.partition("\t")
        fields = info.split()
        if len(fields) < 5 or fields[4][:1] not in "AM":
            continue
        if path == "m":
            added.append(fields[3])
        elif path == "d":
            deleted.append(fields[3])
    return added, deleted


def _blobs(repo, blobs: Sequence[str]) -> Iterable[tuple[str, bytes]]:
    """Stored messages by blob id, through one ``git cat-file --batch`` per BATCH blobs
    (a round trip per blob costs more than parsing it)."""
    import subprocess

    for at in range(0, len(blobs), BATCH):
        ids = blobs[at: at + BATCH]
        handle = repo.git.execute(["git", "cat-file", "--batch"], as_process=True,
                                  istream=subprocess.PIPE)
        out, _ = handle.proc.communicate(("\n".join(ids) + "\n").encode())
        pos = 0
        for blob in ids:
            eol = out.index(b"\n", pos)
            head = out[pos:eol].split()
            if len(head) != 3 or head[1] != b"blob":
                pos = eol + 1
                yield blob, b""
                continue
            size = int(head[2])
            yield blob, out[eol + 1: eol + 1 + size]
            pos = eol + 1 + size + 1


def _headers(raw: bytes) -> bytes:
    """The header block of one message: what the index is built from."""
    end = re.search(rb"\r?\n\r?\n", raw)
    return raw[: end.end()] if end else raw[:MAX_HEADER]


def _is_ancestor(repo, old: str, new: str) -> bool:
    import git

    try:
        repo.git.merge_base("--is-ancestor", old, new)
        return True
    except git.GitCommandError:
        return False


def update_index(repo, tip: str, path: Path, label: str, warn: Warn) -> int:
    """Bring the index up to the fetched ``tip``; return how many messages were read."""
    conn = _connect(path, warn)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='tip'").fetchone()
        since = row[0] if row else None
        if since == tip:
            return 0
        if since and not _is_ancestor(repo, since, tip):
            warn(f"{label}: the archive's history was rewritten; re-indexing it")
            conn.execute("DELETE FROM msgs")
            conn.execute("DELETE FROM links")
            since = None
        added, deleted = _new_blobs(repo, since, tip)
        rows = []
        for blob, raw in _blobs(repo, added):
            h = parse_headers(blob, _headers(raw))
            if isinstance(h, str):
                warn(f"{label}: message in blob {blob[:12]}: {h}; skipped")
            else:
                rows.append(h)
        _store(conn, rows, deleted)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?)", (tip,))
        conn.commit()
        return len(added)
    finally:
        conn.close()


def _store(conn: sqlite3.Connection, rows: list[Header], deleted: list[str]) -> None:
    start = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM msgs").fetchone()[0] + 1
    conn.executemany("INSERT INTO msgs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
        (start + i, h.blob, h.msgid, h.subject, h.author, h.date, h.in_reply_to,
         " ".join(h.parents)) for i, h in enumerate(rows)])
    conn.executemany("INSERT INTO links VALUES (?, ?)", [
        (start + i, p) for i, h in enumerate(rows) for p in h.parents])
    for blob in deleted:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM msgs WHERE blob=?", (blob,))]
        conn.executemany("DELETE FROM msgs WHERE seq=?", [(s,) for s in seqs])
        conn.executemany("DELETE FROM links WHERE seq=?", [(s,) for s in seqs])


@dataclass(frozen=True)
class Archive:
    """One fetched and indexed public-inbox epoch."""

    url: str
    repo_path: str
    index: Path


def open_archive(url: str, warn: Warn) -> tuple[Archive, int]:
    """Fetch (or update) one epoch and its index; return it and the messages newly read."""
    fetched = fetch_to_cache(url, [f"+HEAD:{INBOX_REF}"], "inbox")
    url, repo = fetched.url, cache_repo(fetched.path)
    try:
        index = Path(repo.git_dir).with_suffix(".sqlite3")
        read = update_index(repo, fetched.commits[0], index, url, warn)
        return Archive(url, repo.git_dir, index), read
    finally:
        repo.close()


# --- threads ----------------------------------------------------------------


def _rows(conn: sqlite3.Connection, sql: str, arg: str, where: str) -> list[Header]:
    return [Header(b, m, s, a, d, i, tuple(p.split()), where)
            for b, m, s, a, d, i, p in conn.execute(sql, (arg,))]


_BY_ID = ("SELECT blob, msgid, subject, author, date, irt, parents FROM msgs "
          "WHERE msgid=? ORDER BY seq")
_CHILDREN = ("SELECT m.blob, m.msgid, m.subject, m.author, m.date, m.irt, m.parents "
             "FROM links l JOIN msgs m ON m.seq = l.seq WHERE l.parent=? ORDER BY m.seq")


def thread(archives: Sequence[Archive], msgid: str, warn: Warn) -> list[Header]:
    """Every message connected to ``msgid`` through In-Reply-To/References, both ways.

    Ids that were referred to but never archived still connect their
    replies. Loops are harmless (each id is visited once); a duplicate id
    keeps its first message; a thread beyond MAX_THREAD ids is refused.
    """
    conns = [(a.url, sqlite3.connect(a.index)) for a in archives]
    try:
        if not any(_rows(c, _BY_ID, msgid, u) for u, c in conns):
            names = ", ".join(a.url for a in archives)
            if not any(c.execute("SELECT 1 FROM msgs LIMIT 1").fetchone() for _, c in conns):
                raise InputError(f"{names}: no message at all (not a public-inbox archive?)")
            raise InputError(f"<{msgid}>: no such message in {names}")
        seen, queue, found = {msgid}, [msgid], {}
        while queue:
            mid = queue.pop()
            same = [h for u, c in conns for h in _rows(c, _BY_ID, mid, u)]
            near = [h.msgid for u, c in conns for h in _rows(c, _CHILDREN, mid, u)]
            if same:
                found[mid] = same[0]
                near += same[0].parents
                if len({h.blob for h in same}) > 1:
                    warn(f"<{mid}>: {len(same)} messages carry this Message-ID; using the "
                         f"first ({same[0].where}, {same[0].blob[:12]})")
            for n in near:
                if n not in seen:
                    seen.add(n)
                    queue.append(n)
            if len(seen) > MAX_THREAD:
                raise InputError(f"<{msgid}>: thread of more than {MAX_THREAD} messages")
        return sorted(found.values(), key=lambda h: (h.date, h.msgid))
    finally:
        for _, c in conns:
            c.close()


# --- series -----------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What a subject line says about its message: ``[RFC PATCH v3 07/12] text``."""

    text: str
    reply: bool
    revision: int | None  # None: not stated (v1)
    n: int | None
    total: int | None


def parse_subject(subject: str) -> Subject:
    rest, reply = subject, False
    while m := _REPLY.match(rest):
        rest, reply = rest[m.end():], True
    revision, n, total = None, None, None
    while m := _TAGS.match(rest):
        for word in m.group(1).replace(",", " ").split():
            if (c := _COUNTER.match(word)) is not None:
                n, total = int(c.group(1)), int(c.group(2))
            elif (v := _VERSION.match(word)) is not None:
                revision = int(v.group(1))
        rest = rest[m.end():]
    return Subject(rest.strip(), reply, revision, n, total)


@dataclass(frozen=True)
class SeriesMeta:
    subject: str
    author: str
    message_id: str
    revision: int

    def as_dict(self) -> dict:
        return {"subject": self.subject, "author": self.author,
                "message_id": f"<{self.message_id}>", "revision": self.revision}


@dataclass(frozen=True)
class Picked:
    """One revision of a series: its patch mails in order, and what names it."""

    meta: SeriesMeta
    messages: tuple[tuple[Header, bytes], ...]
    base_commit: str | None = None  # the cover letter's base-commit: trailer (b4 puts it there)


def _revision_of(h: Header, s: Subject, by_id: dict[str, Header]) -> int:
    """A revision not in the subject is the cover's, when the patch replies to one (as b4)."""
    if s.revision is not None:
        return s.revision
    parent = by_id.get(h.in_reply_to or "")
    if parent is not None:
        ps = parse_subject(parent.subject)
        if ps.n == 0 and ps.revision is not None and not ps.reply:
            return ps.revision
    return 1


def _is_patch(h: Header, raw: bytes, s: Subject, warn: Warn) -> bool:
    """A message is a patch when patches.py finds a diff in it (quoted diffs do not count)."""
    from .patches import read_series

    try:
        read_series(["-"], raw)
        return True
    except InputError as e:
        if s.n:
            reason = str(e).removeprefix("stdin: ")
            warn(f"<{h.msgid}>: '{h.subject}' is not a usable patch ({reason}); skipped")
        return False


def pick(headers: Iterable[Header], revision: int | None, read: Callable[[Header], bytes],
         warn: Warn) -> Picked:
    """The patches of one revision, in ``n/N`` order; the newest posted one by default."""
    headers = list(headers)
    by_id = {h.msgid: h for h in headers}
    covers: dict[int, Header] = {}
    slots: dict[int, dict[int, list[tuple[Header, bytes]]]] = {}
    for h in headers:
        s = parse_subject(h.subject)
        if s.reply:
            continue
        rev = _revision_of(h, s, by_id)
        if s.n == 0:
            covers.setdefault(rev, h)
            continue
        raw = read(h)
        if raw and _is_patch(h, raw, s, warn):
            slots.setdefault(rev, {}).setdefault(s.n or 1, []).append((h, raw))
    if not slots:
        raise InputError(f"<{headers[0].msgid if headers else '?'}>: no patch in this thread")
    # b4's rule: the newest revision is the one whose first patch was posted last
    posted = {r: v[min(v)][0][0].date for r, v in slots.items()}
    chosen = revision if revision is not None else max(slots, key=lambda r: (posted[r], r))
    if chosen not in slots:
        have = ", ".join(f"v{r}" for r in sorted(slots))
        raise InputError(f"--revision {chosen}: the thread has {have} only")
    cover = covers.get(chosen)
    return Picked(_meta(chosen, cover, slots[chosen]), _complete(chosen, slots[chosen], warn),
                  _base_commit(read(cover)) if cover else None)


def _base_commit(raw: bytes) -> str | None:
    """The ``base-commit:`` trailer of a cover letter's text, if it has one."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
    except (ValueError, TypeError, LookupError, UnicodeError, IndexError, AttributeError,
            KeyError, email.errors.MessageError):
        return None
    m = re.search(r"^base-commit: *([0-9a-f]{7,64})\s*$", text, re.M)
    return m.group(1) if m else None


def known_base(repo_path: str, rev: str | None) -> str | None:
    """``rev`` when the repository has it: a cover's base is a hint, not an order."""
    from .tree import open_repo, resolve_commit

    if rev is None:
        return None
    repo = open_repo(repo_path)
    try:
        resolve_commit(repo, rev)
        return rev
    except InputError:
        return None
    finally:
        repo.close()


def _complete(rev: int, slots: dict[int, list[tuple[Header, bytes]]],
              warn: Warn) -> tuple[tuple[Header, bytes], ...]:
    """Every n of 1..N present once, or one error naming what never arrived."""
    totals = [parse_subject(h.subject).total or 1 for ms in slots.values() for h, _ in ms]
    total = max([*totals, max(slots)])
    missing = [n for n in range(1, total + 1) if n not in slots]
    if missing:
        (h, _), *_ = slots[min(slots)]
        names = ", ".join(f"{n}/{total}" for n in missing[:5]) + (
            ", …" if len(missing) > 5 else "")
        what = "patch" if len(missing) == 1 else "patches"
        raise InputError(f"v{rev} of '{parse_subject(h.subject).text}': {what} {names} "
                         "never arrived")
    out = []
    for n in range(1, total + 1):
        ms = sorted(slots[n], key=lambda m: m[0].date)
        if len(ms) > 1:
            warn(f"v{rev} patch {n}/{total} was posted {len(ms)} times; using the latest "
                 f"<{ms[-1][0].msgid}>")
        out.append(ms[-1])
    return tuple(out)


def _meta(rev: int, cover: Header | None, slots) -> SeriesMeta:
    h = cover or slots[min(slots)][0][0]
    return SeriesMeta(parse_subject(h.subject).text, h.author, h.msgid, rev)


def _reader(repos: dict) -> Callable[[Header], bytes]:
    """A reader of whole messages from the archives' cache repositories."""
    def read(h: Header) -> bytes:
        odb = repos[h.where].odb
        if odb.info(bytes.fromhex(h.blob)).size > MAX_MESSAGE:
            return b""
        return odb.stream(bytes.fromhex(h.blob)).read()
    return read


def as_mbox(messages: Iterable[tuple[Header, bytes]]) -> bytes:
    """mboxrd: a ``From`` line per message, body lines ``>*From `` quoted once more."""
    out = []
    for _, raw in messages:
        body = re.sub(rb"^(>*From )", rb">\1", raw, flags=re.M)
        out.append(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + body.rstrip(b"\n") + b"\n\n")
    return b"".join(out)


def series_from_inbox(urls: Sequence[str], msgid: str, revision: int | None,
                      warn: Warn) -> tuple[Picked, Path]:
    """Fetch the epochs, find the thread of ``msgid``, and write the picked series
    as an mbox in the cache; return it and the mbox's path."""
    mid = msgid_argument(msgid)

    archives = [open_archive(u, warn)[0] for u in urls]
    repos = {a.url: cache_repo(Path(a.repo_path)) for a in archives}
    try:
        picked = pick(thread(archives, mid, warn), revision, _reader(repos), warn)
    finally:
        for r in repos.values():
            r.close()
    key = hashlib.sha1(mid.encode()).hexdigest()[:16]
    path = cache_dir() / "inbox" / "series" / f"{key}-v{picked.meta.revision}.mbox"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(as_mbox(picked.messages))
    return picked, path


# --- remote ranges ----------------------------------------------------------


def range_from_remote(url: str, rev_range: str) -> tuple[str, str, dict]:
    """Fetch ``BASE..HEAD`` (refs of ``url``) into the cache: the repository, the range
    as commit ids, and what names it. Only the commits of the range are fetched when
    the server allows it (a shallow base, the head cut at the base)."""
    base, sep, head = rev_range.partition("..")
    if not sep or not is_safe_ref(base) or not is_safe_ref(head):
        raise InputError(f"{rev_range!r}: not a BASE..HEAD range of remote refs")
    got = fetch_to_cache(url, [f"+{base}:refs/vpcheck/range-base"], "remotes", ["--depth=1"])
    head_spec = [f"+{head}:refs/vpcheck/range-head"]
    try:
        tip = fetch_to_cache(got.url, head_spec, "remotes", [f"--shallow-exclude={base}"])
    except InputError:  # the server cannot cut at BASE: take HEAD's history whole
        tip = fetch_to_cache(got.url, head_spec, "remotes",
                             ["--unshallow"] if (got.path / "shallow").exists() else [])
    b, h = got.commits[0], tip.commits[0]
    return str(got.path), f"{b}..{h}", {"remote": got.url, "range": rev_range, "head": h}
