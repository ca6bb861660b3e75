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


def _drawn_figure(monkeypatch, net: Network, path, **kwargs):
    """The matplotlib Figure that draw() saves (captured at savefig)."""
    import matplotlib.figure

    figures = []
    save = matplotlib.figure.Figure.savefig

    def capture(self, *args, **kw):
        figures.append(self)
        return save(self, *args, **kw)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", capture)
    draw.draw(net, path, **kwargs)
    assert len(figures) == 1
    return figures[0]


@pytest.mark.parametrize(("sizes", "regions"), [
    ([2, 3, 2], False), ([2, 3, 2], True), ([2, 16, 16, 2], False), ([2, 16, 16, 2], True),
    ([4, 40, 3], False),  # decision regions need 2 inputs
])
def test_colour_bars_do_not_overlap(monkeypatch, tmp_path, rng, sizes, regions) -> None:
    """The weight and bias colour bars, with their ticks and labels, are apart from each
    other, from the other panels, and inside the picture (issue 16: they were drawn on top
    of each other)."""
    net = Network(sizes, bias_init=0.3, seed=0)
    data = None
    if regions:
        X = rng.normal(size=(30, 2))
        data = (X, (X[:, 0] > 0).astype(int))
    fig = _drawn_figure(monkeypatch, net, tmp_path / "n.png", data=data)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    every = [*fig.axes, *(child for ax in fig.axes for child in ax.child_axes)]
    bars = {ax.get_ylabel(): ax for ax in every if ax.get_ylabel() in ("weight w", "bias b")}
    assert set(bars) == {"weight w", "bias b"}
    boxes = {label: ax.get_tightbbox(renderer) for label, ax in bars.items()}
    assert not boxes["weight w"].overlaps(boxes["bias b"]), boxes
    picture = fig.bbox
    for label, box in boxes.items():  # nothing cut off at the picture's edge
        assert picture.x0 <= box.x0 and box.x1 <= picture.x1, (label, box, picture)
        assert picture.y0 <= box.y0 and box.y1 <= picture.y1, (label, box, picture)
    regions_panel = [ax for ax in fig.axes if ax.get_title() == "decision regions"]
    for ax in regions_panel:  # the regions panel, its axis labels included
        for label, box in boxes.items():
            assert not box.overlaps(ax.get_tightbbox(renderer)), label
