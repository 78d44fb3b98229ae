"""Expressions over class parameters: substitution, constant folding, and their Python text."""

from __future__ import annotations

import keyword
from typing import Any, Callable

from ...expr import Bin, Expr, ExprError, Fn, Lit, Name, Seq, Unary, Var, evaluate

RESERVED = {"self", "x", "nn", "torch", "F", "math", "OrderedDict", "activation", "super", "range", "min", "max",
             "int", "round", "float", "bool", "str", "tuple", "l", "O", "I"}


def subst(e: Expr, env: dict[str, Expr]) -> Expr:
    if isinstance(e, Var):
        return env.get(e.name, e)
    if isinstance(e, Seq):
        return Seq(e.pos, tuple(subst(i, env) for i in e.items))
    if isinstance(e, Unary):
        return Unary(e.pos, e.op, subst(e.operand, env))
    if isinstance(e, Bin):
        return Bin(e.pos, e.op, subst(e.left, env), subst(e.right, env))
    if isinstance(e, Fn):
        return Fn(e.pos, e.name, tuple(subst(a, env) for a in e.args))
    return e


def free(e: Expr) -> bool:
    """Whether `e` reads a variable (a class parameter)."""
    if isinstance(e, Var):
        return True
    if isinstance(e, Seq):
        return any(free(i) for i in e.items)
    if isinstance(e, Unary):
        return free(e.operand)
    if isinstance(e, Bin):
        return free(e.left) or free(e.right)
    if isinstance(e, Fn):
        return any(free(a) for a in e.args)
    return False


def fold(e: Expr) -> Expr:
    """Evaluate every part of `e` that reads no parameter."""
    if not free(e):
        try:
            return Lit(e.pos, evaluate(e, {}))
        except ExprError:
            return e
    if isinstance(e, Seq):
        return Seq(e.pos, tuple(fold(i) for i in e.items))
    if isinstance(e, Unary):
        return Unary(e.pos, e.op, fold(e.operand))
    if isinstance(e, Bin):
        return Bin(e.pos, e.op, fold(e.left), fold(e.right))
    if isinstance(e, Fn):
        return Fn(e.pos, e.name, tuple(fold(a) for a in e.args))
    return e


def add(a: Expr, b: Expr) -> Expr:
    return Bin(0, "+", a, b)


PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, "**": 4}


def lit(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v + '"' if '"' not in v and "\\" not in v else repr(v)
    if isinstance(v, (list, tuple)):
        items = [lit(i) for i in v]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    return repr(v)


class Names:
    """How a variable of an expression is written: a constructor argument, or `self.name` in forward."""

    def __init__(self, table: Callable[[str], str]):
        self.table = table
        self.used: set[str] = set()
        self.math = False

    def render(self, e: Expr) -> str:
        return self._r(fold(e), 0)

    def _r(self, e: Expr, prec: int) -> str:
        if isinstance(e, Lit):
            return lit(e.value)
        if isinstance(e, Name):
            return lit(e.id)
        if isinstance(e, Var):
            self.used.add(e.name)
            return self.table(e.name)
        if isinstance(e, Seq):
            return lit(()) if not e.items else "(" + ", ".join(self._r(i, 0) for i in e.items) + \
                ("," if len(e.items) == 1 else "") + ")"
        if isinstance(e, Unary):
            text = e.op + self._r(e.operand, 3)
            return f"({text})" if prec > 3 else text
        if isinstance(e, Bin):
            p = PREC[e.op]
            left, right = (p + 1, p) if e.op == "**" else (p, p + 1)
            text = f"{self._r(e.left, left)} {e.op} {self._r(e.right, right)}"
            return f"({text})" if p < prec else text
        if isinstance(e, Fn):
            args = ", ".join(self._r(a, 0) for a in e.args)
            if e.name in ("ceil", "floor"):
                self.math = True
                return f"math.{e.name}({args})"
            return f"{e.name}({args})"
        raise TypeError(f"cannot render {e!r}")  # pragma: no cover


def pyname(name: str) -> str:
    """A Python identifier for a spec name (parameters, variables)."""
    if not name.isidentifier():
        name = "v" + "".join(ch if ch.isalnum() else "_" for ch in name)
    if keyword.iskeyword(name) or name in RESERVED:
        name += "_"
    return name


def is_attr(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def camel(name: str) -> str:
    parts = [p for p in "".join(ch if ch.isalnum() else "_" for ch in name).split("_") if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Block"
    return text if text[0].isalpha() else "B" + text


# -- the emitter --------------------------------------------------------------
