"""Line text as receipts and labels print it: words, numbers, prices, dates, times, phone numbers, codes and
punctuation, in capitals or mixed case, with the spacing a printer leaves (occasional double spaces, punctuation
hugging its word or not). ``LineComposer`` returns the text as drawn; the label is that text with every
run of whitespace made one space (what ``Charset.canonical`` asks of a line label)."""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence

from crnn_lit.data.sources.renderer.plan import below

# Keys of "key: value" lines, by the kind of value they take (mixed-case lines write them Capitalized)
MONEY_KEYS = ("TOTAL", "SUBTOTAL", "SUB TOTAL", "GRAND TOTAL", "NET TOTAL", "CASH", "CHANGE", "CHANGE DUE",
              "ROUNDING", "ROUNDING ADJ", "DISCOUNT", "TAX", "GST", "SST", "VAT", "SERVICE CHARGE", "AMOUNT",
              "AMOUNT DUE", "BALANCE", "PAID", "TENDERED", "VISA", "MASTERCARD", "CARD", "DEPOSIT", "TIP",
              "TOTAL INCL. GST", "TOTAL EXCL. TAX", "TOTAL (RM)", "AMT (RM)", "PRICE")
CODE_KEYS = ("INVOICE NO", "RECEIPT NO", "RECEIPT #", "BILL NO", "DOC NO", "DOCUMENT NO", "ORDER NO", "ORDER #",
             "REF", "REF NO", "TRANS NO", "TXN", "TABLE", "POS", "TERMINAL", "COUNTER", "MEMBER", "ACCOUNT",
             "AUTH CODE", "APPROVAL CODE", "GST ID", "GST REG NO", "CO. REG NO", "TAX ID", "VAT NO", "BATCH",
             "TRACE NO", "CARD NO", "SKU", "ITEM NO", "S/N", "LOT", "INV NO", "NO")
NAME_KEYS = ("CASHIER", "STAFF", "SERVER", "CUSTOMER", "SALESPERSON", "OPERATOR", "ATTN", "SOLD TO", "BILL TO")
PHONE_KEYS = ("TEL", "FAX", "PHONE", "HP", "MOBILE", "TEL NO", "CALL")
DATE_KEYS = ("DATE", "TIME", "DATE/TIME", "PRINTED", "ISSUED", "DUE DATE", "EXP", "BEST BEFORE")
COMPANY_SUFFIXES = ("SDN BHD", "SDN. BHD.", "LTD", "LTD.", "INC.", "& CO.", "CO.", "LLC", "CORP.", "ENTERPRISE",
                    "TRADING", "(M) SDN BHD")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
TAX_CODES = ("SR", "ZR", "S", "Z", "T", "E", "*")
DOMAINS = (".com", ".com.my", ".net", ".org", ".co.uk", ".sg")


def pick(r: random.Random, options: Sequence):
    return options[below(r, len(options))]


def digits(r: random.Random, n: int) -> str:
    return "".join("0123456789"[below(r, 10)] for _ in range(n))


def number(r: random.Random, lo: int, hi: int) -> str:
    """An integer in [lo, hi] written plainly."""
    return str(lo + below(r, hi - lo + 1))


def amount(r: random.Random) -> str:
    """12.50, 3.00, 1,299.99, 0.05 (mostly small amounts, as on receipts); 12,50 now and then."""
    u = r.random()
    whole = number(r, 0, 9) if u < 0.35 else number(r, 10, 99) if u < 0.75 else number(r, 100, 999) if u < 0.92 \
        else number(r, 1000, 99999)
    if len(whole) > 3 and r.random() < 0.6:  # thousands separators
        whole = f"{int(whole):,}"
    cents = "00" if r.random() < 0.25 else digits(r, 2)
    return whole + ("," if r.random() < 0.05 and "," not in whole else ".") + cents


def price(r: random.Random) -> str:
    """An amount with its currency as receipts write it: 12.50, RM 3.00, RM3.00, $1,299.99, -2.00, USD 4.99."""
    u = r.random()
    prefix = "" if u < 0.5 else "RM " if u < 0.62 else "RM" if u < 0.72 else "$" if u < 0.88 else "$ " if u < 0.91 \
        else "-" if u < 0.96 else pick(r, ("USD ", "S$", "EUR ", "(", "-RM"))
    text = prefix + amount(r)
    return text + ")" if prefix == "(" else text


def date(r: random.Random) -> str:
    """06/08/2017, 2017-08-06, 06-08-2017, 06.08.17, 6 AUG 2017, AUG 06, 2017, 06-Aug-17."""
    d, m = f"{1 + below(r, 28):02d}", f"{1 + below(r, 12):02d}"
    y = str(2000 + below(r, 30))
    k = below(r, 9)
    if k <= 2:
        return f"{d}/{m}/{y}"
    if k == 3:
        return f"{y}-{m}-{d}"
    if k == 4:
        return f"{d}-{m}-{y}"
    if k == 5:
        return f"{d}.{m}.{y[2:]}" if r.random() < 0.5 else f"{d}/{m}/{y[2:]}"
    mon = MONTHS[int(m) - 1]
    if k == 6:
        return f"{int(d)} {mon} {y}"
    if k == 7:
        return f"{mon} {d}, {y}"
    return f"{d}-{mon.capitalize()}-{y[2:]}"


def time_of_day(r: random.Random) -> str:
    """14:32, 14:32:05, 8:13:39 PM, 02:15 pm."""
    k = below(r, 4)
    mm, ss = f"{below(r, 60):02d}", f"{below(r, 60):02d}"
    if k == 0:
        return f"{below(r, 24):02d}:{mm}"
    if k == 1:
        return f"{below(r, 24):02d}:{mm}:{ss}"
    hh = str(1 + below(r, 12)) if r.random() < 0.6 else f"{1 + below(r, 12):02d}"
    ampm = pick(r, ("AM", "PM", "am", "pm", "A.M.", "P.M."))
    return f"{hh}:{mm}:{ss} {ampm}" if k == 2 else f"{hh}:{mm} {ampm}" if r.random() < 0.8 else f"{hh}:{mm}{ampm}"


def phone(r: random.Random) -> str:
    """03-5542 3228, 03-55423228, +60 3-1234 5678, (555) 123-4567, 555-123-4567, 012-345 6789."""
    k = below(r, 6)
    if k == 0:
        return f"0{digits(r, 1)}-{digits(r, 4)} {digits(r, 4)}"
    if k == 1:
        return f"0{digits(r, 1)}-{digits(r, 8)}"
    if k == 2:
        return f"+{number(r, 1, 99)} {digits(r, 1)}-{digits(r, 4)} {digits(r, 4)}"
    if k == 3:
        return f"({digits(r, 3)}) {digits(r, 3)}-{digits(r, 4)}"
    if k == 4:
        return f"{digits(r, 3)}-{digits(r, 3)}-{digits(r, 4)}"
    return f"01{digits(r, 1)}-{digits(r, 3)} {digits(r, 4)}"


def code(r: random.Random) -> str:
    """000381399040, INV-004512, CS00012345, 789417-W, #0012, A1234/56, T02, 4X7-29F."""
    k = below(r, 8)
    if k == 0:
        return digits(r, 6 + below(r, 8))
    if k == 1:
        return pick(r, ("INV", "OR", "CS", "TD", "PO", "SO", "RCP", "DO")) + pick(r, ("-", "", "/")) + \
            digits(r, 4 + below(r, 5))
    if k == 2:
        return f"{digits(r, 6)}-{pick(r, 'ABDHKMPTUVWX')}"
    if k == 3:
        return "#" + digits(r, 2 + below(r, 4))
    if k == 4:
        return pick(r, "ABCDEFGHKMNPRST") + digits(r, 3 + below(r, 3)) + "/" + digits(r, 2)
    if k == 5:
        return pick(r, "ABCDEFGHKMNPRST") + digits(r, 2 + below(r, 2))
    pool = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(pool[below(r, len(pool))] for _ in range(3)) + "-" + \
        "".join(pool[below(r, len(pool))] for _ in range(2 + below(r, 4)))


def percent(r: random.Random) -> str:
    """6%, 10% OFF, 0%, 6.00%."""
    v = pick(r, ("6", "10", "5", "0", "15", "20", "8", "6.00", "7.5", "50", "30"))
    return v + "%" + (" OFF" if r.random() < 0.1 else "")


class LineComposer:
    """Draws one line of text from ``random.Random`` (the planner's stream: every choice made here is part of the
    sample's plan).

    Args:
        words: a dictionary (its words in their natural case, drawn uniformly).
        shop_words: receipt vocabulary (lower case: items, units, shop and street words; ``data/words/receipt.txt``).
        max_len: labels (the text with whitespace runs collapsed) are never longer than this.
        p_upper: share of lines in capitals (receipt style); the others keep mixed case.
        p_double_space: probability that a gap between words is drawn two spaces wide (the label keeps one).
        p_tight: probability that a colon or a closing mark hugs the word before it (``CASH:`` vs ``CASH :``).
    """

    def __init__(self, words: Sequence[str], shop_words: Sequence[str], max_len: int, p_upper: float,
                 p_double_space: float, p_tight: float):
        if not words and not shop_words:
            raise ValueError("LineComposer needs words")
        self.words, self.shop_words = list(words), list(shop_words) or list(words)
        self.max_len = int(max_len)
        self.p_upper, self.p_double_space, self.p_tight = p_upper, p_double_space, p_tight
        # (kind, weight): single values are the commonest receipt lines (median SROIE line: 7 characters)
        self.kinds: tuple[tuple[Callable[[random.Random], str], float], ...] = (
            (self._words, 0.16), (self._money, 0.12), (self._keyed, 0.15), (self._item, 0.12), (self._value, 0.22),
            (self._address, 0.07), (self._datetime, 0.05), (self._company, 0.04), (self._banner, 0.03),
            (self._contact, 0.04),
        )
        total = sum(w for _, w in self.kinds)
        acc, self._cdf = 0.0, []
        for _, w in self.kinds:
            acc += w / total
            self._cdf.append(acc)
        self._cdf[-1] = 1.0 + 1e-12  # bisect never runs past the last kind

    # ---- pieces ----
    def _word(self, r: random.Random, shop: float = 0.6) -> str:
        return pick(r, self.shop_words) if r.random() < shop else pick(r, self.words)

    def _phrase(self, r: random.Random, lo: int, hi: int, shop: float = 0.6) -> str:
        return " ".join(self._word(r, shop) for _ in range(lo + below(r, hi - lo + 1)))

    def _colon(self, r: random.Random) -> str:
        """The key's colon: tight (``CASH:``), loose (``CASH :``), or none (``CASH``)."""
        u = r.random()
        return ":" if u < self.p_tight else " :" if u < 0.85 else ""

    # ---- line kinds (capitals: keys; case is settled for the whole line in compose) ----
    def _words(self, r: random.Random) -> str:
        text = self._phrase(r, 1, 5, shop=0.4)
        return text + pick(r, ("", "", "", ".", ",", "!", ":", " -", "*"))

    def _money(self, r: random.Random) -> str:
        key = pick(r, MONEY_KEYS) + self._colon(r)
        return key if r.random() < 0.25 else key + " " + price(r)  # a key alone: its value in another column

    def _keyed(self, r: random.Random) -> str:
        k = below(r, 4)
        if k == 0:
            key, value = pick(r, CODE_KEYS), code(r) if r.random() < 0.8 else number(r, 1, 999)
        elif k == 1:
            key, value = pick(r, NAME_KEYS), self._phrase(r, 1, 2, shop=0.0)
        elif k == 2:
            key, value = pick(r, PHONE_KEYS), phone(r)
        else:
            key, value = pick(r, DATE_KEYS), date(r) if r.random() < 0.7 else time_of_day(r)
        if key in ("NO", "REF", "TXN") and r.random() < 0.5:
            key += "."
        return key + self._colon(r) + (" " if r.random() < 0.9 else "") + value

    def _item(self, r: random.Random) -> str:
        """2 x MILK 1L 3.50, (T02) BRAISED PORK, SUGAR 1KG @ 2.90, 1 PCS 4.20 4.20 SR."""
        name = self._phrase(r, 1, 3, shop=0.85)
        if r.random() < 0.3:
            name += " " + number(r, 1, 999) + pick(r, ("KG", "G", "ML", "L", "PCS", "'S", " KG", " G"))
        u = r.random()
        if u < 0.15:
            return f"({code(r)}) {name}"
        if u < 0.35:
            return f"{number(r, 1, 12)} {pick(r, ('x', 'X', '@', '*'))} {name} {amount(r)}"
        if u < 0.5:
            return f"{name} @ {amount(r)}"
        if u < 0.7:
            return f"{name} {number(r, 1, 9)} {amount(r)} {amount(r)}" + (" " + pick(r, TAX_CODES) if r.random() < 0.5 else "")
        if u < 0.85:
            return f"{name} {price(r)}"
        return name

    def _value(self, r: random.Random) -> str:
        """A value alone, as receipt columns are cut: 26.60, RM 3.00, 9555535000663, 06/08/2017, 6%."""
        k = below(r, 7)
        return (price(r), amount(r), code(r), date(r), time_of_day(r), percent(r), number(r, 1, 99))[k]

    def _address(self, r: random.Random) -> str:
        """NO. 53, JALAN SAGU 18, TAMAN DAYA, / 81100 JOHOR BAHRU, / 12 Oak Street, Suite 4."""
        k = below(r, 3)
        if k == 0:
            return f"{pick(r, ('NO. ', 'NO.', 'LOT ', ''))}{number(r, 1, 299)}{pick(r, ('', '-' + number(r, 1, 9), 'A'))}, " \
                   f"{self._phrase(r, 1, 3, shop=0.3)} {number(r, 1, 30)}{pick(r, (',', '', '/' + number(r, 1, 9) + ','))}"
        if k == 1:
            return f"{digits(r, 5)} {self._phrase(r, 1, 2, shop=0.0)}{pick(r, (',', '.', ''))}"
        return f"{number(r, 1, 999)} {self._phrase(r, 1, 2, shop=0.0)} {pick(r, ('STREET', 'ROAD', 'AVE', 'LANE'))}" \
               f"{pick(r, ('', ', SUITE ' + number(r, 1, 40), ', FLOOR ' + number(r, 1, 9)))}"

    def _datetime(self, r: random.Random) -> str:
        return date(r) + (" " if r.random() < 0.85 else "  ") + time_of_day(r)

    def _company(self, r: random.Random) -> str:
        text = self._phrase(r, 1, 3, shop=0.3) + " " + pick(r, COMPANY_SUFFIXES)
        return text + (f" ({code(r)})" if r.random() < 0.3 else "")

    def _banner(self, r: random.Random) -> str:
        """***THANK YOU***, -- CUSTOMER COPY --, == PLEASE COME AGAIN =="""
        mark = pick(r, ("*", "-", "=", "#", "~"))
        n = 1 + below(r, 4)
        gap = " " if r.random() < 0.5 else ""
        return mark * n + gap + self._phrase(r, 1, 4, shop=0.9) + gap + mark * n

    def _contact(self, r: random.Random) -> str:
        name = self._word(r, shop=0.2).lower()
        k = below(r, 3)
        if k == 0:
            return pick(r, ("", "EMAIL:", "E-MAIL: ", "Email : ")) + f"{self._word(r, 0.5).lower()}@{name}{pick(r, DOMAINS)}"
        if k == 1:
            return pick(r, ("", "WEB: ", "VISIT ")) + f"www.{name}{pick(r, DOMAINS)}"
        return f"{pick(r, PHONE_KEYS)}{self._colon(r)} {phone(r)} {pick(r, ('FAX', 'HP', '&', '/'))}{self._colon(r)} {phone(r)}"

    # ---- the line ----
    def compose(self, r: random.Random) -> str:
        """One line as drawn (its label: ``" ".join(text.split())``, at most ``max_len`` characters)."""
        kind = self.kinds[bisect.bisect_right(self._cdf, r.random())][0]
        text = kind(r)
        if r.random() < self.p_upper:
            text = text.upper()
        else:  # mixed case: words Capitalized or as the dictionary has them, keys Capitalized
            cap = r.random() < 0.6
            text = " ".join(_mixed(w, cap) for w in text.split(" "))
        words = text.split(" ")
        out = words[0]
        for w in words[1:]:  # the printer's gaps: now and then two spaces (columns, justified text)
            out += ("  " if r.random() < self.p_double_space else " ") + w
        return _cut(out, self.max_len)


def _mixed(word: str, cap: bool) -> str:
    """A mixed-case line's word: keys and codes (written in capitals) Capitalized unless they hold a digit or are
    short abbreviations, dictionary words Capitalized when ``cap``."""
    if not word or any(c.isdigit() for c in word):
        return word
    if word.isupper() and len(word.strip(".:,()#*-=~&/")) > 3:
        return word[0] + word[1:].lower()
    if cap and word[0].islower():
        return word[0].upper() + word[1:]
    return word


def _cut(text: str, max_len: int) -> str:
    """``text`` cut at a gap so that its label fits ``max_len`` (hard cut when one word is too long)."""
    text = text.strip()
    if len(" ".join(text.split())) <= max_len:
        return text
    words = text.split(" ")
    out = ""
    for i, w in enumerate(words):
        cand = w if i == 0 else out + " " + w
        if len(" ".join(cand.split())) > max_len:
            break
        out = cand
    return out.strip() or text[:max_len].strip()
