import matplotlib.image
import numpy as np
import pytest

from speecheq.plots import plot_alignment, plot_confusion, plot_heatmap

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    assert not (path.parent / (path.name + ".tmp.png")).exists()


def test_plot_confusion_writes_a_png(tmp_path):
    path = tmp_path / "nested" / "confusion.png"
    # The last class has no test utterance: its normalised row is undefined.
    plot_confusion([[5, 1, 0], [2, 7, 1], [0, 0, 0]], ["ang", "hap", "sad"], path, title="fold 1")
    assert_valid_png(path)


def test_plot_alignment_writes_a_png(tmp_path):
    path = tmp_path / "alignment.png"
    fbank = np.random.default_rng(0).normal(size=(150, 80))
    segments = [("sil", 0.0, 0.3), ("AH", 0.3, 0.12), ("B", 0.42, 0.05), ("sil", 0.47, 1.03)]
    plot_alignment(fbank, segments, str(path), frame_shift=0.01, title="utt1")
    assert_valid_png(path)


def test_plot_heatmap_writes_a_png_and_overwrites(tmp_path):
    path = tmp_path / "cross_corpus.png"
    matrix = [[61.2, 40.0, float("nan")], [35.5, 70.1, 44.4]]
    plot_heatmap(matrix, ["iemocap", "msp"], ["iemocap", "msp", "crema"], path, title="UA (%)")
    first = path.read_bytes()
    plot_heatmap(matrix, ["iemocap", "msp"], ["a", "b", "c"], path, fmt="{:.0f}")
    assert_valid_png(path)
    assert path.read_bytes() != first


def test_mismatched_shapes_raise(tmp_path):
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError, match="labels"):
        plot_confusion([[1, 0], [0, 1]], ["a", "b", "c"], path)
    with pytest.raises(ValueError, match="labels"):
        plot_heatmap([[1.0, 2.0]], ["row"], ["only one"], path)
    with pytest.raises(ValueError, match="2-D"):
        plot_heatmap([1.0, 2.0], ["row"], ["a", "b"], path)
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        plot_alignment(np.zeros(10), [], path, frame_shift=0.01)
    with pytest.raises(ValueError, match="not inside"):
        plot_alignment(np.zeros((100, 80)), [("AH", 0.9, 0.5)], path, frame_shift=0.01)
    with pytest.raises(ValueError, match="symbol, start_s, duration_s"):
        plot_alignment(np.zeros((100, 80)), [("AH", 0.1)], path, frame_shift=0.01)
    assert not list(tmp_path.iterdir())
