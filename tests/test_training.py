"""The weighted training loss: main + each head's loss_weight × its loss, through wrappers, and in real training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import archspec
from archspec.training import loss_terms, loss_weights, weighted_loss

MINI = Path(__file__).resolve().parent.parent / "specs" / "inception_mini.yaml"


@pytest.fixture(scope="module")
def mini() -> archspec.ArchModule:
    torch.manual_seed(0)
    return archspec.build(MINI)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """32 real handwritten digits, resized to 32×32 and repeated to 3 channels, with their labels."""
    sklearn = pytest.importorskip("sklearn.datasets")
    data = sklearn.load_digits()
    images = torch.tensor(data.images[:32], dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate((images - 0.3) / 0.4, size=(32, 32), mode="bilinear").expand(-1, 3, -1, -1).contiguous()
    return x, torch.tensor(data.target[:32])


def test_the_loss_is_main_plus_each_aux_head_times_its_weight_from_the_spec(mini, digits):
    x, y = digits
    torch.manual_seed(1)
    outputs = mini.train()(x[:8])
    assert list(outputs) == ["main", "aux1", "aux2"]
    by_hand = (F.cross_entropy(outputs["main"], y[:8]) + 0.3 * F.cross_entropy(outputs["aux1"], y[:8])
               + 0.3 * F.cross_entropy(outputs["aux2"], y[:8]))
    assert torch.allclose(weighted_loss(mini, outputs, y[:8]), by_hand)
    assert loss_weights(mini) == {"main": 1.0, "aux1": 0.3, "aux2": 0.3}
    assert set(loss_terms(outputs, y[:8])) == {"main", "aux1", "aux2"}


def test_eval_mode_gives_one_tensor_whose_loss_is_the_main_loss(mini, digits):
    x, y = digits
    logits = mini.eval()(x[:8])
    assert isinstance(logits, torch.Tensor) and logits.shape == (8, 10)
    assert torch.equal(weighted_loss(mini, logits, y[:8]), F.cross_entropy(logits, y[:8]))


def test_another_criterion_and_explicit_weights(mini, digits):
    x, y = digits
    outputs = mini.train()(x[:4])
    onehot = F.one_hot(y[:4], 10).float()
    mse = weighted_loss({"main": 1.0, "aux1": 0.5, "aux2": 0.0}, outputs, onehot, F.mse_loss)
    assert torch.allclose(mse, F.mse_loss(outputs["main"], onehot) + 0.5 * F.mse_loss(outputs["aux1"], onehot))


def test_weights_are_found_inside_torch_compile_and_ddp_wrappers(mini, digits):
    assert loss_weights(torch.compile(mini)) == mini.loss_weights  # compiled lazily: nothing runs here
    x, y = digits
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        ddp = nn.parallel.DistributedDataParallel(mini.train())
        assert loss_weights(torch.compile(ddp)) == mini.loss_weights
        torch.manual_seed(2)
        wrapped = weighted_loss(ddp, ddp(x[:4]), y[:4])
        torch.manual_seed(2)
        assert torch.allclose(wrapped, weighted_loss(mini, mini(x[:4]), y[:4]))
    finally:
        dist.destroy_process_group()


def test_mistakes_are_named():
    with pytest.raises(TypeError, match="Linear has no loss_weights"):
        loss_weights(nn.Linear(2, 2))
    outputs = {"main": torch.zeros(2, 3), "extra": torch.zeros(2, 3)}
    with pytest.raises(KeyError, match="no loss weight for output\\(s\\) extra"):
        weighted_loss({"main": 1.0}, outputs, torch.zeros(2, dtype=torch.long))


def test_a_few_steps_lower_the_loss_every_aux_head_gets_gradients_and_eval_gives_main_only(digits):
    x, y = digits
    torch.manual_seed(0)
    model = archspec.build(MINI).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(6):
        loss = weighted_loss(model, model(x), y)
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            for head in ("aux1", "aux2"):
                params = dict(model.get_submodule(head).named_parameters())
                assert params and all(p.grad is not None and p.grad.abs().sum() > 0 for p in params.values()), head
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (32, 10)
    assert "aux1" not in model.code and "aux1" in model.train_code
