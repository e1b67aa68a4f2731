"""The fp32 baseline: the same architecture and initial weights in PyTorch, SGD as the paper.

Section 4.3 of the paper: SGD with momentum 0.9, weight decay 5e-4, learning rate 0.01.
It reads the same int8 images (as values * 2**exp) in the same order as the NITI run.
"""

from __future__ import annotations

import numpy as np

from ..extras import import_extra
from ..golden import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from .build import BuiltNetwork
from .config import TrainConfig
from .prepared import PreparedData

LEARNING_RATE, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


def _torch():
    return import_extra("torch", "the fp32 baseline (--baseline fp32)")


def twin_module(built: BuiltNetwork):
    """torch.nn.Sequential mirroring the golden layers, NCHW inside, NHWC order at Flatten."""
    torch = _torch()
    nn = torch.nn

    class FlattenNHWC(nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)

    modules, floats = [], iter(built.initial_weights)
    for layer in built.net.layers:
        if isinstance(layer, Conv2d):
            conv = nn.Conv2d(layer.cin, layer.cout, (layer.kh, layer.kw), layer.stride,
                             layer.padding, bias=False)
            conv.weight.data = torch.from_numpy(next(floats).transpose(3, 2, 0, 1).copy()).float()
            modules.append(conv)
        elif isinstance(layer, Linear):
            linear = nn.Linear(layer.in_features, layer.out_features, bias=False)
            linear.weight.data = torch.from_numpy(next(floats).T.copy()).float()
            modules.append(linear)
        elif isinstance(layer, ReLU):
            modules.append(nn.ReLU())
        elif isinstance(layer, MaxPool2d):
            modules.append(nn.MaxPool2d(layer.kernel, layer.stride))
        elif isinstance(layer, Flatten):
            modules.append(FlattenNHWC())
        else:
            raise TypeError(f"no fp32 twin for {type(layer).__name__}")
    return nn.Sequential(*modules)


class FloatRun:
    label = "fp32"

    def __init__(self, built: BuiltNetwork, data: PreparedData, config: TrainConfig):
        torch = self.torch = _torch()
        torch.manual_seed(config.seed)
        self.model = twin_module(built)
        self.data, self.config = data, config
        self.optimiser = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE,
                                         momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
        self.loss = torch.nn.CrossEntropyLoss(reduction="sum")

    def _inputs(self, images: np.ndarray):
        x = self.torch.from_numpy(images.astype(np.float32) * np.float32(2.0**self.data.exp))
        return x.permute(0, 3, 1, 2)

    def train_batch(self, index: np.ndarray, epoch: int) -> tuple[float, int]:
        labels = self.torch.from_numpy(self.data.train_labels[index])
        self.model.train()
        self.optimiser.zero_grad()
        out = self.model(self._inputs(self.data.train_images[index]))
        loss = self.loss(out, labels)
        (loss / len(index)).backward()
        self.optimiser.step()
        return float(loss.detach()), int((out.argmax(1) == labels).sum())

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        self.model.eval()
        loss = correct = 0.0
        with self.torch.no_grad():
            for start in range(0, len(images), self.config.eval_batch_size):
                part = slice(start, start + self.config.eval_batch_size)
                target = self.torch.from_numpy(labels[part])
                out = self.model(self._inputs(images[part]))
                loss += float(self.loss(out, target))
                correct += int((out.argmax(1) == target).sum())
        return loss / len(images), correct / len(images)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"fp32/param/{name}": p.detach().numpy().copy()
                  for name, p in self.model.state_dict().items()}
        for i, p in enumerate(self.model.parameters()):
            buffer = self.optimiser.state.get(p, {}).get("momentum_buffer")
            if buffer is not None:
                arrays[f"fp32/momentum/{i}"] = buffer.numpy().copy()
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        torch = self.torch
        state = {name[len("fp32/param/"):]: torch.from_numpy(value)
                 for name, value in arrays.items() if name.startswith("fp32/param/")}
        self.model.load_state_dict(state)
        for i, p in enumerate(self.model.parameters()):
            key = f"fp32/momentum/{i}"
            if key in arrays:
                self.optimiser.state[p]["momentum_buffer"] = torch.from_numpy(arrays[key].copy())
