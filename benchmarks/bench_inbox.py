"""Message-ID lookup in a public-inbox archive: cold (fetch, index every message's
headers) and warm (fetch finds nothing new, the index answers), on a generated
6,000-message archive. Usage: python benchmarks/bench_inbox.py [MESSAGES]

The archive holds 1,000 threads of a cover letter, three patches and two
replies; the lookup finds the thread of a patch in the middle of the archive
and picks its series (reading the three patch mails whole).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer.sources import inbox  # noqa: E402
from tests.inboxutil import append, mail  # noqa: E402

DIFF = """Change {i}.

---
 arch/powerpc/kvm/book3s_xive.c | 1 +
 1 file changed, 1 insertion(+)

diff --git a/arch/powerpc/kvm/book3s_xive.c b/arch/powerpc/kvm/book3s_xive.c
index 0737831..cfae488 100644
--- a/arch/powerpc/kvm/book3s_xive.c
+++ b/arch/powerpc/kvm/book3s_xive.c
@@ -1,3 +1,4 @@
 /* a */
+/* change {i} */
 /* b */
 /* c */
"""


def messages(n_threads: int) -> list[bytes]:
    out = []
    for t in range(n_threads):
        cover = f"c{t}@bench"
        day = 1 + t % 28
        out.append(mail(cover, f"[PATCH v2 0/3] series {t}", "cover\n", day=day))
        for k in range(1, 4):
            out.append(mail(f"p{t}-{k}@bench", f"[PATCH v2 {k}/3] change {t}.{k}",
                            DIFF.format(i=f"{t}.{k}"), day=day, parents=[cover]))
        for r in (1, 2):
            out.append(mail(f"r{t}-{r}@bench", f"Re: [PATCH v2 {r}/3] change {t}.{r}",
                            "> quoted\nLooks good.\n", day=day,
                            parents=[cover, f"p{t}-{r}@bench"]))
    return out


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    got = fn()
    return time.perf_counter() - t, got


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    n_threads = total // 6
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        epoch = Path(tmp) / "list" / "0"
        t_gen, _ = timed(lambda: append(epoch, messages(n_threads)))
        print(f"archive: {n_threads * 6} messages, {n_threads} threads (generated in "
              f"{t_gen:.2f} s)")
        target = f"p{n_threads // 2}-2@bench"

        def lookup():
            return inbox.series_from_inbox([str(epoch)], target, None, lambda m: None)[0]

        cold, picked = timed(lookup)
        assert len(picked.messages) == 3, picked
        warm = min(timed(lookup)[0] for _ in range(5))
        archive, _ = inbox.open_archive(str(epoch), lambda m: None)
        only = min(timed(lambda: inbox.thread([archive], target, lambda m: None))[0]
                   for _ in range(20))
        append(epoch, messages(n_threads + 2)[-12:])
        t_inc, (_, read) = timed(lambda: inbox.open_archive(str(epoch), lambda m: None))
        print(f"cold lookup (fetch, index all headers, thread, pick): {cold * 1000:8.1f} ms")
        print(f"warm lookup (fetch: nothing new, thread, pick):      {warm * 1000:8.1f} ms"
              f"  ({cold / warm:.0f}x faster)")
        print(f"thread from the index alone:                         {only * 1000:8.2f} ms")
        print(f"update after 12 new messages (read {read}):            {t_inc * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
