"""NITI training steps of a 64-32-10 MLP run on the RTL (the TrainingCore), bit-identical to the
golden `Sequential.train_step` on the same data and seed.

On the RTL: every GEMM (forward, error, weight gradient), every rounding of their results (k by the
tensor's rule, over the whole tensor) and every weight update with its int8 read-out. On the host:
transposes, ReLU and the integer loss gradient, all called from the golden model, and the exponent
bookkeeping (each exponent grows by the k the RTL reports). The loss gradient's own rounding runs
on the host in `pseudo` mode, so it draws no LFSR bits: the RTL's LFSR lanes are then the only
stochastic source, consumed in the golden order (forward, error, gradients in layer order).

Data: the first batches of MNIST down-sampled to 8 x 8 (2-pixel border cropped, 3 x 3 integer
means), or random pixels where MNIST is not installed. Every phase's cycles equal the timing
model's prediction for the same schedule (no gaps, no backpressure).
"""

from __future__ import annotations

import copy

import cocotb
import numpy as np
from harness import BENCH_TIMEOUT, bench_int, bench_params, record, start
from tensor_host import TensorHost, UpdateHost

from niti_hw.golden import QTensor, RoundingPolicy
from niti_hw.golden.init import IntegerWeights, pixel_mean, quantise_pixels
from niti_hw.golden.layers import Linear, ReLU
from niti_hw.golden.loss import ce_gradient
from niti_hw.golden.network import Sequential
from niti_hw.perf.timing import tensor_cycles, update_cycles
from niti_hw.rtl.datapath import INT8_BITS, RULE_GRADIENT, RULE_NARROW

LAYERS = (64, 32, 10)
BATCH = 16
M_U = 5
PHASES = ("forward", "error", "gradient", "update")


def digits(batches: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """uint8 8x8 images and labels: MNIST down-sampled, or random pixels without MNIST."""
    count = batches * BATCH
    try:
        from niti_hw.data.mnist import load_mnist
        data = load_mnist()
        images = data.train_images[:count, 2:26, 2:26, 0].astype(np.int64)
        small = images.reshape(count, 8, 3, 8, 3).sum(axis=(2, 4)) // 9
        return small.reshape(count, 64).astype(np.uint8), data.train_labels[:count]
    except FileNotFoundError:
        return (rng.integers(0, 256, (count, 64)).astype(np.uint8),
                rng.integers(0, 10, count))


def build_net(weight_bits: int, seed: int) -> Sequential:
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(LAYERS, LAYERS[1:]):
        layers += [Linear(IntegerWeights.xavier((fan_in, fan_out), fan_in, fan_out, rng,
                                                weight_bits)), ReLU()]
    return Sequential(layers[:-1])


class RtlTrainer:
    """Runs the training step on the DUT; keeps W on the host side of the update unit's stream."""

    def __init__(self, dut, p, net: Sequential, weight_bits: int, policy: RoundingPolicy):
        rng = np.random.default_rng(0)
        self.p, self.policy = p, policy
        self.tensors = TensorHost(dut, p, rng, unit="training_core")
        self.updates = UpdateHost(dut, p, weight_bits, rng, prefix="u_", unit="training_core update")
        self.layers = net.weighted_layers
        self.relus = [ReLU() for _ in self.layers[:-1]]
        self.w = [layer.weights.values.astype(np.int64) for layer in self.layers]
        self.w_exp = [layer.weights.exp + weight_bits - 8 for layer in self.layers]
        self.q = [None] * len(self.layers)
        self.measured = dict.fromkeys(PHASES, 0)
        self.predicted = dict.fromkeys(PHASES, 0)

    async def gemm(self, phase, a, b, rule=RULE_NARROW, m_u=INT8_BITS):
        got = await self.tensors.gemm(a, b, rule, m_u)
        self.measured[phase] += got.last_out_at - got.cfg_at + 1
        self.predicted[phase] += tensor_cycles(a.shape[0], b.shape[1], a.shape[1], self.p)
        return got

    async def update(self, n, g):
        new_w, q, first, last = await self.updates.update(self.w[n], g)
        self.w[n], self.q[n] = new_w, q
        self.measured["update"] += last - first + 1
        self.predicted["update"] += update_cycles(new_w.size, self.p)

    async def read_out(self):
        """Initial int8 weights: the update unit with g = 0 (not counted as a phase)."""
        for n, w in enumerate(self.w):
            _, self.q[n], _, _ = await self.updates.update(w, np.zeros_like(w))

    async def step(self, x: QTensor, labels) -> np.ndarray:
        inputs, acts = [], x
        for n, layer in enumerate(self.layers):  # forward
            inputs.append(acts)
            got = await self.gemm("forward", acts.values, self.q[n])
            acts = QTensor(got.values.astype(np.int8), acts.exp + self.w_exp[n] + got.k)
            if n < len(self.relus):
                acts = self.relus[n].forward(acts, self.policy)
        logits = acts
        values, exp = ce_gradient(logits.values, logits.exp, labels, self.policy.loss,
                                  self.policy.lanes)
        errors = [None] * len(self.layers)
        e = QTensor(values, exp)
        for n in range(len(self.layers) - 1, -1, -1):  # backward
            errors[n] = e
            if n == 0:
                break
            got = await self.gemm("error", e.values, self.q[n].T)
            e = self.relus[n - 1].backward(
                QTensor(got.values.astype(np.int8), e.exp + self.w_exp[n] + got.k), self.policy)
        for n in range(len(self.layers)):  # weight gradients and updates, in layer order
            got = await self.gemm("gradient", inputs[n].values.T, errors[n].values, RULE_GRADIENT,
                                  M_U)
            if not got.status.no_update:
                await self.update(n, got.values)
        return logits.values


@cocotb.test(**BENCH_TIMEOUT)
async def training_steps(dut):
    p = bench_params()
    weight_bits = bench_int("NITI_HW_WEIGHT_BITS", 16)
    batches = bench_int("NITI_HW_BATCHES", 3)
    seed = bench_int("NITI_HW_SEED", 1)
    mode = p.round_mode
    policy_args = dict(activation=mode, error=mode, gradient=mode, loss="pseudo",
                       seed=p.lfsr_seed, n_lanes=p.lfsr_lanes)
    dut.cfg__valid.value = 0
    dut.u_i__valid.value = 0
    dut.u_o__ready.value = 0
    await start(dut)
    pixels, labels = digits(batches, np.random.default_rng(seed))
    golden_net = build_net(weight_bits, seed)
    rtl = RtlTrainer(dut, p, copy.deepcopy(golden_net), weight_bits, RoundingPolicy(**policy_args))
    golden_policy = RoundingPolicy(**policy_args)
    await rtl.read_out()
    mean = pixel_mean(pixels)
    for batch in range(batches):
        part = slice(batch * BATCH, (batch + 1) * BATCH)
        x = quantise_pixels(pixels[part], mean)
        got = await rtl.step(x, labels[part])
        expected = golden_net.train_step(x, labels[part], M_U, golden_policy)
        assert got.tolist() == expected.values.tolist(), f"logits of batch {batch} differ"
        for n, layer in enumerate(golden_net.weighted_layers):
            assert rtl.w[n].tolist() == layer.weights.values.tolist(), \
                f"training_core: weights of layer {n} differ from golden after batch {batch}"
    assert rtl.measured == rtl.predicted, \
        f"training_core cycles per phase {rtl.measured}, timing model {rtl.predicted}"
    dut._log.info("%d steps bit-identical to golden; cycles per phase %s", batches, rtl.measured)
    record({"batches": batches, "mode": mode, "weight_bits": weight_bits, "cycles": rtl.measured,
            "weights": int(sum(w.size for w in rtl.w))})
