import numpy as np
import pytest

from lava_qpsnn.data import Encoding, encode_test_split, load_dataset, rate_encode
from lava_qpsnn.errors import ConfigError, DataError


def test_digits_split_is_fixed_and_complete():
    train, test = load_dataset("digits")
    assert len(train) + len(test) == 1797 and len(test) == 360
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == np.float32
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    again, _ = load_dataset("digits")
    np.testing.assert_array_equal(train.labels, again.labels)
    assert set(np.unique(test.labels)) == set(range(10))


def test_rate_encoding_is_binary_seeded_and_follows_intensity():
    images = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    spikes = rate_encode(images, 4000, np.random.default_rng(0))
    assert spikes.shape == (1, 3, 4000) and set(np.unique(spikes)) <= {0.0, 1.0}
    rates = spikes.mean(-1)[0]
    assert rates[0] == 0.0 and rates[2] == 1.0 and abs(rates[1] - 0.5) < 0.03


def test_test_split_encoding_repeats_exactly():
    _, test = load_dataset("digits")
    enc = Encoding(time_steps=5, seed=7)
    a, b = encode_test_split(test, enc), encode_test_split(test, enc)
    assert a.shape == (360, 1, 8, 8, 5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, encode_test_split(test, Encoding(time_steps=5, seed=8)))


def test_unknown_dataset_names_the_choices():
    with pytest.raises(DataError, match="unknown data set 'mnist9'.*digits"):
        load_dataset("mnist9")


@pytest.mark.parametrize("steps", [0, -3, 10_001])
def test_bad_time_steps(steps):
    with pytest.raises(ConfigError, match="time steps"):
        Encoding(time_steps=steps)
