"""The small expression language of call strings: `inception(64, 96, $c3 * 2, p=1)`.

A hand-written tokenizer and recursive-descent parser (never Python `eval`).
Bare words are strings (`p=same`, `act(relu)`, or a reference such as
`concat(branch0, branch1)`); `$name` reads a variable; numbers, `true`/`false`,
`null`, lists `[1, 7]` and tuples `(1, 7)` are literals. Operators, loosest
first, as in Python: `A if COND else B`, `or`, `and`, `not`, comparisons
`== != < <= > >=`, `+ -`, `* / // %`, unary `- +`, `**`, then indexing `X[i]`
slicing `X[a:b]` and attribute access `$in.c`. Functions: `min max int round ceil floor len sum
abs make_divisible`. Every node keeps its character offset so errors point at
the exact column; the tree's depth is bounded, so evaluation cannot recurse
without limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

MAX_TEXT = 2000
MAX_DEPTH = 64
"""Deepest nesting of the expression tree (brackets, operators, calls): a chain `1+1+...+1` counts each `+`."""
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
class Compare(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Logic(Expr):
    """`and` / `or`, evaluated lazily; `not` is a `Unary`."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Cond(Expr):
    """`then if test else orelse`."""

    then: Expr
    test: Expr
    orelse: Expr


@dataclass(frozen=True)
class Index(Expr):
    value: Expr
    index: Expr


@dataclass(frozen=True)
class Slice(Expr):
    """`X[lo:hi]`: a part of a list (either bound may be left out)."""

    value: Expr
    lo: Expr | None
    hi: Expr | None


@dataclass(frozen=True)
class Attr(Expr):
    value: Expr
    name: str


@dataclass(frozen=True)
class Fn(Expr):
    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[Kwarg, ...] = ()


@dataclass(frozen=True)
class Kwarg:
    key: str
    pos: int
    value: Expr


@dataclass(frozen=True)
class CallText:
    """A parsed layer call `name(args, k=v)`; `has_parens` distinguishes `relu` from `relu()`.

    `name` starts with `$` when the callee is read from a variable (`$block(64)`, `$act`).
    """

    name: str
    pos: int
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Kwarg, ...] = field(default_factory=tuple)
    text: str = ""

    @property
    def callee_var(self) -> str | None:
        """The variable that names the op or block, if the callee is written `$name`."""
        return self.name[1:] if self.name.startswith("$") else None


class Shape(tuple):
    """A tensor shape as an expression value (`$in`): a list with `.c .h .w` (C×H×W) or `.f` (flat)."""

    __slots__ = ()
    FIELDS = {3: "chw", 1: "f"}

    def attr(self, name: str, pos: int) -> int:
        dims = self.FIELDS.get(len(self), "")
        if name not in dims:
            have = ", ".join("." + d for d in dims) or "none"
            raise ExprError(f"a shape of {len(self)} dimension{'s' if len(self) != 1 else ''} has no '.{name}'",
                            pos, f"its fields: {have}; or index it, e.g. $in[0]", code="wrong-type")
        return self[dims.index(name)]


class ChannelsLastShape(Shape):
    """`$in` of a channels-last input (H×W×C, after a `permute`): `.h .w .c` name its axes."""

    __slots__ = ()
    FIELDS = {3: "hwc", 1: "f"}


class TokensShape(Shape):
    """`$in` of a token sequence (L×D): `.l` is the number of tokens, `.d` their width."""

    __slots__ = ()
    FIELDS = {2: "ld"}


_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<num>(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)
      | (?P<var>\$[A-Za-z_][A-Za-z0-9_]*)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<str>'[^']*'|"[^"]*")
      | (?P<op>\*\*|//|==|!=|<=|>=|[-+*/%()\[\],=<>.:])""",
    re.VERBOSE,
)

_LITERAL_WORDS = {"true": True, "false": False, "null": None, "none": None, "True": True,
                  "False": False, "None": None}
_KEYWORDS = {"and", "or", "not", "if", "else"}
_ROUNDING: dict[str, Callable[[Any], int]] = {"int": int, "round": round, "ceil": math.ceil, "floor": math.floor}
_FUNCS = {"min", "max", "len", "sum", "abs", "make_divisible", *_ROUNDING}
_COMPARE = ("==", "!=", "<", "<=", ">", ">=")


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
            toks.append(_Tok("kw" if kind == "name" and m.group() in _KEYWORDS else kind, m.group(), pos))
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

    def nest(self, pos: int, by: int = 1) -> None:
        """Count one more level of the tree (or of the parser's recursion): bounded by MAX_DEPTH."""
        self.depth += by
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels", pos,
                            "split it into variables under vars:")

    def call(self) -> CallText:
        name = self.take(kind="name") or self.take(kind="var")
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
        saved = self.depth
        self.nest(self.tok.pos)
        try:
            then = self.logic("or")
            if self.tok.text == "if" and self.tok.kind == "kw":
                t = self.take()
                assert t is not None
                self.nest(t.pos)
                test = self.logic("or")
                if not self.take("else", "kw"):
                    self.expect("else", "'else' (A if COND else B)")
                return Cond(t.pos, then, test, self.expr())
            return then
        finally:
            self.depth = saved

    def logic(self, op: str) -> Expr:
        saved = self.depth
        left = self.logic("and") if op == "or" else self.negation()
        while self.tok.kind == "kw" and self.tok.text == op:
            t = self.take()
            assert t is not None
            self.nest(t.pos)
            left = Logic(t.pos, op, left, self.logic("and") if op == "or" else self.negation())
        self.depth = saved
        return left

    def negation(self) -> Expr:
        t = self.tok
        if t.kind == "kw" and t.text == "not":
            self.i += 1
            self.nest(t.pos)
            return Unary(t.pos, "not", self.negation())
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.binary(0)
        if self.tok.kind == "op" and self.tok.text in _COMPARE:
            t = self.take()
            assert t is not None
            left = Compare(t.pos, t.text, left, self.binary(0))
            if self.tok.kind == "op" and self.tok.text in _COMPARE:
                raise ExprError("comparisons cannot be chained", self.tok.pos, "join them with `and`")
        return left

    _LEVELS = (("+", "-"), ("*", "/", "//", "%"))

    def binary(self, level: int) -> Expr:
        if level == len(self._LEVELS):
            return self.unary()
        saved = self.depth
        left = self.binary(level + 1)
        while self.tok.kind == "op" and self.tok.text in self._LEVELS[level]:
            op = self.take()
            assert op is not None
            self.nest(op.pos)
            left = Bin(op.pos, op.text, left, self.binary(level + 1))
        self.depth = saved
        return left

    def unary(self) -> Expr:
        t = self.tok
        saved = self.depth
        try:
            if t.text in ("-", "+") and t.kind == "op":
                self.i += 1
                self.nest(t.pos)
                return Unary(t.pos, t.text, self.unary())
            base = self.postfix()
            if self.tok.text == "**":
                op = self.take()
                assert op is not None
                self.nest(op.pos)
                return Bin(op.pos, "**", base, self.unary())
            return base
        finally:
            self.depth = saved

    def postfix(self) -> Expr:
        saved = self.depth
        value = self.atom()
        while self.tok.text in ("[", ".") and self.tok.kind == "op":
            t = self.take()
            assert t is not None
            self.nest(t.pos)
            if t.text == "[":
                lo = None if self.tok.text == ":" else self.expr()
                if self.take(":"):
                    hi = None if self.tok.text == "]" else self.expr()
                    self.expect("]", "']'")
                    value = Slice(t.pos, value, lo, hi)
                    continue
                self.expect("]", "']'")
                assert lo is not None
                value = Index(t.pos, value, lo)
            else:
                name = self.take(kind="name")
                if name is None:
                    raise ExprError("expected a field name after '.'", self.tok.pos, "e.g. $in.c")
                value = Attr(name.pos, value, name.text)
        self.depth = saved
        return value

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
                allowed = {"make_divisible": {"min_value"}}.get(t.text, set())
                bad = next((k for k in kwargs if k.key not in allowed), None)
                if bad is not None:
                    raise ExprError(f"{t.text}() has no argument '{bad.key}'", bad.pos)
                return Fn(t.pos, t.text, tuple(args), tuple(kwargs))
            return Name(t.pos, t.text)
        self.nest(t.pos)
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


def parse_call(text: str) -> CallText:
    """Parse a layer call such as `conv(64, 7, s=2, p=3)`, `relu` or `$block(64)`."""
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


def children(e: Expr) -> tuple[Expr, ...]:
    """The sub-expressions of `e`."""
    if isinstance(e, Seq):
        return e.items
    if isinstance(e, Fn):
        return e.args + tuple(k.value for k in e.kwargs)
    if isinstance(e, Unary):
        return (e.operand,)
    if isinstance(e, (Bin, Compare, Logic)):
        return (e.left, e.right)
    if isinstance(e, Cond):
        return (e.then, e.test, e.orelse)
    if isinstance(e, Index):
        return (e.value, e.index)
    if isinstance(e, Slice):
        return tuple(x for x in (e.value, e.lo, e.hi) if x is not None)
    if isinstance(e, Attr):
        return (e.value,)
    return ()


def variables(e: Expr, found: dict[str, None]) -> None:
    """Add the names of the variables expression `e` reads to `found`."""
    if isinstance(e, Var):
        found[e.name] = None
    for child in children(e):
        variables(child, found)


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
        if e.op == "not":
            return not _bool(evaluate(e.operand, env), e.operand, "not")
        v = _number(evaluate(e.operand, env), e.operand)
        return -v if e.op == "-" else v
    if isinstance(e, Bin):
        return _binop(e, _number(evaluate(e.left, env), e.left), _number(evaluate(e.right, env), e.right))
    if isinstance(e, Compare):
        return _compare(e, evaluate(e.left, env), evaluate(e.right, env))
    if isinstance(e, Logic):
        left = _bool(evaluate(e.left, env), e.left, e.op)
        if left == (e.op == "or"):
            return left
        return _bool(evaluate(e.right, env), e.right, e.op)
    if isinstance(e, Cond):
        return evaluate(e.then if _bool(evaluate(e.test, env), e.test, "if") else e.orelse, env)
    if isinstance(e, Index):
        return _index(e, evaluate(e.value, env), evaluate(e.index, env))
    if isinstance(e, Attr):
        return _attr(e, evaluate(e.value, env))
    if isinstance(e, Slice):
        return _slice(e, evaluate(e.value, env), *(None if b is None else evaluate(b, env) for b in (e.lo, e.hi)))
    if isinstance(e, Fn):
        return _call_fn(e, [evaluate(a, env) for a in e.args], {k.key: evaluate(k.value, env) for k in e.kwargs})
    raise ExprError("cannot evaluate", e.pos)  # pragma: no cover


def _number(v: Any, e: Expr) -> int | float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ExprError(f"arithmetic needs a number, found {v!r}", e.pos, code="wrong-type")
    return v


def _bool(v: Any, e: Expr, what: str) -> bool:
    if not isinstance(v, bool):
        raise ExprError(f"`{what}` needs true or false, found {v!r}", e.pos,
                        "compare it to make a condition, e.g. $n > 0", code="wrong-type")
    return v


def _compare(e: Compare, a: Any, b: Any) -> bool:
    if e.op == "==":
        return _same(a, b)
    if e.op == "!=":
        return not _same(a, b)
    _number(a, e.left), _number(b, e.right)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[e.op]


def _same(a: Any, b: Any) -> bool:
    """Equality that tells true from 1 (as the spec's values are typed)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _index(e: Index, value: Any, key: Any) -> Any:
    if isinstance(value, Mapping):
        if not isinstance(key, (str, int)) or isinstance(key, bool) or key not in value:
            from .errors import did_you_mean

            raise ExprError(f"no key {key!r} in this mapping", e.index.pos,
                            did_you_mean(str(key), [str(k) for k in value]) or
                            "keys: " + ", ".join(str(k) for k in list(value)[:12]), code="bad-index")
        return value[key]
    if isinstance(value, (list, tuple, str)):
        if isinstance(key, bool) or not isinstance(key, int):
            raise ExprError(f"a list index must be a whole number, found {key!r}", e.index.pos, code="bad-index")
        if not -len(value) <= key < len(value):
            raise ExprError(f"index {key} is out of range for a list of {len(value)}", e.index.pos,
                            code="bad-index")
        return value[key]
    raise ExprError(f"cannot index {_kind(value)}", e.pos, "only lists and mappings can be indexed",
                    code="wrong-type")


def _slice(e: Slice, value: Any, lo: Any, hi: Any) -> Any:
    if not isinstance(value, (list, tuple)):
        raise ExprError(f"cannot slice {_kind(value)}", e.pos, "only lists can be sliced", code="wrong-type")
    for bound, part in ((lo, e.lo), (hi, e.hi)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise ExprError(f"a slice bound must be a whole number, found {bound!r}", part.pos if part else e.pos,
                            code="bad-index")
    return list(value[lo:hi])


def _attr(e: Attr, value: Any) -> Any:
    if isinstance(value, Shape):
        return value.attr(e.name, e.pos)
    if isinstance(value, Mapping):
        if e.name not in value:
            raise ExprError(f"no key '{e.name}' in this mapping", e.pos, code="bad-index")
        return value[e.name]
    if isinstance(value, list) and value and all(isinstance(v, Shape) for v in value):
        raise ExprError(f"this reads several inputs: '.{e.name}' needs one of them", e.pos,
                        "index it first, e.g. $in[0].c", code="wrong-type")
    raise ExprError(f"{_kind(value)} has no field '.{e.name}'", e.pos, code="wrong-type")


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, (int, float)):
        return f"a number ({v!r})"
    if isinstance(v, str):
        return f"a string ({v!r})"
    return "null" if v is None else type(v).__name__


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
    return _finite(result, e)


def _finite(result: Any, e: Expr) -> Any:
    if isinstance(result, complex) or not math.isfinite(result) or abs(result) > MAX_MAGNITUDE:
        raise ExprError(f"result out of range: {result!r}", e.pos)
    return result


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """`v` rounded to the nearest multiple of `divisor`, at least `min_value` (default `divisor`), and never
    below 90 % of `v` (the channel rounding of MobileNet and EfficientNet)."""
    floor_at = divisor if min_value is None else min_value
    rounded = max(floor_at, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


def _call_fn(e: Fn, args: list[Any], kwargs: dict[str, Any]) -> Any:
    name = e.name
    if name in ("min", "max", "sum"):
        items = args[0] if len(args) == 1 and isinstance(args[0], (list, tuple)) else args
        if not items and name != "sum":
            raise ExprError(f"{name}() of nothing", e.pos)
        numbers = [_number(v, e.args[min(i, len(e.args) - 1)]) for i, v in enumerate(items)]
        if not numbers:
            return 0
        return _finite(min(numbers) if name == "min" else max(numbers) if name == "max" else sum(numbers), e)
    if name == "len":
        if len(args) != 1:
            raise ExprError("len() takes one argument", e.pos)
        if not isinstance(args[0], (list, tuple, str, Mapping)):
            raise ExprError(f"len() of {_kind(args[0])}", e.args[0].pos, code="wrong-type")
        return len(args[0])
    if name == "make_divisible":
        if len(args) != 2:
            raise ExprError("make_divisible() takes v, divisor and optionally min_value=", e.pos)
        v, divisor = _number(args[0], e.args[0]), _number(args[1], e.args[1])
        low = kwargs.get("min_value")
        if not isinstance(divisor, int) or divisor < 1 or (low is not None and _number(low, e) < 0):
            raise ExprError("make_divisible() needs a whole divisor of at least 1", e.args[1].pos)
        return _finite(make_divisible(v, divisor, low), e)
    if len(args) != 1:
        raise ExprError(f"{name}() takes one argument", e.pos)
    x = _number(args[0], e.args[0])
    if name == "abs":
        return abs(x)
    if isinstance(x, float) and not math.isfinite(x):
        raise ExprError(f"{name}() of a non-finite number", e.pos)
    return _ROUNDING[name](x)
