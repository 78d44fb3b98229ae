"""The training loss of a spec's outputs, weighted by the spec's `loss_weight`s.

In training mode a network with training-only heads returns a dict of outputs,
e.g. GoogLeNet's `{"main": N×1000, "aux1": N×1000, "aux2": N×1000}`, and its
spec gives each head a `loss_weight` (0.3 for GoogLeNet's auxiliary classifiers).

    outputs = model(images)                       # dict in training mode, tensor in eval mode
    loss = archspec.weighted_loss(model, outputs, labels)
    loss.backward()

The model may be the `ArchModule` itself or a wrapper of it
(`DistributedDataParallel`, `torch.compile`): the weights are found on the module inside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

Criterion = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Outputs = torch.Tensor | Mapping[str, torch.Tensor]

_WRAPPED = ("_orig_mod", "module")  # where torch.compile's OptimizedModule and DDP (or DataParallel) keep the module


def loss_weights(model: nn.Module) -> dict[str, float]:
    """The output weights of an `ArchModule`, looking inside `DistributedDataParallel` and `torch.compile` wrappers.

    `{"main": 1.0, "<head>": loss_weight, ...}`, one entry per output the spec can produce.
    """
    seen = model
    for _ in range(16):  # wrappers nest (torch.compile of a DDP module); no real stack is this deep
        weights = seen.__dict__.get("loss_weights")
        if weights is not None:
            return dict(weights)
        inner = next((seen._modules[k] for k in _WRAPPED if seen._modules.get(k) is not None), None)
        if inner is None:
            break
        seen = inner
    raise TypeError(f"{type(model).__name__} has no loss_weights: pass an archspec module (built by archspec.build, "
                    "possibly wrapped in DistributedDataParallel or torch.compile) or the weights as a dict")


def loss_terms(outputs: Outputs, target: torch.Tensor,
               criterion: Criterion = F.cross_entropy) -> dict[str, torch.Tensor]:
    """The unweighted loss of each output: `{"main": criterion(main, target), "aux1": ...}`.

    `outputs` is what the module returned: one tensor (taken as "main") or a dict of them.
    """
    named = {"main": outputs} if isinstance(outputs, torch.Tensor) else dict(outputs)
    return {name: criterion(value, target) for name, value in named.items()}


def weighted_loss(model: nn.Module | Mapping[str, float], outputs: Outputs, target: torch.Tensor,
                  criterion: Criterion = F.cross_entropy) -> torch.Tensor:
    """The total loss `sum(weight[k] * criterion(outputs[k], target))` over the outputs the module returned.

    model: the archspec module (or a DDP / torch.compile wrapper of it) whose spec gives the
        weights, or the weights themselves as `{"main": 1.0, "aux1": 0.3, ...}`.
    outputs: the module's return value, a tensor `N×classes` (eval mode, or a spec without
        training-only heads) or a dict of such tensors (training mode).
    target: what `criterion` compares every output with, e.g. class indices of shape `N`.
    criterion: `(output, target) -> scalar tensor`; cross-entropy by default.

    Returns a scalar tensor. An output the weights do not know is an error (a KeyError that names it).
    """
    weights = dict(model) if isinstance(model, Mapping) else loss_weights(model)
    terms = loss_terms(outputs, target, criterion)
    unknown = [name for name in terms if name not in weights]
    if unknown:
        raise KeyError(f"no loss weight for output(s) {', '.join(unknown)}; the weights cover {', '.join(weights)}")
    if not terms:
        raise ValueError("no outputs to take the loss of")
    parts = [weights[name] * term for name, term in terms.items()]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
