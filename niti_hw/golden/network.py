"""A sequential NITI network and its training step: forward, integer loss, backward, update."""

from __future__ import annotations

from .loss import ce_gradient
from .numbers import namespace
from .tensor import QTensor, RoundingPolicy


class Sequential:
    """Layers applied in order; the first layer does not propagate an error (SPEC)."""

    def __init__(self, layers):
        self.layers = list(layers)

    @property
    def weighted_layers(self):
        return [layer for layer in self.layers if hasattr(layer, "weights")]

    def forward(self, x: QTensor, policy: RoundingPolicy) -> QTensor:
        for index, layer in enumerate(self.layers):
            try:
                x = layer.forward(x, policy)
            except ValueError as error:
                raise ValueError(f"layer {index} ({type(layer).__name__}): {error}") from None
        return x

    def backward(self, e: QTensor, policy: RoundingPolicy) -> None:
        for index in range(len(self.layers) - 1, -1, -1):
            e = self.layers[index].backward(e, policy, propagate=index > 0)

    def update(self, m_u: int, policy: RoundingPolicy) -> None:
        for layer in self.weighted_layers:
            layer.update(m_u, policy)

    def train_step(self, x: QTensor, labels, m_u: int, policy: RoundingPolicy) -> QTensor:
        """One NITI step on a batch; returns the last layer's int8 output (before the update)."""
        logits = self.forward(x, policy)
        values, exp = ce_gradient(logits.values, logits.exp, labels, policy.loss, policy.lanes)
        self.backward(QTensor(values, exp), policy)
        self.update(m_u, policy)
        return logits

    def predict(self, x: QTensor, policy: RoundingPolicy):
        """Class indices of the largest integer outputs."""
        values = self.forward(x, policy).values
        return namespace(values).argmax(values, axis=1)
