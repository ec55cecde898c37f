"""SpeechEQ: multitask speech emotion recognition recipes on a unified label metric."""

__version__ = "0.1.0"


def from_pretrained(path, **kwargs):
    """A trained package (.pt file or Hugging Face-layout folder) as a classifier with
    ``classify_file(path)`` and ``classify_batch(waveforms, sample_rate)``: see :mod:`speecheq.pretrained`."""
    # Imported here: ``import speecheq`` (for __version__, the CLI's --help) must not wait for torch.
    from speecheq.pretrained import from_pretrained as load

    return load(path, **kwargs)
