"""Train a spec on scikit-learn's handwritten digits, on one process or many.

    python examples/train.py specs/inception_mini.yaml
    python examples/train.py specs/inception_mini.yaml --epochs 20 --lr 0.1 --out runs/mini2 --resume
    torchrun --nproc_per_node=2 examples/train.py specs/inception_mini.yaml      # DistributedDataParallel

The data: `sklearn.datasets.load_digits` (1,797 grey 8×8 images of the digits 0-9; it ships
inside scikit-learn, nothing is downloaded), split 80/20 into train and validation,
stratified by class with a fixed seed. Each batch is resized (bilinear) to the spec's input
H×W and the grey channel repeated to its C channels, so any spec with a C×H×W input trains;
`num_classes` is set to 10.

The optimiser is GoogLeNet's, SGD with momentum 0.9 (the paper decays the rate by 4 % every
8 epochs over a long run; for a short run this uses a linear warm-up over the first epoch,
then a cosine decay to zero, stepped every batch). The loss is `archspec.weighted_loss`:
the main output plus each training-only head times its `loss_weight` (0.3 for GoogLeNet's
auxiliary classifiers), read from the spec, never written here.

Under torchrun every process trains on its shard of each epoch (`DistributedSampler`),
gradients are averaged by DistributedDataParallel (gloo on CPU, nccl on CUDA), `--batch-size`
is the global batch, split across the processes; the validation accuracy is summed over the
processes' shards; only rank 0 prints and writes files.

Writes into --out: `checkpoint.pt` after every epoch (atomically; `--resume` continues from
it) and `metrics.json` (per epoch: epoch, loss, val_accuracy, seconds, lr).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import archspec
from archspec.backends.torch_fx import DeviceError, resolve_device
from archspec.cli import parse_sets
from archspec.files import atomic_output

NUM_CLASSES = 10


@dataclass
class Options:
    spec: str
    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 5e-4
    out: str = "runs/train"
    seed: int = 0
    device: str = "auto"
    sets: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    limit: int | None = None
    progress: bool = True


@dataclass
class Digits:
    """Images N×1×8×8 (normalised with the training set's mean and std) and labels N, as train and validation."""

    train: TensorDataset
    val: TensorDataset


class TrainError(click.ClickException):
    """A problem with the run's arguments or files, reported without a traceback."""


# ---------------------------------------------------------------- data


def load_data(seed: int, limit: int | None = None) -> Digits:
    """The digits split 80/20 into train and validation, stratified; `limit` keeps a stratified subset first."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise TrainError("this example needs scikit-learn: pip install 'archspec[train]'") from None
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.long)
    index = list(range(len(labels)))
    if limit is not None and limit < len(index):
        index, _ = train_test_split(index, train_size=limit, stratify=labels[index], random_state=seed)
    train, val = train_test_split(index, test_size=0.2, stratify=labels[index], random_state=seed)
    mean, std = images[train].mean(), images[train].std()
    images = (images - mean) / std
    return Digits(TensorDataset(images[train], labels[train]), TensorDataset(images[val], labels[val]))


def to_input(images: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """N×1×8×8 grey images -> N×C×H×W, the spec's input: resized, the grey channel repeated C times."""
    c, h, w = shape
    resized = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False)
    return resized.expand(-1, c, -1, -1)


# ---------------------------------------------------------------- model


def load_network(path: str, sets: dict[str, Any]) -> archspec.TypedGraph:
    """Compile the spec with `num_classes` = 10 (when it declares that variable) and the user's overrides."""
    if not Path(path).is_file():
        raise TrainError(f"no spec file at {path}")
    spec = archspec.load(path)
    overrides = ({"num_classes": NUM_CLASSES} if "num_classes" in spec.vars else {}) | sets
    typed = archspec.compile(spec, **overrides)
    main = typed.output_shapes()["main"]
    if tuple(main) != (NUM_CLASSES,):
        raise TrainError(f"{path}: the network's main output is {list(main)}, the digits need [{NUM_CLASSES}] "
                         "(declare a variable num_classes, or --set the one that sets the classifier's width)")
    if len(typed.input_shape) != 3:
        raise TrainError(f"{path}: the input is {list(typed.input_shape)}; this example trains on images, C×H×W")
    return typed


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------- processes


@dataclass
class World:
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, *values: float) -> list[float]:
        """Sum numbers over the processes (identity on one)."""
        if self.size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()


def start_world(device: str) -> World:
    """One process, or under torchrun (RANK/WORLD_SIZE set) a process group: nccl on CUDA, gloo on CPU."""
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = resolve_device(device)
    assert dev is not None
    if dev.type == "cuda" and distributed and dev.index is None:
        dev = torch.device("cuda", local_rank)
        resolve_device(dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not distributed:
        return World(device=dev)
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), dev)


# ---------------------------------------------------------------- training


class Trainer:
    """The model, optimiser, schedule and metrics of one run, and the files they are saved in."""

    def __init__(self, opts: Options, world: World, typed: archspec.TypedGraph, data: Digits):
        self.opts, self.world, self.typed, self.data = opts, world, typed, data
        self.out = Path(opts.out)
        self.out.mkdir(parents=True, exist_ok=True)  # the run folder is the tool's own: made here, not by the writers
        torch.manual_seed(opts.seed)
        self.net = archspec.build(typed, device=world.device)
        self.model: nn.Module = self.net
        if world.size > 1:
            ids = [world.device.index] if world.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=ids)
        if opts.batch_size < world.size:
            raise TrainError(f"--batch-size {opts.batch_size} is less than one sample for each of "
                             f"{world.size} processes")
        self.sampler = DistributedSampler(data.train, num_replicas=world.size, rank=world.rank, shuffle=True,
                                          seed=opts.seed)
        self.loader = DataLoader(data.train, batch_size=opts.batch_size // world.size, sampler=self.sampler)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=opts.lr, momentum=0.9,
                                         weight_decay=opts.weight_decay)
        steps = len(self.loader)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, warmup=steps, total=steps * opts.epochs))
        self.metrics: list[dict[str, float]] = []
        self.start_epoch = 1

    # -- one epoch

    def train_epoch(self, epoch: int, progress: Any) -> float:
        """Train one epoch; the mean loss over all processes' samples."""
        self.model.train()
        self.sampler.set_epoch(epoch)
        task = progress.add_task(f"epoch {epoch}/{self.opts.epochs}", total=len(self.loader), loss=float("nan"))
        total, count = 0.0, 0
        for images, labels in self.loader:
            x = to_input(images.to(self.world.device), self.typed.input_shape)
            y = labels.to(self.world.device)
            with torch.autocast(self.world.device.type, dtype=torch.bfloat16, enabled=self.world.device.type == "cuda"):
                outputs = self.model(x)
                loss = archspec.weighted_loss(self.model, outputs, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            total += loss.item() * len(labels)
            count += len(labels)
            progress.update(task, advance=1, loss=total / count)
        total, count = self.world.sum(total, count)
        return total / count

    @torch.no_grad()
    def evaluate(self) -> tuple[int, int]:
        """(correct, total) on the validation set; each process takes every size-th sample, the counts are summed."""
        self.net.eval()  # the module itself, not the DDP wrapper: no collectives, shards may differ in size
        images, labels = self.data.val.tensors
        images, labels = images[self.world.rank::self.world.size], labels[self.world.rank::self.world.size]
        correct = 0
        for start in range(0, len(labels), 256):
            x = to_input(images[start:start + 256].to(self.world.device), self.typed.input_shape)
            with torch.autocast(self.world.device.type, dtype=torch.bfloat16, enabled=self.world.device.type == "cuda"):
                logits = self.net(x)
            correct += int((logits.argmax(1).cpu() == labels[start:start + 256]).sum())
        c, n = self.world.sum(correct, len(labels))
        return int(c), int(n)

    # -- files

    def checkpoint_identity(self) -> dict[str, Any]:
        return {"spec": self.typed.net.name, "overrides": dict(self.typed.net.spec.overrides)}

    def save(self, epoch: int) -> None:
        """Write checkpoint.pt and metrics.json (rank 0 only), each in one rename."""
        if not self.world.main:
            return
        state = {"epoch": epoch, "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "metrics": self.metrics, "rng": torch.get_rng_state(),
                 **self.checkpoint_identity()}
        with atomic_output(self.out / "checkpoint.pt") as tmp:
            torch.save(state, tmp)
        report = {**self.checkpoint_identity(), "file": self.opts.spec, "world_size": self.world.size,
                  "device": str(self.world.device), "options": {k: v for k, v in asdict(self.opts).items()},
                  "epochs": self.metrics,
                  "final_val_accuracy": self.metrics[-1]["val_accuracy"] if self.metrics else None}
        with atomic_output(self.out / "metrics.json") as tmp:
            Path(tmp).write_text(json.dumps(report, indent=2) + "\n")

    def resume(self) -> None:
        """Continue from checkpoint.pt in --out: weights, optimiser, schedule, metrics and the epoch count."""
        path = self.out / "checkpoint.pt"
        if not path.is_file():
            raise TrainError(f"--resume: no checkpoint at {path}")
        state = torch.load(path, map_location=self.world.device, weights_only=True)
        mine = self.checkpoint_identity()
        theirs = {k: state.get(k) for k in mine}
        if theirs != mine:
            raise TrainError(f"--resume: {path} was trained from {theirs}, this run is {mine}")
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"].cpu())
        self.metrics = list(state["metrics"])
        self.start_epoch = state["epoch"] + 1


def progress_bar(enabled: bool) -> Any:
    """A rich progress bar of one epoch's batches, shown on a terminal only and cleared when done."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), console=console,
                    disable=not (enabled and console.is_terminal), transient=True)


def run(opts: Options) -> nn.Module:
    """Train as `opts` says; returns the trained module (the ArchModule, not its DDP wrapper)."""
    world = start_world(opts.device)
    try:
        typed = load_network(opts.spec, opts.sets)
        trainer = Trainer(opts, world, typed, load_data(opts.seed, opts.limit))
        if opts.resume:
            trainer.resume()
        say = click.echo if world.main else (lambda *_: None)
        say(f"{typed.net.name}: {len(trainer.data.train)} training and {len(trainer.data.val)} validation images "
            f"at {'×'.join(map(str, typed.input_shape))}, {world.size} process(es) on {world.device}")
        t0 = time.perf_counter()
        for epoch in range(trainer.start_epoch, opts.epochs + 1):
            start = time.perf_counter()
            with progress_bar(opts.progress and world.main) as progress:
                loss = trainer.train_epoch(epoch, progress)
            correct, total = trainer.evaluate()
            seconds = time.perf_counter() - start
            trainer.metrics.append({"epoch": epoch, "loss": loss, "val_accuracy": correct / total,
                                    "seconds": round(seconds, 3), "lr": trainer.scheduler.get_last_lr()[0]})
            trainer.save(epoch)
            say(f"epoch {epoch:>3}/{opts.epochs}  loss {loss:.4f}  val accuracy {correct / total:7.2%} "
                f"({correct}/{total})  {seconds:.1f} s")
        if trainer.metrics:
            say(f"final validation accuracy: {trainer.metrics[-1]['val_accuracy']:.2%} after {len(trainer.metrics)} "
                f"epochs ({time.perf_counter() - t0:.1f} s this run); wrote {trainer.out}/metrics.json")
        return trainer.net
    finally:
        if world.size > 1:
            dist.destroy_process_group()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("spec")
@click.option("--epochs", type=click.IntRange(min=1), default=Options.epochs, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=Options.batch_size, show_default=True,
              help="The global batch, split across torchrun's processes.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=Options.lr, show_default=True,
              help="Peak learning rate (after the one-epoch warm-up; cosine decay to zero).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=Options.weight_decay, show_default=True)
@click.option("--out", default=Options.out, show_default=True, help="Folder for checkpoint.pt and metrics.json.")
@click.option("--seed", type=int, default=Options.seed, show_default=True, help="Seeds the split, init and shuffles.")
@click.option("--device", default=Options.device, show_default=True, help="auto (cuda if present), cpu, cuda, cuda:1.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a spec variable (num_classes is 10).")
@click.option("--resume", is_flag=True, help="Continue from --out's checkpoint.pt.")
@click.option("--limit", type=click.IntRange(min=50), default=None,
              help="Use a stratified subset of N images (for quick trials).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def main(spec: str, sets: tuple[str, ...], **kwargs: Any) -> None:
    """Train SPEC on scikit-learn's handwritten digits and print the validation accuracy."""
    try:
        run(Options(spec=spec, sets=parse_sets(sets), **kwargs))
    except archspec.SpecError as exc:
        click.echo(exc.render(), err=True)
        sys.exit(1)
    except DeviceError as exc:
        click.echo(f"error[device-unavailable]: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
