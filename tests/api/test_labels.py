"""Label selectors: kube's string syntax, matching and LabelSelector conversion."""

from __future__ import annotations

import pytest

from k8py.api import labels
from k8py.api.labels import SelectorError

NAME_PART_ERR = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                 "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                 "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE_ERR = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
             "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
             "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


@pytest.mark.parametrize("sel, string", [
    ("", ""),
    ("a=b", "a=b"),
    ("a==b", "a==b"),
    ("a!=b", "a!=b"),
    ("a in (x,y)", "a in (x,y)"),
    ("a in (y, x)", "a in (x,y)"),
    ("a notin (x)", "a notin (x)"),
    ("a", "a"),
    ("!a", "!a"),
    ("a>1", "a>1"),
    ("a<10", "a<10"),
    ("b=1,a=2", "a=2,b=1"),
    ("  a = b , c  ", "a=b,c"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("a=", "a="),
    ("a!=", "a!="),
    ("a in ()", "a in ()"),
    ("in in (in)", "in in (in)"),
    ("notin notin (notin,in)", "notin notin (in,notin)"),
    ("example.com/app=web", "example.com/app=web"),
    ("a in (x),a notin (y)", "a in (x),a notin (y)"),
])
def test_parse_and_string(sel, string):
    assert str(labels.parse(sel)) == string


@pytest.mark.parametrize("sel, lbls, want", [
    ("", {}, True),
    ("", {"a": "b"}, True),
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a=b", {}, False),
    ("a==b", {"a": "b"}, True),
    ("a!=b", {"a": "c"}, True),
    ("a!=b", {}, True),
    ("a!=b", {"a": "b"}, False),
    ("a in (x,y)", {"a": "y"}, True),
    ("a in (x,y)", {"a": "z"}, False),
    ("a in (x,y)", {}, False),
    ("a notin (x,y)", {"a": "z"}, True),
    ("a notin (x,y)", {}, True),
    ("a notin (x,y)", {"a": "x"}, False),
    ("a", {"a": ""}, True),
    ("a", {"b": "x"}, False),
    ("!a", {"b": "x"}, True),
    ("!a", {"a": "x"}, False),
    ("a>1", {"a": "2"}, True),
    ("a>1", {"a": "1"}, False),
    ("a>1", {"a": "x"}, False),
    ("a>1", {}, False),
    ("a<1", {"a": "-5"}, True),
    ("a<1", {"a": "1"}, False),
    ("a=", {"a": ""}, True),
    ("a=", {}, False),
    ("a in ()", {"a": ""}, True),
    ("a=b,c in (d)", {"a": "b", "c": "d"}, True),
    ("a=b,c in (d)", {"a": "b", "c": "e"}, False),
    ("a=b", None, False),
    ("!a", None, True),
])
def test_matches(sel, lbls, want):
    assert labels.parse(sel).matches(lbls) is want


@pytest.mark.parametrize("sel, err", [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("a=(b", "unable to parse requirement: found '(', expected: identifier"),
    ("a)", "unable to parse requirement: found ')', expected: in, notin, =, ==, !=, gt, lt"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
    ("a,,b", "found ',', expected: identifier after ','"),
    ("a,", "found '', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("a=b)", "found ')', expected: ',' or 'end of string'"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value "
            "must be an integer"),
    ("a@b", 'unable to parse requirement: <nil>: Invalid value: "a@b": ' + NAME_PART_ERR),
    ("a=b@c", 'unable to parse requirement: values[a]: Invalid value: "b@c": ' + VALUE_ERR),
    ("a/b/c", 'unable to parse requirement: <nil>: Invalid value: "a/b/c": a valid label key must consist of '
              "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
              "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
              "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' "
              "(e.g. 'example.com/MyName')"),
    ("/a", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
    ("x" * 64, f'unable to parse requirement: <nil>: Invalid value: "{"x" * 64}": name part must be no more than '
               "63 characters"),
    ("a=" + "v" * 64, f'unable to parse requirement: values[a]: Invalid value: "{"v" * 64}": must be no more than '
                      "63 characters"),
    ("a=!b", "unable to parse requirement: found '!', expected: identifier"),
    ("a=<b", "unable to parse requirement: found '<', expected: identifier"),
])
def test_parse_errors(sel, err):
    with pytest.raises(SelectorError) as ei:
        labels.parse(sel)
    assert str(ei.value) == err


def test_empty_and_nothing():
    assert labels.parse("").empty()
    assert not labels.parse("a").empty()
    nothing = labels.from_label_selector(None)
    assert not nothing.matches({}) and not nothing.matches({"a": "b"})
    assert not nothing.empty() and nothing.matches_nothing()
    assert str(nothing) == ""
    every = labels.from_label_selector({})
    assert every.empty() and every.matches({"x": "y"}) and every.matches(None)
    assert labels.from_label_selector({"matchLabels": {}, "matchExpressions": []}).empty()


def test_from_label_selector():
    sel = labels.from_label_selector({
        "matchLabels": {"app": "web", "tier": "fe"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "skip", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
        ],
    })
    assert str(sel) == "app=web,env in (dev,prod),!skip,team,tier=fe,zone notin (b)"
    good = {"app": "web", "tier": "fe", "env": "dev", "team": "x", "zone": "a"}
    assert sel.matches(good)
    assert not sel.matches({**good, "skip": "1"})
    assert not sel.matches({**good, "env": "qa"})
    assert not sel.matches({k: v for k, v in good.items() if k != "team"})
    assert sel.requires_exact_match("app") == "web"
    assert sel.requires_exact_match("env") is None
    assert sel.requires_exact_match("nope") is None


@pytest.mark.parametrize("ls, err", [
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
     "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist'),
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
     '"Gt" is not a valid label selector operator'),
    ({"matchLabels": {"bad key": "x"}},
     'key: Invalid value: "bad key": ' + NAME_PART_ERR),
    ({"matchLabels": {"a": "in valid"}},
     'values[a]: Invalid value: "in valid": ' + VALUE_ERR),
])
def test_from_label_selector_errors(ls, err):
    with pytest.raises(SelectorError) as ei:
        labels.from_label_selector(ls)
    assert str(ei.value) == err


def test_requirement_new_aggregates():
    with pytest.raises(SelectorError) as ei:
        labels.Requirement.new("a@", labels.EQUALS, ["x", "y"])
    assert str(ei.value).startswith('[key: Invalid value: "a@": ')
    assert str(ei.value).endswith(', values: Invalid value: []string{"x", "y"}: exact-match compatibility requires '
                                  "one single value]")
    with pytest.raises(SelectorError) as ei:
        labels.Requirement.new("a", "~", [])
    assert str(ei.value) == ('operator: Unsupported value: "~": supported values: "in", "notin", "=", "==", "!=", '
                             '"gt", "lt", "exists", "!"')


def test_selector_from_set_and_add():
    sel = labels.selector_from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"})
    assert labels.selector_from_set(None).empty()
    more = sel.add(labels.Requirement("c", labels.EXISTS))
    assert str(more) == "a=1,b=2,c"
    assert labels.parse("a=b") == labels.parse("a=b")
    assert labels.nothing().add(labels.Requirement("a", labels.EXISTS)).matches_nothing()


def test_label_key_and_value_validation():
    assert labels.validate_label_key("app") == []
    assert labels.validate_label_key("app.kubernetes.io/name") == []
    assert labels.validate_label_key("a" * 63) == []
    assert labels.validate_label_key("Example.com/x") == [
        "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
        "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
    assert labels.validate_label_key("x/") == ["name part must be non-empty", NAME_PART_ERR]
    assert labels.validate_label_value("") == []
    assert labels.validate_label_value("-a") == [VALUE_ERR]
