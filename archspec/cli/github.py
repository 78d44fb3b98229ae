"""GitHub Actions workflow commands for diagnostics: errors shown on a pull request's lines.

    ::error file=specs/bad.yaml,line=27,endLine=27,col=24,endColumn=25,title=error[too-many-arguments]::mix: ...

The span is the one text mode underlines (`endColumn` exclusive, on the same line, as GitHub requires).

Data is escaped as GitHub's toolkit does (`%`, CR, LF), properties also `:` and `,`.
"""

from __future__ import annotations

from ..errors import Diagnostic

_DATA = {"%": "%25", "\r": "%0D", "\n": "%0A"}
_PROPERTY = {**_DATA, ":": "%3A", ",": "%2C"}


def escape_data(text: str) -> str:
    return "".join(_DATA.get(c, c) for c in text)


def escape_property(text: str) -> str:
    return "".join(_PROPERTY.get(c, c) for c in text)


def workflow_command(diag: Diagnostic, file: str) -> str:
    """`::error` or `::warning` for one diagnostic; `file` is the spec's when the diagnostic has no location."""
    props = {"file": diag.loc.file if diag.loc else file}
    if diag.loc:
        # endColumn is exclusive, as GitHub reads it: the columns text mode underlines are col .. col + span - 1
        props.update(line=str(diag.loc.line), endLine=str(diag.loc.line), col=str(diag.loc.col),
                     endColumn=str(diag.loc.col + max(diag.span, 1)))
    props["title"] = f"{diag.severity}[{diag.code}]"
    head = f"{diag.path}: {diag.message}" if diag.path else diag.message
    details = diag.render().splitlines()[1:]  # expected, found, notes, hint (no source excerpt without sources)
    message = "\n".join([head, *details])
    return f"::{diag.severity} " + ",".join(f"{k}={escape_property(v)}" for k, v in props.items()) + \
        f"::{escape_data(message)}"
