"""Kubernetes label selectors in their text form, as apimachinery's ``labels`` parses them.

``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x,y)``, ``a``, ``!a``, ``a>1``,
``a<1``, joined by commas; empty matches everything. kustomize's patch targets and Flux's
drift-ignore targets both select with them, and so do annotation selectors. A leaf
library: it imports nothing else of fluxd.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LabelMatcher", "parse_label_selector"]

LabelMatcher = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(r"\s*(!=|==|=|!|,|\(|\)|<|>|[^\s!=,()<>]+)")
_KEY = re.compile(
    r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


def parse_label_selector(text: str) -> LabelMatcher:
    """A predicate over a label (or annotation) map; ValueError for bad syntax."""
    tokens: list[str] = _TOKEN.findall(text)
    if "".join(tokens) != re.sub(r"\s+", "", text):
        raise ValueError(f"cannot parse label selector {text!r}")
    requirements: list[LabelMatcher] = []
    position = 0

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise ValueError(f"label selector {text!r} ends too early")
        position += 1
        return tokens[position - 1]

    def peek() -> str:
        return tokens[position] if position < len(tokens) else ""

    while position < len(tokens):
        requirements.append(_requirement(take, peek, text))
        if position < len(tokens) and take() != ",":
            raise ValueError(f"expected ',' in label selector {text!r}")
    return lambda labels: all(requirement(labels) for requirement in requirements)


def _requirement(take: Callable[[], str], peek: Callable[[], str], text: str) -> LabelMatcher:
    if peek() == "!":
        take()
        key = _key(take(), text)
        return lambda labels: key not in labels
    key = _key(take(), text)
    operator = peek()
    if operator in ("", ","):
        return lambda labels: key in labels
    take()
    if operator in ("=", "=="):
        value = _value(peek(), text, take)
        return lambda labels: key in labels and str(labels[key]) == value
    if operator == "!=":
        value = _value(peek(), text, take)
        return lambda labels: key not in labels or str(labels[key]) != value
    if operator in (">", "<"):
        raw = take()
        try:
            bound = int(raw)
        except ValueError as exc:
            raise ValueError(f"{raw!r} is not an integer in label selector {text!r}") from exc
        return lambda labels: _compare(labels.get(key), bound, operator)
    if operator in ("in", "notin"):
        if take() != "(":
            raise ValueError(f"expected '(' after {operator} in label selector {text!r}")
        values: set[str] = set()
        while True:
            token = take()
            if token == ")":
                break
            if token == ",":
                continue
            values.add(_value(token, text))
        if operator == "in":
            return lambda labels: key in labels and str(labels[key]) in values
        return lambda labels: key not in labels or str(labels[key]) not in values
    raise ValueError(f"unknown operator {operator!r} in label selector {text!r}")


def _key(token: str, text: str) -> str:
    if not _KEY.fullmatch(token):
        raise ValueError(f"invalid label key {token!r} in label selector {text!r}")
    return token


def _value(token: str, text: str, take: Callable[[], str] | None = None) -> str:
    """A value token; an empty value (``a=``) is allowed, as in Kubernetes."""
    if token in ("", ",", ")"):
        return ""
    if token in ("(", "!", "=", "==", "!=", "<", ">"):
        raise ValueError(f"unexpected {token!r} in label selector {text!r}")
    if take is not None:
        take()
    return str(token)


def _compare(value: Any, bound: int, operator: str) -> bool:
    try:
        number = int(str(value))
    except ValueError:
        return False
    return number > bound if operator == ">" else number < bound
