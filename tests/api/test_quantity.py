"""Resource quantities: parsing, kube's canonical form, comparison and arithmetic."""

from __future__ import annotations

import pytest

from k8py.api import quantity as q
from k8py.api.quantity import Quantity, QuantityError

FORMAT_ERR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


@pytest.mark.parametrize("raw, canonical", [
    ("0", "0"),
    ("000", "0"),
    ("0Mi", "0"),
    ("1", "1"),
    ("100m", "100m"),
    ("0.5", "500m"),
    ("0.1", "100m"),
    ("1.5", "1500m"),
    ("2000m", "2"),
    ("1000", "1k"),
    ("1000000u", "1"),
    ("1k", "1k"),
    ("500M", "500M"),
    ("1G", "1G"),
    ("1Ki", "1Ki"),
    ("128Mi", "128Mi"),
    ("1024Mi", "1Gi"),
    ("1024Ki", "1Mi"),
    ("1.5Gi", "1536Mi"),
    ("0.5Gi", "512Mi"),
    ("1.1Gi", "1181116006400m"),
    ("512", "512"),
    ("1e3", "1e3"),
    ("1E3", "1E3"),
    ("12e-3", "12e-3"),
    ("1n", "1n"),
    ("0.0001", "100u"),
    ("0.0000000001", "1n"),
    ("-1", "-1"),
    ("-0.5", "-500m"),
    ("+1", "+1"),
    ("1.0", "1"),
    ("123456789", "123456789"),
    ("  2  ", "2"),
    (3, "3"),
    (0.5, "500m"),
    (1.25, "1250m"),
])
def test_canonical(raw, canonical):
    assert q.canonicalize(raw) == canonical


@pytest.mark.parametrize("raw, err", [
    ("", FORMAT_ERR),
    ("abc", FORMAT_ERR),
    ("1.2.3", FORMAT_ERR),
    ("1x", FORMAT_ERR),
    ("1Mb", FORMAT_ERR),
    ("1K", "unable to parse quantity's suffix"),
    ("1e", "unable to parse quantity's suffix"),
    ("1Kii", "unable to parse quantity's suffix"),
    (True, FORMAT_ERR),
    (None, FORMAT_ERR),
])
def test_parse_errors(raw, err):
    with pytest.raises(QuantityError) as ei:
        q.parse(raw)
    assert str(ei.value) == err


def test_values_round_up():
    assert q.parse("1500m").value() == 2
    assert q.parse("1").value() == 1
    assert q.parse("-1500m").value() == -2
    assert q.parse("1n").milli_value() == 1
    assert q.parse("1Gi").value() == 1 << 30
    assert q.parse("250m").milli_value() == 250
    assert q.parse("2").milli_value() == 2000
    assert q.parse("1.5").as_float() == 1.5


def test_compare_and_arithmetic():
    assert q.parse("1Gi") > q.parse("1G")
    assert q.parse("1000m") == q.parse("1")
    assert q.cmp("100m", "0.1") == 0
    assert q.cmp("1", "2") == -1
    assert q.cmp("1Ki", "1000") == 1
    total = q.parse("100m") + q.parse("250m")
    assert str(total) == "350m"
    assert str(q.parse("1Gi") - q.parse("512Mi")) == "512Mi"
    assert str(-q.parse("1")) == "-1"
    assert str(q.parse("100m") * 3) == "300m"
    assert sorted([q.parse("2"), q.parse("1Gi"), q.parse("500m")]) == [q.parse("500m"), q.parse("2"), q.parse("1Gi")]
    assert not q.parse("0")
    assert q.parse("-1").sign() == -1


def test_round_up_to_milli():
    x = q.parse("1n")
    assert x.round_up(-3) is False
    assert str(x) == "1m"
    y = q.parse("250m")
    assert y.round_up(-3) is True
    assert str(y) == "250m"
    z = q.parse("-1500u")
    z.round_up(-3)
    assert str(z) == "-2m"


def test_constructors_and_copy():
    assert str(Quantity.from_int(2)) == "2"
    assert str(Quantity.from_milli(1500)) == "1500m"
    assert str(Quantity.from_int(1 << 20, q.BINARY_SI)) == "1Mi"
    a = q.parse("1Gi")
    b = q.parse(a)
    assert a == b and a is not b
    assert repr(a) == "Quantity('1Gi')"
    assert hash(q.parse("1")) == hash(q.parse("1000m"))


def test_binary_small_values_print_decimal():
    assert str(Quantity.from_int(512, q.BINARY_SI)) == "512"
    assert str(Quantity.from_milli(1500, q.BINARY_SI)) == "1500m"
