"""The benchmark suite in one command: inference speed side by side, and `archspec check` scaling.

    python benchmarks/run.py                       # GoogLeNet and Inception v3, CPU fp32, batch 8 and 1
    python benchmarks/run.py --all                 # also Inception v4 and Inception-ResNet v2
    python benchmarks/run.py --cnn                 # also ResNet-50, MobileNetV2 and EfficientNet-B0
    python benchmarks/run.py --transformers        # also ViT-B/16 and Swin-T
    python benchmarks/run.py --quick               # a smoke run: few repeats, numbers not to quote
    python benchmarks/run.py --device cuda --dtype bf16 --cuda-graphs
    python benchmarks/run.py --lowp                # also archspec bf16 and int8, ONNX Runtime int8 (lowp.py)

For each spec and batch size, eight ways of running the same network on the same
weights and the same input are timed in one process, run after run in rotating
order (so that drifts of a busy machine fall on all alike):

    reference eager                    the torchvision/timm module
    reference torch.compile            inductor, torch.compile's defaults, static shapes
    reference torch.compile, frozen    the same with `freezing` on (weights as constants: BN folded, oneDNN packing)
    ONNX Runtime                       the reference exported with torch.onnx.export, intra-op threads = cores
    archspec                           the module `archspec.build` emits, unoptimised
    archspec optimised                 `archspec.optimize` of it
    archspec optimised torch.compile   torch.compile of the optimised module, defaults
    ... , frozen                       and with `freezing` on

Every output is first checked against the reference eager in fp32 (relative max
difference ≤ 1e-4); a way that disagrees is left out of the timing and named.
Ratios are medians of the per-round ratios. Writes benchmarks/RESULTS.md (--out).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import lowp
import torch

import archspec
from archspec.files import atomic_output
from archspec.profile import DTYPES, forward_runner

from common import REFERENCES, SPECS, table

HERE = Path(__file__).resolve().parent
DEFAULT_SPECS = ("googlenet", "inception_v3")
MORE_SPECS = ("inception_v4", "inception_resnet_v2")
CNN_SPECS = ("resnet50", "mobilenet_v2", "efficientnet_b0")
TRANSFORMER_SPECS = ("vit_b_16", "swin_t")
TOLERANCE = 1e-4
REF, ORT, OURS, OPT = "reference eager", "ONNX Runtime", "archspec", "archspec optimised"
REF_C, REF_CF = "reference torch.compile", "reference torch.compile, frozen"
OPT_C, OPT_CF = "archspec optimised torch.compile", "archspec optimised torch.compile, frozen"
COMPILED = (REF_C, REF_CF, OPT_C, OPT_CF)
FROZEN = (REF_CF, OPT_CF)
INCEPTION_TARGETS = [  # (what, faster, than, at least): CPU fp32 batch 8
    (f"{OPT} ≥ 1.0× {ORT}", OPT, ORT, 1.0),
    (f"{OPT} ≥ 2.5× {REF}", OPT, REF, 2.5),
    (f"{OPT_C} ≥ 1.2× {REF_C}", OPT_C, REF_C, 1.2),
    (f"{OPT_CF} ≥ 1.2× {REF_CF}", OPT_CF, REF_CF, 1.2),
]
CNN_TARGETS = [
    (f"{OPT} ≥ 1.0× {ORT}", OPT, ORT, 1.0),
    (f"{OPT} ≥ 2.0× {REF}", OPT, REF, 2.0),
]
TRANSFORMER_TARGETS = [(f"{OPT} ≥ 1.0× {ORT}", OPT, ORT, 1.0)]
TARGETS = {"googlenet": INCEPTION_TARGETS, "inception_v3": INCEPTION_TARGETS,
           **{spec: CNN_TARGETS for spec in CNN_SPECS}, **{spec: TRANSFORMER_TARGETS for spec in TRANSFORMER_SPECS}}
"""The targets set for each network (CPU fp32, batch TARGET_BATCH)."""
TARGET_BATCH = 8
CHECK_TARGET_BLOCKS, CHECK_TARGET_S = 5000, 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--specs", default=",".join(DEFAULT_SPECS), help="comma-separated spec names (default: %(default)s)")
    p.add_argument("--all", action="store_true", help=f"add {' and '.join(MORE_SPECS)}")
    p.add_argument("--cnn", action="store_true", help=f"add {', '.join(CNN_SPECS)}")
    p.add_argument("--transformers", action="store_true", help=f"add {', '.join(TRANSFORMER_SPECS)}")
    p.add_argument("--batches", default="8,1", help="comma-separated batch sizes (default: %(default)s)")
    p.add_argument("--repeat", type=int, default=15, help="timed rounds (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch's intra-op threads and ONNX Runtime's (default: torch's choice, the cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=list(DTYPES), default="fp32", help="bf16/fp16 run under torch.autocast")
    p.add_argument("--cuda-graphs", action="store_true", help="replay eager forwards as CUDA graphs; "
                   "torch.compile with mode='reduce-overhead'")
    p.add_argument("--no-compile", action="store_true", help="leave out the four torch.compile ways")
    p.add_argument("--no-onnx", action="store_true", help="leave out ONNX Runtime")
    p.add_argument("--lowp", action="store_true", help="add archspec bf16, archspec int8 and ONNX Runtime int8 "
                   "(benchmarks/lowp.py; CPU)")
    p.add_argument("--no-check-scaling", action="store_true", help="leave out the `archspec check` scaling table")
    p.add_argument("--quick", action="store_true", help="smoke run: 3 rounds, 1 warm-up, small scaling sizes")
    p.add_argument("--out", default=str(HERE / "RESULTS.md"), help="where to write the results (default: %(default)s)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeat, args.warmup = 3, 1
    args.spec_names = [s.strip() for s in args.specs.split(",") if s.strip()] + (list(MORE_SPECS) if args.all else []) \
        + (list(CNN_SPECS) if args.cnn else []) + (list(TRANSFORMER_SPECS) if args.transformers else [])
    unknown = [s for s in args.spec_names if s not in REFERENCES]
    if unknown:
        p.error(f"no reference for {', '.join(unknown)}; known: {', '.join(REFERENCES)}")
    args.batch_sizes = [int(b) for b in args.batches.split(",")]
    return args


def check_device(args: argparse.Namespace) -> torch.device:
    """The device asked for, or exit 2 with the reason."""
    from archspec.backends.torch_fx import DeviceError, resolve_device

    try:
        dev = resolve_device(args.device) or torch.device("cpu")
    except DeviceError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        sys.exit(2)
    if args.cuda_graphs and dev.type != "cuda":
        print("run.py: --cuda-graphs needs a CUDA device (--device cuda)", file=sys.stderr)
        sys.exit(2)
    if dev.type == "cuda":  # fp32 means fp32: cuDNN's default TF32 convs differ from it by ~1e-3
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    return dev


# -- the ways of running -------------------------------------------------------

def randomize_bn_stats(model: torch.nn.Module, seed: int = 0) -> None:
    """Give batch norm non-trivial running statistics, so that folding them is tested for real."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def compiled(module: torch.nn.Module, cuda_graphs: bool, frozen: bool) -> torch.nn.Module:
    """torch.compile with static shapes; `frozen`: inductor's `freezing`, weights taken as constants.

    Freezing is off by default in torch.compile. With it, inductor folds batch norm and packs oneDNN
    weights itself, so both kinds are measured: what `torch.compile(model)` gives, and the best it can.
    """
    options = {"freezing": frozen, **({"triton.cudagraphs": True} if cuda_graphs else {})}
    return torch.compile(module, dynamic=False, options=options)


def onnx_session(model: torch.nn.Module, x: torch.Tensor, workdir: Path, profile_prefix: str | None = None) -> Any:
    """An ONNX Runtime session on the exported `model` (CPU provider, or CUDA's on a GPU); profiling on request."""
    import onnxruntime as ort

    path = workdir / f"model_{id(model)}_{x.shape[0]}.onnx"
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # nn.MultiheadAttention's inference fast path is one fused op the exporter cannot write: it is
    # turned off for the export (ViT), so the graph holds the attention's own matmuls and softmax.
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ONNX Runtime's threads spin after each op by default, taking the cores from whatever runs next in
    # the rotation (and, on 2 cores, from its own main thread): spinning is off for a side-by-side run.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix is not None:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    providers = ["CUDAExecutionProvider"] if x.device.type == "cuda" else ["CPUExecutionProvider"]
    if providers[0] not in ort.get_available_providers():
        raise ImportError(f"this onnxruntime has no {providers[0]}")
    return ort.InferenceSession(str(path), options, providers=providers)


def onnx_runner(model: torch.nn.Module, x: torch.Tensor, workdir: Path) -> tuple[Callable[[], Any], str]:
    """A forward through `onnx_session`, and ONNX Runtime's version."""
    import onnxruntime as ort

    session = onnx_session(model, x, workdir)
    feed = {session.get_inputs()[0].name: x.detach().cpu().numpy()}
    return lambda: torch.from_numpy(session.run(None, feed)[0]), ort.__version__


def rel_diff(a: Any, b: torch.Tensor) -> float:
    a = torch.as_tensor(a).float().to(b.device)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def ways(spec: str, args: argparse.Namespace, dev: torch.device, x: torch.Tensor, models: dict[str, Any],
         workdir: Path, notes: list[str]) -> dict[str, Callable[[], Any]]:
    """Each way as a no-argument forward, after checking its fp32 output against the reference eager."""
    dtype = DTYPES[args.dtype]
    with torch.inference_mode():
        expected = models[REF](x).float()
    runners: dict[str, Callable[[], Any]] = {}
    for name, model in models.items():
        start = time.perf_counter()
        with torch.inference_mode():
            out = model(x)  # compiles the torch.compile'd ways
        first = time.perf_counter() - start
        diff = rel_diff(out, expected)
        if diff > TOLERANCE:
            notes.append(f"{spec}, batch {x.shape[0]}: **{name} left out**: its output differs from the "
                         f"reference's by {diff:.2e} (relative max difference; limit {TOLERANCE:g})")
            continue
        if name in COMPILED:
            notes.append(f"{spec}, batch {x.shape[0]}: {name}: first call (compilation) {first:.1f} s")
        runners[name] = forward_runner(model, x, dtype, args.cuda_graphs and name not in COMPILED)
    if not args.no_onnx:
        if dtype is not None or args.cuda_graphs:
            notes.append(f"{ORT} left out: it runs the exported fp32 graph without autocast or CUDA graphs")
        else:
            try:
                run_ort, version = onnx_runner(models[REF], x, workdir)
            except ImportError as exc:
                notes.append(f"{ORT} left out: {exc} (pip install 'archspec[bench]'; onnxruntime-gpu for CUDA)")
            else:
                diff = rel_diff(run_ort(), expected)
                if diff <= TOLERANCE:
                    before = (REF, REF_C, REF_CF)
                    runners = {**{k: v for k, v in runners.items() if k in before}, ORT: run_ort,
                               **{k: v for k, v in runners.items() if k not in before}}
                else:
                    notes.append(f"{spec}, batch {x.shape[0]}: **{ORT} left out**: output differs by {diff:.2e}")
    return runners


def base_models(spec: str, dev: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The reference (batch-norm statistics randomised) and archspec's module with the reference's weights."""
    _, make, _ = REFERENCES[spec]
    torch.manual_seed(0)
    ref = make().eval()
    randomize_bn_stats(ref)
    ours = archspec.build(SPECS / f"{spec}.yaml").eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref.to(dev), ours.to(dev)


def batch_models(ref: torch.nn.Module, ours: torch.nn.Module, batch: int, args: argparse.Namespace,
                 notes: list[str]) -> dict[str, Any]:
    """Every way's module for one batch size: the optimised one packs its weights for it, compiles are static."""
    models: dict[str, Any] = {REF: ref, OURS: ours}
    opt = models[OPT] = archspec.optimize(ours, batch=batch)
    if not args.no_compile:
        torch._dynamo.reset()  # each batch size compiled afresh, with static shapes
        for name, model in ((REF_C, ref), (REF_CF, ref), (OPT_C, opt), (OPT_CF, opt)):
            models[name] = compiled(model, args.cuda_graphs, frozen=name in FROZEN)
    return {k: models[k] for k in (REF, REF_C, REF_CF, OURS, OPT, OPT_C, OPT_CF) if k in models}


# -- timing --------------------------------------------------------------------

def alternate(runners: dict[str, Callable[[], Any]], repeat: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of each runner per round; each round runs them all, starting one further along each time."""
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeat):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    return times


def speedup(times: dict[str, list[float]], way: str, base: str) -> float | None:
    """Median over rounds of base time / way time: how many times faster `way` is than `base`."""
    if way not in times or base not in times:
        return None
    return statistics.median(b / w for w, b in zip(times[way], times[base], strict=True))


def speed_rows(times: dict[str, list[float]], batch: int) -> list[list[str]]:
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append([name, f"{med * 1e3:.1f}", f"{min(ts) * 1e3:.1f}–{max(ts) * 1e3:.1f}", f"{batch / med:.1f}",
                     _x(speedup(times, name, REF)), _x(speedup(times, name, ORT))])
    return rows


def _x(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}×"


def target_rows(results: dict[tuple[str, int], dict[str, list[float]]], args: argparse.Namespace) -> list[list[str]]:
    """The issue's targets next to what this run measured: met, or missed by how much."""
    rows = []
    for spec, goals in TARGETS.items():
        times = results.get((spec, TARGET_BATCH))
        if times is None:
            continue
        for what, way, base, goal in goals:
            got = speedup(times, way, base)
            status = "not measured" if got is None else "met" if got >= goal else f"missed by {1 - got / goal:.0%}"
            rows.append([spec, what, _x(got), status])
    return rows


# -- the report ----------------------------------------------------------------

def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [f"CPU: {cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}"]
    if torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name()} (CUDA {torch.version.cuda})")
    versions = []
    for pkg in ("torch", "torchvision", "timm", "onnxruntime", "onnx"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{pkg} (not installed)")
    lines.append(f"Python {platform.python_version()}; " + ", ".join(versions))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    if commit.returncode == 0:
        lines.append(f"archspec commit {commit.stdout.strip()}")
    return lines


def check_scaling(quick: bool) -> tuple[list[str], list[str]]:
    """The `archspec check` scaling table from bench_check_scaling.measure, if that benchmark is here."""
    try:
        from bench_check_scaling import measure  # type: ignore[import-not-found]
    except ImportError:
        return [], ["skipped: benchmarks/bench_check_scaling.py is not in this tree"]
    sizes = (100, 1000) if quick else (100, 1000, 5000)
    rows = measure(sizes=sizes)
    cpu = all("cpu_us_per_node" in r for r in rows)  # CPU time: less disturbed by other load than wall time
    headers = ["blocks", "nodes", "median s", "min–max s", "µs per node"] + (["CPU µs per node"] if cpu else [])
    lines = [table(headers, [[f"{r['blocks']:,}", f"{r['nodes']:,}", f"{r['median_s']:.3f}",
                              f"{r['min_s']:.3f}–{r['max_s']:.3f}", f"{r['us_per_node']:.1f}"]
                             + ([f"{r['cpu_us_per_node']:.1f}"] if cpu else []) for r in rows])]
    big = next((r for r in rows if r["blocks"] == CHECK_TARGET_BLOCKS), None)
    if big is not None:
        ok = big["median_s"] < CHECK_TARGET_S
        verdict = "met" if ok else f"missed by {big['median_s'] / CHECK_TARGET_S - 1:.0%}"
        lines.append(f"\nTarget: {CHECK_TARGET_BLOCKS:,} blocks in under {CHECK_TARGET_S:g} s, linear: {verdict} "
                     f"({big['median_s']:.2f} s).")
    return lines, []


def report(args: argparse.Namespace, dev: torch.device, sections: list[str], targets: list[list[str]],
           notes: list[str], scaling: list[str], started: float) -> str:
    how = f"{dev} {args.dtype}" + (", TF32 off" if dev.type == "cuda" else "") + (
        ", CUDA graphs" if args.cuda_graphs else "")
    out = ["# Benchmark results", ""]
    if args.quick:
        out += ["> **Smoke run (`--quick`)**: 3 rounds on whatever machine ran it. These numbers only show "
                "that the suite works; do not quote them.", ""]
    out += [f"Written by `python benchmarks/run.py {shlex.join(sys.argv[1:])}` on "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, in "
            f"{time.perf_counter() - started:.0f} s.", ""]
    out += [f"- {line}" for line in machine()]
    out += [f"- {how}; {args.repeat} rounds after {args.warmup} warm-up round(s), the ways run in rotating order "
            "each round; ratios are medians of per-round ratios (× = times as fast)", ""]
    if targets:
        out += [f"## Targets (CPU fp32, batch {TARGET_BATCH})", "",
                table(["spec", "target", "measured", "status"], targets), ""]
        if dev.type != "cpu" or args.dtype != "fp32":
            out += [f"(measured here on {how}: the targets are set for CPU fp32)", ""]
    out += sections
    out += ["## `archspec check` scaling", "", *scaling, ""]
    if notes:
        out += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dev = check_device(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    notes: list[str] = []
    sections: list[str] = []
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.spec_names:
            label, _, size = REFERENCES[spec]
            ref, ours = base_models(spec, dev)
            sections += [f"## {spec} (reference: {label})", ""]
            for batch in args.batch_sizes:
                models = batch_models(ref, ours, batch, args, notes)
                x = torch.randn(batch, 3, size, size, device=dev)
                runners = ways(spec, args, dev, x, models, Path(tmp), notes)
                if args.lowp:
                    runners.update(lowp.lowp_ways(spec, ref, ours, x, Path(tmp), notes))
                times = alternate(runners, args.repeat, args.warmup)
                results[(spec, batch)] = times
                rows = speed_rows(times, batch)
                sections += [f"Batch {batch}, {size}×{size}:", "",
                             table(["way", "median ms", "min–max ms", "images/s", f"× {REF}", f"× {ORT}"], rows), ""]
                print(f"{spec} batch {batch}:\n" + table(["way", "median ms", "min–max ms", "images/s", "× ref",
                                                          "× ORT"], rows) + "\n", flush=True)
    targets = target_rows(results, args) + (lowp.target_rows(results, TARGET_BATCH, speedup) if args.lowp else [])
    if targets:
        print(table(["spec", "target", "measured", "status"], targets) + "\n", flush=True)
    scaling, skipped = ([], ["skipped (--no-check-scaling)"]) if args.no_check_scaling else check_scaling(args.quick)
    for line in skipped:
        print(f"archspec check scaling: {line}", flush=True)
    text = report(args, dev, sections, targets, notes, scaling or skipped, started)
    with atomic_output(args.out) as tmp_out:
        Path(tmp_out).write_text(text)
    print(f"wrote {args.out}")
    return 1 if any("left out**" in n for n in notes) else 0  # some way disagreed with the reference


if __name__ == "__main__":
    sys.exit(main())
