"""The small expression language of call strings: `inception(64, 96, $c3 * 2, p=1)`.

A hand-written tokenizer and recursive-descent parser (never Python `eval`).
Bare words are strings (`p=same`, `act(relu)`, or a reference such as
`concat(branch0, branch1)`); `$name` reads a variable; numbers, `true`/`false`,
`null`, lists `[1, 7]` and tuples `(1, 7)` are literals; `+ - * / // % **` and
the functions `min max int round ceil floor` work on numbers. Every node keeps
its character offset so errors point at the exact column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

MAX_TEXT = 2000
MAX_DEPTH = 40
MAX_HEIGHT = 100
"""Operators an expression may stack (`1+1+...`, `- - -8`): evaluating it recurses once per level."""
MAX_MAGNITUDE = 10**15


class ExprError(Exception):
    """A parse or evaluation fault at character `pos` of the text."""

    def __init__(self, message: str, pos: int, hint: str | None = None, span: int = 1,
                 code: str = "bad-expression"):
        super().__init__(message)
        self.message, self.pos, self.hint, self.span, self.code = message, pos, hint, span, code


@dataclass(frozen=True)
class Expr:
    pos: int


@dataclass(frozen=True)
class Lit(Expr):
    value: Any


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class Var(Expr):
    name: str


@dataclass(frozen=True)
class Seq(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Unary(Expr):
    op: str
    operand: Expr


@dataclass(frozen=True)
class Bin(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Fn(Expr):
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Kwarg:
    key: str
    pos: int
    value: Expr


@dataclass(frozen=True)
class CallText:
    """A parsed layer call `name(args, k=v)`; `has_parens` distinguishes `relu` from `relu()`."""

    name: str
    pos: int
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Kwarg, ...] = field(default_factory=tuple)
    text: str = ""


_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<num>(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
      | (?P<var>\$[A-Za-z_][A-Za-z0-9_]*)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<str>'[^']*'|"[^"]*")
      | (?P<op>\*\*|//|[-+*/%()\[\],=])""",
    re.VERBOSE,
)

_LITERAL_WORDS = {"true": True, "false": False, "null": None, "none": None, "True": True,
                  "False": False, "None": None}
_FUNCS = {"min", "max", "int", "round", "ceil", "floor"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    if len(text) > MAX_TEXT:
        raise ExprError(f"expression longer than {MAX_TEXT} characters", 0)
    toks, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str | None = None, kind: str | None = None) -> _Tok | None:
        t = self.tok
        if (text is None or t.text == text) and (kind is None or t.kind == kind) and t.kind != "end":
            self.i += 1
            return t
        return None

    def expect(self, text: str, what: str) -> _Tok:
        t = self.take(text)
        if t is None:
            found = "end of text" if self.tok.kind == "end" else repr(self.tok.text)
            raise ExprError(f"expected {what}, found {found}", self.tok.pos)
        return t

    def end(self) -> None:
        if self.tok.kind != "end":
            raise ExprError(f"unexpected {self.tok.text!r}", self.tok.pos,
                            "separate arguments with commas inside the parentheses")

    def call(self) -> CallText:
        name = self.take(kind="name")
        if name is None:
            found = "nothing" if self.tok.kind == "end" else repr(self.tok.text)
            raise ExprError(f"expected an op or block name, found {found}", self.tok.pos,
                            "a layer is written as name(args), e.g. conv(64, 3, s=2)")
        args: list[Expr] = []
        kwargs: list[Kwarg] = []
        if self.take("("):
            args, kwargs = self.arglist(")")
        self.end()
        return CallText(name.text, name.pos, tuple(args), tuple(kwargs), self.text)

    def arglist(self, close: str) -> tuple[list[Expr], list[Kwarg]]:
        args: list[Expr] = []
        kwargs: list[Kwarg] = []
        while not self.take(close):
            t = self.tok
            if t.kind == "name" and self.toks[self.i + 1].text == "=":
                self.i += 2
                if any(k.key == t.text for k in kwargs):
                    raise ExprError(f"argument '{t.text}' given twice", t.pos)
                kwargs.append(Kwarg(t.text, t.pos, self.expr()))
            elif kwargs:
                raise ExprError("positional argument after a keyword argument", t.pos)
            else:
                args.append(self.expr())
            if not self.take(","):
                self.expect(close, f"',' or '{close}'")
                break
        return args, kwargs

    def expr(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels", self.tok.pos,
                            "split it into variables, or simplify it")
        try:
            return _shallow(self.binary(0))
        finally:
            self.depth -= 1

    _LEVELS = (("+", "-"), ("*", "/", "//", "%"))

    def binary(self, level: int) -> Expr:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.tok.kind == "op" and self.tok.text in self._LEVELS[level]:
            op = self.take()
            assert op is not None
            left = Bin(op.pos, op.text, left, self.binary(level + 1))
        return left

    def unary(self) -> Expr:
        t = self.tok
        if t.text in ("-", "+") and t.kind == "op":
            self.i += 1
            return Unary(t.pos, t.text, self.operand())
        base = self.atom()
        if self.tok.text == "**":
            op = self.take()
            assert op is not None
            return Bin(op.pos, "**", base, self.operand())
        return base

    def operand(self) -> Expr:
        """The operand of a sign or of `**`: one level deeper (these recurse without passing through `expr`)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels", self.tok.pos,
                            "split it into variables, or simplify it")
        try:
            return self.unary()
        finally:
            self.depth -= 1

    def atom(self) -> Expr:
        t = self.tok
        if t.kind == "num":
            self.i += 1
            raw = t.text.replace("_", "")
            try:
                value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            except ValueError:
                raise ExprError(f"bad number {t.text!r}", t.pos) from None
            return Lit(t.pos, value)
        if t.kind == "str":
            self.i += 1
            return Lit(t.pos, t.text[1:-1])
        if t.kind == "var":
            self.i += 1
            return Var(t.pos, t.text[1:])
        if t.kind == "name":
            self.i += 1
            if t.text in _LITERAL_WORDS:
                return Lit(t.pos, _LITERAL_WORDS[t.text])
            if self.take("("):
                if t.text not in _FUNCS:
                    raise ExprError(f"unknown function '{t.text}'", t.pos,
                                    f"functions in arguments: {', '.join(sorted(_FUNCS))}",
                                    span=len(t.text))
                args, kwargs = self.arglist(")")
                if kwargs:
                    raise ExprError(f"{t.text}() takes no keyword arguments", kwargs[0].pos)
                return Fn(t.pos, t.text, tuple(args))
            return Name(t.pos, t.text)
        if self.take("["):
            items, kwargs = self.arglist("]")
            if kwargs:
                raise ExprError("'=' is not allowed inside a list", kwargs[0].pos)
            return Seq(t.pos, tuple(items))
        if self.take("("):
            first = self.expr()
            if self.take(")"):
                return first
            items = [first]
            while self.take(","):
                if self.tok.text == ")":
                    break
                items.append(self.expr())
            self.expect(")", "')'")
            return Seq(t.pos, tuple(items))
        found = "end of text" if t.kind == "end" else repr(t.text)
        raise ExprError(f"expected a value, found {found}", t.pos)


def _children(e: Expr) -> list[Expr]:
    """The sub-expressions of `e`, whatever its kind: its fields that hold expressions."""
    out: list[Expr] = []
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, Expr):
            out.append(v)
        elif isinstance(v, tuple):
            out += [x for x in v if isinstance(x, Expr)]
    return out


def _shallow(e: Expr) -> Expr:
    """`e`, if no path in it is longer than MAX_HEIGHT (evaluation, hashing and comparison recurse along paths).

    Walked with an explicit stack: an operator chain such as `1+1+...+1` parses in a loop but nests.
    """
    stack = [(e, 1)]
    while stack:
        node, height = stack.pop()
        if height > MAX_HEIGHT:
            raise ExprError(f"expression nested deeper than {MAX_HEIGHT} operators", node.pos,
                            "split it into variables, or simplify it")
        stack += [(c, height + 1) for c in _children(node)]
    return e


def parse_call(text: str) -> CallText:
    """Parse a layer call such as `conv(64, 7, s=2, p=3)` or `relu`."""
    return _Parser(text).call()


def parse_expr(text: str) -> Expr:
    """Parse a single value expression such as `$width * 2`."""
    p = _Parser(text)
    e = p.expr()
    p.end()
    return e


def parse_param(text: str) -> tuple[str, Expr | None]:
    """Parse a block parameter declaration: `name` or `name=default`."""
    p = _Parser(text)
    t = p.take(kind="name")
    if t is None:
        raise ExprError("expected a parameter name", 0, "parameters are written as name or name=default")
    default = p.expr() if p.take("=") else None
    p.end()
    return t.text, default


def evaluate(e: Expr, env: Mapping[str, Any]) -> Any:
    """Evaluate an expression; bare names evaluate to themselves as strings."""
    if isinstance(e, Lit):
        return e.value
    if isinstance(e, Name):
        return e.id
    if isinstance(e, Var):
        if e.name not in env:
            from .errors import did_you_mean

            raise ExprError(f"unknown variable '${e.name}'", e.pos, did_you_mean(e.name, list(env)),
                            span=len(e.name) + 1, code="unknown-variable")
        return env[e.name]
    if isinstance(e, Seq):
        return [evaluate(i, env) for i in e.items]
    if isinstance(e, Unary):
        v = _number(evaluate(e.operand, env), e.operand)
        return -v if e.op == "-" else v
    if isinstance(e, Bin):
        return _binop(e, _number(evaluate(e.left, env), e.left), _number(evaluate(e.right, env), e.right))
    if isinstance(e, Fn):
        return _call_fn(e, [_number(evaluate(a, env), a) for a in e.args])
    raise ExprError("cannot evaluate", e.pos)  # pragma: no cover


def _number(v: Any, e: Expr) -> int | float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ExprError(f"arithmetic needs a number, found {v!r}", e.pos)
    return v


def _binop(e: Bin, a: int | float, b: int | float) -> int | float:
    if e.op in ("/", "//", "%") and b == 0:
        raise ExprError("division by zero", e.pos)
    if e.op == "**" and (abs(b) > 64 or abs(a) > MAX_MAGNITUDE):
        raise ExprError("exponent too large", e.pos)
    ops = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
           "//": lambda: a // b, "%": lambda: a % b, "**": lambda: a**b}
    try:
        result = ops[e.op]()
    except ZeroDivisionError:  # 0 ** -1
        raise ExprError("division by zero", e.pos) from None
    except OverflowError:
        raise ExprError("result out of range", e.pos) from None
    if isinstance(result, complex) or not math.isfinite(result) or abs(result) > MAX_MAGNITUDE:
        raise ExprError(f"result out of range: {result!r}", e.pos)
    return result


def _call_fn(e: Fn, args: list[int | float]) -> int | float:
    if not args or (e.name in ("int", "round", "ceil", "floor") and len(args) != 1):
        raise ExprError(f"{e.name}() takes {'one argument' if e.name not in ('min', 'max') else 'arguments'}",
                        e.pos)
    if e.name == "min":
        return min(args)
    if e.name == "max":
        return max(args)
    x = args[0]
    if isinstance(x, float) and not math.isfinite(x):
        raise ExprError(f"{e.name}() of a non-finite number", e.pos)
    rounding: dict[str, Callable[[int | float], int]] = {"int": int, "round": round, "ceil": math.ceil,
                                                         "floor": math.floor}
    return rounding[e.name](x)
