"""The NITI side of a training run: the golden network trained batch by batch."""

from __future__ import annotations

import numpy as np

from ..golden import QTensor, RoundingPolicy
from .build import BuiltNetwork
from .config import TrainConfig
from .prepared import PreparedData
from .report import cross_entropy


class IntegerRun:
    """The `golden` backend (see backend.Backend): the golden model is the training engine."""

    label = "niti-int8"

    def __init__(self, built: BuiltNetwork, data: PreparedData, config: TrainConfig):
        self.net, self.data, self.config = built.net, data, config
        self.policy = self._policy(config.seed)

    def _policy(self, seed: int) -> RoundingPolicy:
        c = self.config
        return RoundingPolicy(c.activation_mode, c.error_mode, c.gradient_mode, c.loss_mode, seed,
                              engine=c.gemm_engine)

    def train_batch(self, index: np.ndarray, epoch: int) -> tuple[float, int]:
        """One NITI step; returns (sum of reported losses, correct predictions) of the batch."""
        x = QTensor(self.data.train_images[index], self.data.exp)
        labels = self.data.train_labels[index]
        return _score(self.step(x, labels, self.config.mu_at(epoch)), labels)

    def step(self, x: QTensor, labels: np.ndarray, m_u: int) -> QTensor:
        """One training step of the network on this backend's engine; returns the logits."""
        return self.net.train_step(x, labels, m_u, self.policy)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """Mean loss and accuracy; its own LFSR lanes, so evaluation never perturbs training."""
        policy = self._policy(self.config.seed ^ 0x5EED)
        loss = correct = 0
        for start in range(0, len(images), self.config.eval_batch_size):
            part = slice(start, start + self.config.eval_batch_size)
            logits = self.net.forward(QTensor(images[part], self.data.exp), policy)
            batch_loss, batch_correct = _score(logits, labels[part])
            loss, correct = loss + batch_loss, correct + batch_correct
        return loss / len(images), correct / len(images)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"int8/w{i}": layer.weights.values
                  for i, layer in enumerate(self.net.weighted_layers)}
        arrays["int8/exps"] = np.array([layer.weights.exp for layer in self.net.weighted_layers])
        arrays["int8/lfsr"] = self.policy.lanes.states
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Check everything first, then load: a refused checkpoint changes nothing."""
        layers = self.net.weighted_layers
        for i, layer in enumerate(layers):
            shape = arrays[f"int8/w{i}"].shape
            if shape != layer.weights.values.shape:
                raise ValueError(f"weights of layer {i} have shape {shape}; this model "
                                 f"needs {layer.weights.values.shape}")
        exps = [layer.weights.exp for layer in layers]
        if arrays["int8/exps"].tolist() != exps:
            raise ValueError(f"weight exponents {arrays['int8/exps'].tolist()} differ from this "
                             f"model's {exps}: the checkpoint belongs to another initialisation")
        for i, layer in enumerate(layers):
            layer.weights.values = arrays[f"int8/w{i}"].astype(np.int32)
        self.policy.lanes.states = arrays["int8/lfsr"]


def _score(logits: QTensor, labels: np.ndarray) -> tuple[float, int]:
    correct = int((np.argmax(logits.values, axis=1) == labels).sum())
    return cross_entropy(logits.values, logits.exp, labels) * len(labels), correct
