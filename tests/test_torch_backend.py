"""`--backend torch` trains bit for bit as `--backend golden`, on every model and every device.

Every model for a few steps on small inputs, and LeNet-5 for a whole short MNIST run through the
trainer: same weights, LFSR states, losses and accuracies. On a CUDA machine the `cuda` cases run.
"""

import numpy as np
import pandas as pd
import pytest

from devices import device_params
from niti_hw.data import Dataset, load_dataset
from niti_hw.models import MODELS, get_model
from niti_hw.train import TrainConfig, Trainer
from niti_hw.train.build import build_network
from niti_hw.train.checkpoint import load_checkpoint
from niti_hw.train.integer_run import IntegerRun
from niti_hw.train.prepared import prepare

torch = pytest.importorskip("torch")
from niti_hw.train.torch_backend import TorchBackend  # noqa: E402  (needs torch)

DEVICES = device_params()
SMALL_INPUT = {"lenet5": (16, 16, 1), "vgg-small-7": (8, 8, 3), "vgg-small-8": (8, 8, 3),
               "vgg-small-9": (8, 8, 3), "vgg11": (32, 32, 3), "vgg13": (32, 32, 3),
               "vgg16": (32, 32, 3), "alexnet": (63, 63, 3), "small-cnn": (10, 10, 1)}
"""The smallest inputs each architecture fits (every pool and convolution keeps >= 1 pixel)."""


def random_data(shape, count, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, *shape), dtype=np.uint8)
    labels = rng.integers(0, 10, count).astype(np.int64)
    return prepare(Dataset(images, labels, images[: count // 2], labels[: count // 2], "random",
                           10))


def test_every_model_has_a_small_input():
    assert set(SMALL_INPUT) == set(MODELS)


MODEL_MODES = [("lenet5", "nearest"), ("lenet5", "pseudo"), ("vgg-small-7", "nearest"),
               ("vgg-small-7", "pseudo"), ("vgg-small-8", "pseudo"), ("vgg-small-9", "nearest"),
               ("vgg11", "pseudo"), ("vgg13", "nearest"), ("vgg16", "pseudo"),
               ("alexnet", "nearest"), ("small-cnn", "stochastic")]
"""Both modes on the small models, one each on the large ones (whose weights dominate the time)."""


def test_every_model_is_stepped():
    assert {model for model, _ in MODEL_MODES} == set(MODELS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model, mode", MODEL_MODES)
def test_every_model_steps_bit_exact(model, mode, device):
    batch = 2
    data = random_data(SMALL_INPUT[model], 2 * batch, seed=len(model))
    config = TrainConfig(model=model, batch_size=batch, eval_batch_size=2, activation_mode=mode,
                         error_mode=mode, gradient_mode=mode, loss_mode=mode, backend="torch",
                         device=device, mu_schedule=((0, 4),))
    spec = get_model(model)
    golden = IntegerRun(build_network(spec, data.image_shape, 10, seed=1), data, config)
    ours = TorchBackend(build_network(spec, data.image_shape, 10, seed=1), data, config)
    for step in range(2):
        index = np.arange(step * batch, (step + 1) * batch)[::-1].copy()
        assert ours.train_batch(index, 0) == golden.train_batch(index, 0)
    assert ours.evaluate(data.test_images, data.test_labels) == \
        golden.evaluate(data.test_images, data.test_labels)
    expected, got = golden.state_arrays(), ours.state_arrays()
    assert expected.keys() == got.keys()
    for name in expected:
        assert got[name].dtype == expected[name].dtype and (got[name] == expected[name]).all(), name


@pytest.mark.parametrize("device", DEVICES)
def test_stochastic_rounding_steps_bit_exact(device):
    data = random_data(SMALL_INPUT["lenet5"], 8)
    config = TrainConfig(activation_mode="stochastic", error_mode="stochastic",
                         gradient_mode="stochastic", loss_mode="stochastic", batch_size=4,
                         backend="torch", device=device)
    spec = get_model("lenet5")
    golden = IntegerRun(build_network(spec, data.image_shape, 10, seed=2), data, config)
    ours = TorchBackend(build_network(spec, data.image_shape, 10, seed=2), data, config)
    for index in (np.arange(4), np.arange(4, 8)):
        assert ours.train_batch(index, 0) == golden.train_batch(index, 0)
    for name, value in golden.state_arrays().items():
        assert (ours.state_arrays()[name] == value).all(), name


@pytest.fixture(scope="module")
def mnist_subset():
    return load_dataset("mnist", limit_train=256, limit_test=100)


@pytest.mark.parametrize("device", DEVICES)
def test_lenet5_short_run_identical_to_golden(device, mnist_subset, tmp_path):
    """Two epochs of 256 MNIST images through the trainer: checkpoints and metrics identical."""
    results = {}
    for backend in ("golden", "torch"):
        config = TrainConfig(model="lenet5", epochs=2, batch_size=32, backend=backend,
                             device=device if backend == "torch" else "cpu",
                             mu_schedule=((0, 5), (1, 4)))
        metrics = Trainer(config, tmp_path / backend, progress=False, data=mnist_subset).fit()
        results[backend] = (metrics, load_checkpoint(tmp_path / backend / "checkpoint.npz"))
    (golden_metrics, (golden_meta, golden_arrays)), (metrics, (meta, arrays)) = results.values()
    columns = ["run", "epoch", "m_u", "train_loss", "train_accuracy", "test_loss", "test_accuracy"]
    pd.testing.assert_frame_equal(metrics[columns], golden_metrics[columns])
    assert golden_metrics.test_accuracy.iloc[-1] > 0.5  # it learned something: a real run
    assert arrays.keys() == golden_arrays.keys() and meta["epoch"] == golden_meta["epoch"] == 2
    for name in arrays:
        assert (arrays[name] == golden_arrays[name]).all(), name


def test_cuda_without_a_gpu_says_so_in_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = random_data(SMALL_INPUT["lenet5"], 2)
    config = TrainConfig(backend="torch", device="cuda")
    built = build_network(get_model("lenet5"), data.image_shape, 10, seed=0)
    with pytest.raises(ValueError, match=r"^--device cuda: no CUDA GPU is visible to PyTorch "
                                           r"[^\n]*; use --device cpu$"):
        TorchBackend(built, data, config)


def test_without_torch_golden_trains_and_torch_says_how_to_install(tmp_path):
    """torch stays optional: with it hidden, a golden step runs and `--backend torch` says what
    to install, in one line, before any data is read."""
    import subprocess
    import sys

    code = f"""
import sys
sys.modules["torch"] = None
import numpy as np
from niti_hw.golden import IntegerWeights, Linear, QTensor, RoundingPolicy, Sequential
net = Sequential([Linear(IntegerWeights(np.ones((4, 3), np.int32), -6))])
net.train_step(QTensor(np.ones((2, 4), np.int8), -7), np.array([0, 2]), 2, RoundingPolicy())
print("golden step ok")
from niti_hw.cli import main
sys.exit(main(["train", "--backend", "torch", "--out", {str(tmp_path / "run")!r}]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout == "golden step ok\n"
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "niti-hw train: error: the torch backend needs the torch extra (torch is not installed): "
        "pip install 'niti-hw[torch]'"]
    assert not (tmp_path / "run").exists()


def test_cpu_step_runs_only_its_gemms_on_the_thread_pool(monkeypatch):
    """GEMMs see torch's thread count, the rest of the step one thread; the count is restored."""
    from niti_hw.golden import RoundingPolicy, init, tensor

    seen = {"gemm": set(), "rounding": set()}
    gemm, rounding = RoundingPolicy.matmul, tensor.shift_round

    def spied_gemm(self, a, b):
        seen["gemm"].add(torch.get_num_threads())
        return gemm(self, a, b)

    def spied_rounding(*args, **kwargs):
        seen["rounding"].add(torch.get_num_threads())
        return rounding(*args, **kwargs)

    monkeypatch.setattr(RoundingPolicy, "matmul", spied_gemm)
    monkeypatch.setattr(tensor, "shift_round", spied_rounding)
    monkeypatch.setattr(init, "shift_round", spied_rounding)  # weights read before any GEMM
    data = random_data(SMALL_INPUT["lenet5"], 4)
    config = TrainConfig(model="lenet5", batch_size=2, eval_batch_size=2, backend="torch")
    run = TorchBackend(build_network(get_model("lenet5"), data.image_shape, 10, seed=1), data,
                       config)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run.train_batch(np.arange(2), 0)
        run.evaluate(data.test_images, data.test_labels)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert seen == {"gemm": {2}, "rounding": {1}}
