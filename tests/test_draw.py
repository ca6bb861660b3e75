"""draw: a valid PNG whose size and colours follow the model (read back with matplotlib)."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from deltaprop import draw
from deltaprop.network import Network


def picture(net: Network, path, **kwargs) -> np.ndarray:
    info = draw.draw(net, path, **kwargs)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(path)
    assert image.shape[:2] == (info["size"][1], info["size"][0])
    return image


def test_size_follows_the_architecture(tmp_path) -> None:
    small = picture(Network([2, 3, 2], seed=0), tmp_path / "a.png")
    big = picture(Network([4, 8, 6, 3], seed=0), tmp_path / "b.png")
    assert big.shape[0] > small.shape[0] and big.shape[1] > small.shape[1]


def test_colours_follow_the_parameters(tmp_path) -> None:
    a = Network([2, 3, 2], bias_init=0.5, seed=0)
    b = Network([2, 3, 2], bias_init=0.5, seed=0)
    b.layers[0].W *= -1  # same sizes, weights of the opposite sign: other colours
    b.layers[0].b[...] = [-0.5, 0.0, 0.5]
    img_a, img_b = picture(a, tmp_path / "a.png"), picture(b, tmp_path / "b.png")
    assert img_a.shape == img_b.shape
    changed = np.abs(img_a[..., :3] - img_b[..., :3]).max(axis=-1) > 0.1
    assert changed.mean() > 0.001  # many pixels, not a stray anti-aliasing difference
    # red (negative) vs blue (positive): total redness minus blueness moves with the sign flip
    def redness(img):
        return float((img[..., 0] - img[..., 2]).sum())
    assert redness(img_a) != pytest.approx(redness(img_b), rel=1e-3)


def test_same_model_same_picture(tmp_path) -> None:
    net = Network([2, 3, 2], seed=3)
    np.testing.assert_array_equal(picture(net, tmp_path / "a.png"),
                                  picture(net, tmp_path / "b.png"))


def test_regions_panel_and_wide_layers(tmp_path, rng) -> None:
    net = Network([2, 40, 2], bias="unit", seed=0)
    X = rng.normal(size=(50, 2))
    y = (X[:, 0] > 0).astype(int)
    plain = picture(net, tmp_path / "a.png")
    regions = picture(net, tmp_path / "b.png", data=(X, y))
    assert regions.shape[1] > plain.shape[1]  # a second panel


def test_bad_format_and_data(tmp_path, rng) -> None:
    with pytest.raises(ValueError, match="format"):
        draw.draw(Network([2, 2], seed=0), tmp_path / "x.bmp")
    with pytest.raises(ValueError, match="2-D"):
        draw.draw(Network([3, 2], seed=0), tmp_path / "x.png",
                  data=(rng.normal(size=(5, 3)), np.zeros(5, int)))
