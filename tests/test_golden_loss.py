"""Integer cross-entropy gradient: known answers, both branches against float softmax."""

import numpy as np
import pytest

from niti_hw.golden import LfsrLanes, ce_gradient


@pytest.mark.parametrize("s", [0, -7])  # base-2 and Taylor branches
def test_two_equal_logits_give_half_minus_one_hot(s):
    e, exp = ce_gradient(np.array([[0, 0]]), s, np.array([0]))
    assert exp == -7
    assert e.tolist() == [[-64, 64]]  # (0.5 - 1, 0.5) * 2**7


def test_base2_known_answer_with_saturation():
    # x = (47274 * 10) >> 15 = 14 and 0: the second class is 14 powers of two below -> t = 0.
    a = np.array([[10, 0], [10, 0]])
    e, _ = ce_gradient(a, 0, np.array([0, 1]), mode="nearest")
    assert e.tolist() == [[0, 0], [127, -127]]


def softmax_minus_one_hot(a, s, y):
    z = a * 2.0**s  # float reference, test side only
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return p


# Base-2 replaces exp by 2**floor(x * log2 e): each class can be off by up to a factor of two,
# which bounds the error of one probability by about 0.17. Taylor's error is cubic in |a 2**s|
# (< 1), about 0.05 at s = -7 and below the output step 2**-7 from s = -9 on.
@pytest.mark.parametrize(
    "s, tolerance",
    [(3, 0.2), (0, 0.2), (-3, 0.2), (-6, 0.2), (-7, 0.06), (-8, 0.02), (-10, 1 / 128 + 1e-9),
     (-40, 1 / 128 + 1e-9)],
)
@pytest.mark.parametrize("mode", ["nearest", "pseudo"])
def test_close_to_float_softmax_in_both_branches(s, tolerance, mode):
    rng = np.random.default_rng(abs(s))
    a = rng.integers(-127, 128, (200, 10))
    y = rng.integers(0, 10, 200)
    e, exp = ce_gradient(a, s, y, mode)
    error = np.abs(e * 2.0**exp - softmax_minus_one_hot(a, s, y))
    step = 2.0**-7 if mode == "pseudo" else 0  # pseudo may truncate one more step
    assert error.max() <= tolerance + step


def test_signs_label_column_negative_others_non_negative():
    rng = np.random.default_rng(1)
    a = rng.integers(-127, 128, (100, 10))
    y = rng.integers(0, 10, 100)
    for s in (-9, -2):
        e, _ = ce_gradient(a, s, y)
        label_column = e[np.arange(100), y]
        assert (label_column <= 0).all()
        others = e.copy()
        others[np.arange(100), y] = 0
        assert (others >= 0).all()


def test_stochastic_mode_uses_lanes():
    a = np.random.default_rng(2).integers(-127, 128, (8, 10))
    y = np.arange(8)
    lanes = LfsrLanes(3)
    before = lanes.states
    e, _ = ce_gradient(a, -9, y, "stochastic", lanes)
    assert not (lanes.states == before).all()
    assert np.abs(e.astype(int) - ce_gradient(a, -9, y, "nearest")[0]).max() <= 1


def test_bad_inputs_are_refused_with_messages():
    a = np.zeros((2, 3), dtype=np.int8)
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2; got range \[0, 3\]"):
        ce_gradient(a, 0, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"y of shape \(2,\); got \(3,\)"):
        ce_gradient(a, 0, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="2-D a"):
        ce_gradient(np.zeros(3, np.int8), 0, np.array([0]))
    with pytest.raises(TypeError, match="integer array"):
        ce_gradient(a.astype(float), 0, np.array([0, 1]))
    with pytest.raises(TypeError, match="exponent s must be an integer"):
        ce_gradient(a, 0.5, np.array([0, 1]))
