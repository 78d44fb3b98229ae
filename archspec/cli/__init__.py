"""The `archspec` command: a thin shell over the Python API.

    archspec build   SPEC [--set k=v ...] [-o FILE] [--weights FILE] [--device DEV] [--max-memory SIZE]
    archspec check   [PATH ...] [--set k=v ...] [--format text|json|github] [--json] [--min-input] [--deep]
    archspec draw    SPEC -o FILE [--depth N] [--focus BLOCK] [--no-heads] [--lr]
    archspec summary SPEC [--depth N] [--paper] [--json | --csv | --markdown]
    archspec diff    A [B] [--set-a k=v] [--set-b k=v] [--all] [--exit-code]
    archspec profile SPEC [--batch N] [--device DEV] [--optimize] [--depth N] [--json] [-o chart.png]
    archspec schema                      (the spec language's JSON Schema, for editors)
    archspec import  REF [-o SPEC.yaml] [--arg k=v ...] [--input C,H,W] [--name NAME]
    archspec --debug VERB ...            (a traceback when archspec itself fails)
    archspec --plugin MODULE VERB ...    (ops of your own: docs/plugins.md)

Exit codes: 0 success, 1 a spec has errors (or a failed `expect:`), 2 usage error, 3 a bug in
archspec (the traceback under `archspec --debug` or ARCHSPEC_DEBUG=1), 130 interrupted.
Only `build`, `profile` and `check --deep` import torch, which the base install leaves out: without it they
say which extra to install (`pip install 'archspec[torch]'`) and exit 2.
"""

from __future__ import annotations

import errno
import shlex
import sys
from typing import Any, NoReturn

import click
import yaml
from click.core import ParameterSource

from ..errors import SpecError


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise click.BadParameter(f"cannot read the value of {item!r}", param_hint="--set") from None
    return out


SET = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                   help="Override a spec variable, or the input shape: --set num_classes=10 --set input=[3,299,299].")


PASS_NAMES = ("remove_dropout", "sdpa_attention", "fold_bn", "fold_scale", "merge_siblings", "channels_last",
              "fuse_conv", "separable_maxpool")
"""archspec.passes.pass_names(), written out so that `--help` needs no torch (a test keeps the two equal)."""


def _parse_passes(ctx: click.Context, param: click.Parameter, text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PASS_NAMES]
    if unknown or not names:
        raise click.BadParameter(f"unknown pass {', '.join(unknown) or '(none given)'}; the passes are "
                                 f"{', '.join(PASS_NAMES)}", param_hint="--passes")
    return names


PASSES = click.option("--passes", metavar="A,B,...", callback=_parse_passes,
                      help="Only these passes, in their fixed order (implies --optimize): "
                           + ", ".join(PASS_NAMES) + ".")


def fail(exc: SpecError) -> None:
    click.echo(exc.render(), err=True)
    sys.exit(1)


def device_unavailable(exc: Exception) -> NoReturn:
    """A device this machine lacks: a user's mistake, so a located message and exit 1, not a traceback."""
    click.echo(f"error[device-unavailable]: {exc}", err=True)
    sys.exit(1)


class ArchspecGroup(click.Group):
    """The `archspec` group: whatever a verb lets escape ends as a clear message and exit code, never a traceback.

    A spec's fault exits 1, a usage error 2 (click's), Ctrl-C 130 quietly, and anything else is a
    bug in archspec: exit 3 with how to report it; the traceback only under --debug.
    """

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        argv = list(args)
        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta["archspec.argv"] = argv
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except SpecError as exc:  # a verb that let it through: still the user's mistake, still located
            fail(exc)
        except KeyboardInterrupt:
            ctx.exit(130)
        except ModuleNotFoundError as exc:
            extra = EXTRAS.get((exc.name or "").partition(".")[0])
            if extra is None:
                report_bug(ctx)
                ctx.exit(3)
            missing_extra(ctx, exc.name or "", extra)
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # output piped into `head`: click ends quietly
                raise
            click.echo(f"error[io-error]: {exc.strerror or exc}"
                       f"{': ' + str(exc.filename) if exc.filename else ''}", err=True)
            ctx.exit(1)
        except Exception:
            report_bug(ctx)
            ctx.exit(3)


EXTRAS = {"torch": "torch", "safetensors": "torch", "onnx": "export", "onnxscript": "export",
          "onnxruntime": "export", "matplotlib": "profile"}
"""The optional packages a verb may import, and the extra of pyproject.toml that installs each."""


def missing_extra(ctx: click.Context, module: str, extra: str) -> NoReturn:
    """A verb needs an optional package the install left out: say what to install; exit 2, no traceback."""
    argv = ctx.meta.get("archspec.argv", [])
    verb = " ".join([ctx.invoked_subcommand or "", *(a for a in argv if a == "--deep")]).strip()
    lines = [f"error[missing-extra]: `archspec {verb}` needs {module}, which is not installed",
             f"  = hint: pip install 'archspec[{extra}]'"]
    if extra == "torch":
        lines.append("  = note: on a machine without a GPU, CPU-only torch wheels are far smaller: "
                     "pip install torch --index-url https://download.pytorch.org/whl/cpu")
    click.echo("\n".join(lines), err=True)
    ctx.exit(2)


def report_bug(ctx: click.Context) -> None:
    """Say that archspec itself failed, and what to send with a report; the traceback only under --debug."""
    import platform
    import traceback
    from importlib.metadata import PackageNotFoundError, version

    exc = sys.exc_info()[1]
    try:
        ours = version("archspec")
    except PackageNotFoundError:
        ours = "(not installed)"
    argv = ctx.meta.get("archspec.argv", [])
    name = ctx.info_name if ctx.info_name and ctx.info_name.endswith("archspec") else "archspec"
    lines = [f"error[internal-error]: archspec crashed: {type(exc).__name__}: {exc}",
             "  = this is a bug in archspec, not in your spec; please report it with the spec, and:",
             f"  = command:  {name} {shlex.join(argv)}",
             f"  = version:  archspec {ours}, Python {platform.python_version()}, {platform.platform()}"]
    if ctx.params.get("debug"):
        traceback.print_exc()
    else:
        debug = f"{name} --debug {shlex.join(argv)}"
        lines.append(f"  = hint: the report needs the traceback: rerun as `{debug}` (or with ARCHSPEC_DEBUG=1)")
    click.echo("\n".join(lines), err=True)


@click.group(cls=ArchspecGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archspec")
@click.option("--debug", is_flag=True, envvar="ARCHSPEC_DEBUG",
              help="Print the traceback when archspec itself fails (also ARCHSPEC_DEBUG=1).")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", envvar="ARCHSPEC_PLUGINS",
              help="Import the Python module MODULE (mypkg.ops), whose ops every verb then knows; repeatable, also "
                   "ARCHSPEC_PLUGINS='a.ops b.ops'. Installed plugins (entry points archspec.ops) load by themselves.")
def main(debug: bool, plugins: tuple[str, ...]) -> None:
    """archspec: compile YAML network specs into checked torch.fx modules."""
    from ..plugins import PluginError, load_plugins

    try:
        env = click.get_current_context().get_parameter_source("plugins") == ParameterSource.ENVIRONMENT
        load_plugins(*plugins, origin="ARCHSPEC_PLUGINS" if env else "--plugin")
    except PluginError as exc:  # a usage error: the command line (or the installed packages) name a bad plugin
        click.echo(exc.render(), err=True)
        sys.exit(2)


from . import build, check, diff, draw, import_module, profile, schema, summary  # noqa: E402,F401  (each module registers its command)
