"""Tell a DatapathPolicy which layer and phase each golden GEMM belongs to.

The golden `Sequential` passes one policy to every layer. Wrapping each weighted layer lets the
policy know the (layer, phase) of the GEMMs that follow, without touching the golden layers or
their order of operations: the wrapped network trains with the golden `Sequential.train_step`.
"""

from __future__ import annotations

from niti_hw.golden import Sequential

from .policy import DatapathPolicy


class SiteLayer:
    """A golden weighted layer (Linear, Conv2d) that announces its phases to the policy."""

    def __init__(self, layer, index: int):
        self.layer, self.index = layer, index

    @property
    def weights(self):
        return self.layer.weights

    def output_shape(self, shape):
        return self.layer.output_shape(shape)

    def forward(self, x, policy: DatapathPolicy):
        policy.enter(self.index, ("forward",))
        return self.layer.forward(x, policy)

    def backward(self, e, policy: DatapathPolicy, propagate: bool = True):
        policy.enter(self.index, ("error", "gradient") if propagate else ("gradient",))
        return self.layer.backward(e, policy, propagate)

    def update(self, m_u: int, policy: DatapathPolicy):
        policy.enter(self.index, ("update",))
        gradient = self.layer.update(m_u, policy)
        policy.finish_update(gradient is not None)
        return gradient


def with_sites(net: Sequential) -> Sequential:
    """The same layers (shared, not copied), weighted ones wrapped; index = 0, 1, ... among the
    weighted layers."""
    weighted = iter(range(len(net.layers)))
    return Sequential([SiteLayer(layer, next(weighted)) if hasattr(layer, "weights") else layer
                       for layer in net.layers])
