"""NITI training on PyTorch integer tensors, on the CPU or a CUDA GPU: `--backend torch`.

No arithmetic is defined here. The golden network itself runs, with its weights, the images and
every intermediate held as torch integer tensors on the device: the golden functions take numpy
arrays or tensors alike, and its GEMMs run there on `torch._int_mm` (on a CPU whose `_int_mm` is
torch's slow fallback loop, on the exact float32 carrier or oneDNN's u8 x s8 kernel of
`golden.gemm`). So the step is bit-exact with `--backend golden` by construction (and by test), and
only the batch's int8 logits come back to the host, for the float loss display.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np

from ..extras import import_extra
from ..golden import QTensor, RoundingPolicy
from .build import BuiltNetwork
from .config import DEVICES, TrainConfig
from .integer_run import IntegerRun, _score
from .prepared import PreparedData

torch = import_extra("torch", "the torch backend")


def torch_device(name: str):
    """The torch.device for `cpu` or `cuda`, with a one-line error when CUDA is not there."""
    if name not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}; got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ValueError(f"--device cuda: no CUDA GPU is visible to PyTorch {torch.__version__} "
                           f"({build}); use --device cpu")
    return torch.device(name)


class GemmThreadsPolicy(RoundingPolicy):
    """The golden policy with only the GEMMs on torch's CPU thread pool (`gemm_threads`); the
    step runs everything else on one thread (`TorchBackend._glue_on_one_thread`).

    The integer work around the GEMMs is hundreds of small memory-bound ops: a second core buys
    them little, and each parallel op ends at a barrier that waits for a thread the scheduler
    has parked when the machine is busy (LeNet-5, 2 threads, other jobs at load 7-8: 0.72-1.37x
    fp32 with every op on the pool, 1.37-1.64x like this, three runs each).
    """

    gemm_threads: int = 1

    def matmul(self, a, b):
        torch.set_num_threads(self.gemm_threads)
        try:
            return super().matmul(a, b)
        finally:
            torch.set_num_threads(1)


class TorchBackend(IntegerRun):
    """The golden network on torch tensors; checkpoints are the same arrays as IntegerRun's."""

    label = "niti-int8"

    def __init__(self, built: BuiltNetwork, data: PreparedData, config: TrainConfig):
        self.device = torch_device(config.device)
        super().__init__(built, data, config)
        self.net = copy.deepcopy(built.net)  # the golden run may share `built`
        for layer in self.net.weighted_layers:
            layer.weights.values = self._upload(layer.weights.values)
        self.train_images = self._upload(data.train_images)
        self.train_labels = self._upload(data.train_labels.astype(np.int64))

    def _policy(self, seed: int) -> RoundingPolicy:
        policy = super()._policy(seed)
        if self.device.type != "cpu":
            return policy
        return GemmThreadsPolicy(policy.activation, policy.error, policy.gradient, policy.loss,
                                 policy.seed, policy.n_lanes, policy.engine)

    @contextlib.contextmanager
    def _glue_on_one_thread(self, policy: RoundingPolicy):
        """torch's thread count for the GEMMs only (see GemmThreadsPolicy), restored after."""
        if not isinstance(policy, GemmThreadsPolicy):
            yield
            return
        threads = torch.get_num_threads()
        policy.gemm_threads = threads
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _upload(self, array: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def train_batch(self, index: np.ndarray, epoch: int) -> tuple[float, int]:
        rows = self._upload(np.asarray(index, dtype=np.int64))
        x = QTensor(self.train_images.index_select(0, rows), self.data.exp)
        labels = self.train_labels.index_select(0, rows)
        with self._glue_on_one_thread(self.policy):
            logits = self.net.train_step(x, labels, self.config.mu_at(epoch), self.policy)
        return _score(_to_host(logits), self.data.train_labels[index])

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """As IntegerRun.evaluate: own LFSR lanes, batch by batch on the device."""
        policy = self._policy(self.config.seed ^ 0x5EED)
        loss = correct = 0
        for start in range(0, len(images), self.config.eval_batch_size):
            part = slice(start, start + self.config.eval_batch_size)
            with self._glue_on_one_thread(policy):
                logits = self.net.forward(QTensor(self._upload(images[part]), self.data.exp),
                                          policy)
            batch_loss, batch_correct = _score(_to_host(logits), labels[part])
            loss, correct = loss + batch_loss, correct + batch_correct
        return loss / len(images), correct / len(images)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {name: value.cpu().numpy() if isinstance(value, torch.Tensor) else value
                for name, value in super().state_arrays().items()}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_state_arrays(arrays)
        for layer in self.net.weighted_layers:
            layer.weights.values = self._upload(layer.weights.values)


def _to_host(q: QTensor) -> QTensor:
    return QTensor(q.values.cpu().numpy(), q.exp)
