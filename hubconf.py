"""torch.hub entry point::

    clf = torch.hub.load(REPO_DIR, "speecheq", "exp/x/speecheq-package.pt", source="local")
    clf = torch.hub.load(REPO_DIR, "speecheq", source="local", path="exp/x/speecheq-model")

The package is named positionally or as ``path=``: ``model=`` cannot be used, since
torch.hub.load takes the entry point's name under that keyword. Weights are never
downloaded: ``path`` is a local package (a ``.pt`` file or a Hugging Face-layout
folder written by ``local/export.py``).
"""

dependencies = ["torch", "lhotse", "numpy", "scipy", "soundfile"]


def speecheq(path=None, device="cpu", **options):
    """A SpeechEQ emotion classifier (``classify_file``, ``classify_batch``) for the package at ``path``;
    ``options`` as for ``speecheq.from_pretrained`` (engine, corpus, max_segment, trim_silence_db)."""
    from speecheq.errors import SpeechEQError
    from speecheq.pretrained import from_pretrained

    if path is None:
        raise SpeechEQError(
            'give the package: torch.hub.load(repo_dir, "speecheq", "exp/x/speecheq-package.pt", '
            'source="local") or path=...; nothing is downloaded'
        )
    return from_pretrained(path, device=device, **options)
