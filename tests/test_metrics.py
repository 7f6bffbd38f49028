import pytest

from crnn_lit.metrics import TextMetrics, protocol_normalize


@pytest.mark.parametrize(("raw", "expected"), [("Hello!", "hello"), ("I'm 42", "im42"), ("ÉTÉ", "ete"), ("café", "cafe"), ("a-b_c", "abc"), ("ﬁ", "fi")])
def test_protocol_normalize(raw, expected):
    assert protocol_normalize(raw) == expected


def test_protocol_case_sensitive():
    assert protocol_normalize("Hello, World", case_sensitive=True) == "HelloWorld"
    assert protocol_normalize("Café", case_sensitive=True) == "Cafe"


def test_text_metrics_values():
    m = TextMetrics(normalize=True)
    m.update(["Hello", "wrld", "abc"], ["hello!", "world", "xyz"])
    out = {k: float(v) for k, v in m.compute().items()}
    assert out["acc"] == pytest.approx(1 / 3)
    assert out["cer"] == pytest.approx((0 + 1 + 3) / (5 + 5 + 3))
    assert out["ned"] == pytest.approx((1 + (1 - 1 / 5) + 0) / 3)


def test_text_metrics_without_normalization_is_exact():
    m = TextMetrics(normalize=False)
    m.update(["Hello"], ["hello"])
    assert float(m.compute()["acc"]) == 0.0


def test_line_protocol():
    from crnn_lit.metrics import compare_form, line_normalize

    assert line_normalize("  cash :\t10.00 ") == "CASH : 10.00"
    assert compare_form("Cash 10", "word") == "cash10" and compare_form("Cash 10", "line") == "CASH 10"
    m = TextMetrics(protocol="line")
    m.update(["total  rm5", "CASH:", "abc"], ["TOTAL RM5", "CASH :", "ABD"])
    out = {k: float(v) for k, v in m.compute().items()}
    assert out["acc"] == pytest.approx(1 / 3)  # spacing counts: CASH: ≠ CASH :
    assert out["cer"] == pytest.approx((0 + 1 + 1) / (9 + 6 + 3))
    with pytest.raises(ValueError, match="protocol"):
        TextMetrics(protocol="sentence")
