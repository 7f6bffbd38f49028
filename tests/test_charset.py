import pytest

from conftest import ROOT
from crnn_lit.charset import Charset


@pytest.mark.parametrize(("name", "size", "fold"), [("lowercase36", 36, "lower"), ("case62", 62, None),
                                                    ("printable94", 94, None)])
def test_shipped_charsets(name, size, fold):
    cs = Charset.from_file(ROOT / "data" / "charsets" / f"{name}.txt")
    assert len(cs) == size and cs.num_classes == size + 1 and cs.fold == fold


def test_case_folding_follows_the_charset():
    assert Charset("0123456789abcdefghijklmnopqrstuvwxyz").normalize("Hello42") == "hello42"
    assert Charset("ABC").normalize("abc") == "ABC"
    assert Charset("aAbB").normalize("AbBa") == "AbBa"


def test_out_of_charset_policy():
    lower = "0123456789abcdefghijklmnopqrstuvwxyz"
    assert Charset(lower, oov="drop").normalize("don't") is None
    assert Charset(lower, oov="remove").normalize("don't") == "dont"
    assert Charset(lower, oov="remove").normalize("!!!") is None  # nothing left: dropped as empty
    assert Charset(lower).normalize("   ") is None
    assert Charset(lower).normalize("ｆｕｌｌ") == "full"  # NFKC: full-width forms


@pytest.mark.parametrize("oov", ["drop", "remove"])
def test_training_and_scoring_fold_accents_alike(oov):
    """One rule (charset.fold_accents): café trains as cafe under lowercase36 and scores as cafe; a charset that
    holds é keeps it; a letter with no base in the charset is still out of it."""
    from crnn_lit.metrics import protocol_normalize

    lower = Charset.from_file("lowercase36", oov=oov)
    assert [lower.normalize(w) for w in ("café", "ÉTÉ", "naïve")] == ["cafe", "ete", "naive"]
    assert [protocol_normalize(w) for w in ("café", "ÉTÉ", "naïve")] == ["cafe", "ete", "naive"]
    assert Charset("café", oov=oov).normalize("CAFÉ") == "café"
    assert lower.normalize("straße") == (None if oov == "drop" else "strae")  # ß has no accent to fold


def test_encode_decode_roundtrip_and_blank():
    cs = Charset("abc")
    assert cs.encode("cab") == [3, 1, 2]  # blank is 0, characters start at 1
    assert cs.decode([3, 0, 1, 2]) == "cab"
    with pytest.raises(ValueError, match="not in the charset"):
        cs.encode("abd")


def test_bad_charsets_are_rejected():
    with pytest.raises(ValueError, match="repeats"):
        Charset("abca")
    with pytest.raises(FileNotFoundError, match="charset file"):
        Charset.from_file("/nonexistent/chars.txt")
    assert Charset.from_dict(Charset("xyz", oov="remove").to_dict()).oov == "remove"


def test_line_charsets_hold_the_space_last():
    printable = Charset.from_file("printable95")
    upper = Charset.from_file("upper69")
    assert printable.chars == Charset.from_file("printable94").chars + " " and printable.fold is None
    assert upper.chars[-1] == " " and upper.fold == "upper" and len(upper) == 69
    assert printable.has_space and not Charset.from_file("printable94").has_space


def test_line_labels_collapse_whitespace_words_do_not_change():
    line = Charset.from_file("printable95")
    assert line.normalize("  CASH \t :\u3000 10.00\n") == "CASH : 10.00"  # runs (and NFKC's ideographic space) → one
    assert Charset.from_file("upper69").normalize("Total  rm 5") == "TOTAL RM 5"
    # word charsets: as before (ends stripped; an inner space is out of charset: dropped, or removed)
    assert Charset.from_file("printable94").normalize(" CASH 10 ") is None
    assert Charset.from_file("lowercase36", oov="remove").normalize(" Cash  10 ") == "cash10"
    assert Charset.from_file("printable94").normalize(" CASH\t") == "CASH"


def test_a_space_outside_the_charset_is_named_as_such():
    from crnn_lit.data.dataset import LabelPolicy
    from crnn_lit.data.sample import Sample

    policy = LabelPolicy(Charset.from_file("printable94"), lambda w: w // 4)
    spaced = policy.check(Sample(None, "CASH 10.00", "k"))
    assert spaced.reason == "oov_space" and "printable_space" in spaced.detail
    assert policy.check(Sample(None, "1€ CASH", "k")).reason == "out_of_charset"  # another character is outside too
    assert LabelPolicy(Charset.from_file("printable95"), lambda w: w // 4).check(Sample(None, "CASH 10.00", "k")) \
        == "CASH 10.00"
