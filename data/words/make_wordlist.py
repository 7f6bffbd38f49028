"""Build data/words/english.txt from Debian's `wamerican` dictionary (SCOWL, size 50).

Usage (from the repository root):

    apt-get download wamerican && dpkg -x wamerican_*.deb /tmp/wamerican
    python data/words/make_wordlist.py /tmp/wamerican/usr/share/dict/american-english

Rules: drop possessives (anything containing an apostrophe), keep only words made of the ASCII
letters A-Z/a-z with length 1-20, and deduplicate case-insensitively: when a word exists in
lowercase that form wins, otherwise a Capitalized form, otherwise the first form in sorted order.
The output is sorted case-insensitively, one word per line, UTF-8, LF line endings.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

WORD = re.compile(r"[A-Za-z]{1,20}")


def _preference(form: str) -> tuple[int, str]:
    if form.islower():
        return (0, form)
    if form[:1].isupper() and form[1:].islower():
        return (1, form)
    return (2, form)


def build(lines: list[str]) -> list[str]:
    best: dict[str, str] = {}
    for raw in lines:
        w = raw.strip()
        if "'" in w or not WORD.fullmatch(w):
            continue
        key = w.lower()
        if key not in best or _preference(w) < _preference(best[key]):
            best[key] = w
    return [best[k] for k in sorted(best)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", nargs="?", default="/usr/share/dict/american-english")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "english.txt"))
    args = ap.parse_args()
    words = build(Path(args.source).read_text(encoding="utf-8").splitlines())
    Path(args.out).write_text("\n".join(words) + "\n", encoding="utf-8")
    print(f"wrote {len(words)} words to {args.out}")


if __name__ == "__main__":
    main()
