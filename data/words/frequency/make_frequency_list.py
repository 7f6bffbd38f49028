"""Write english_frequency.tsv: the 60,000 most frequent English words (letters only) with their Zipf frequency.

    pip install wordfreq==3.1.1      # into any scratch environment: crnn_lit does not depend on it
    python data/words/frequency/make_frequency_list.py

Zipf frequency = log10(occurrences per billion words), from wordfreq's "large" English list (a blend of
subtitles, Wikipedia, books, web text, news and social media). Only lowercase ASCII words of 1-20 letters are
kept, in wordfreq's order (most frequent first); values are rounded to two decimals.
"""

from __future__ import annotations

import re
from pathlib import Path

from wordfreq import top_n_list, zipf_frequency

N = 60_000


def main() -> None:
    out = Path(__file__).resolve().parent / "english_frequency.tsv"
    words = [w for w in top_n_list("en", 250_000, wordlist="large") if re.fullmatch(r"[a-z]{1,20}", w)][:N]
    out.write_text("".join(f"{w}\t{zipf_frequency(w, 'en', wordlist='large'):.2f}\n" for w in words), "utf-8")
    print(f"wrote {len(words)} words to {out}")


if __name__ == "__main__":
    main()
