"""80-dim log-mel fbank (25 ms window, 10 ms shift), stored with lilcom.

Two paths, chosen by device, never mixed: on CPU, lhotse's
``compute_and_store_features`` with ``nj`` worker processes (or an executor such
as a Dask client); on CUDA, one process with batched extraction
(``compute_and_store_features_batch``), resumable through its partial manifest.
CUDA is never combined with several worker processes: each would initialise its
own CUDA context and fight for the one GPU.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Optional

from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike, atomic_output, check_readable_manifest, write_cuts

log = logging.getLogger("speecheq")

NUM_MEL_BINS = 80
FRAME_SHIFT = 0.01
EXTRACTORS = ("fbank", "kaldifeat")


def make_extractor(name: str = "fbank", device: str = "cpu", num_mel_bins: int = NUM_MEL_BINS):
    """lhotse's own Fbank by default (CPU and GPU); kaldifeat when asked and importable."""
    if name == "fbank":
        from lhotse import Fbank, FbankConfig

        return Fbank(FbankConfig(num_mel_bins=num_mel_bins, device=device))
    if name == "kaldifeat":
        try:
            import kaldifeat  # noqa: F401
        except ImportError:
            raise SpeechEQError(
                "--extractor kaldifeat needs the kaldifeat package (see README: it builds from its sdist)"
            ) from None
        from lhotse import KaldifeatFbank, KaldifeatFbankConfig, KaldifeatMelOptions

        return KaldifeatFbank(KaldifeatFbankConfig(mel_opts=KaldifeatMelOptions(num_bins=num_mel_bins), device=device))
    raise SpeechEQError(f"unknown extractor {name!r}; choose from {EXTRACTORS}")


def cuts_from_manifests(recordings_path: Pathlike, supervisions_path: Pathlike):
    """One cut per supervision, on the supervision's channel, id = supervision id."""
    from lhotse import CutSet, load_manifest_lazy

    recordings = load_manifest_lazy(check_readable_manifest(recordings_path))
    supervisions = load_manifest_lazy(check_readable_manifest(supervisions_path))
    return CutSet.from_manifests(recordings=recordings.to_eager(), supervisions=supervisions.to_eager()).trim_to_supervisions(
        keep_overlapping=False
    ).to_eager()


def compute_fbank(
    recordings_path: Pathlike,
    supervisions_path: Pathlike,
    cuts_path: Pathlike,
    storage_path: Pathlike,
    *,
    extractor: str = "fbank",
    device: str = "cpu",
    nj: int = 1,
    batch_duration: float = 600.0,
    executor=None,
    num_mel_bins: int = NUM_MEL_BINS,
) -> int:
    """Extract features for every cut and write ``cuts_path``; returns the number of cuts.

    ``cuts_path`` appears only when every feature is stored (atomic rename), so a
    later stage never sees a manifest that points at missing features.
    """
    from lhotse import LilcomChunkyWriter

    cuts_path, storage_path = Path(cuts_path), Path(storage_path)
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    cuts = cuts_from_manifests(recordings_path, supervisions_path)
    feature_extractor = make_extractor(extractor, device, num_mel_bins)

    if device.startswith("cuda"):
        if nj > 1:
            log.info("device %s: using one process with batched extraction (ignoring nj=%d)", device, nj)
        partial = cuts_path.with_name(f".partial.{cuts_path.name.replace('.gz', '')}")
        _drop_incomplete_last_line(partial)
        with_feats = cuts.compute_and_store_features_batch(
            extractor=feature_extractor,
            storage_path=storage_path,
            manifest_path=partial,
            batch_duration=batch_duration,
            num_workers=2,
            storage_type=LilcomChunkyWriter,
        )
        count = write_cuts(with_feats, cuts_path)
        partial.unlink(missing_ok=True)
        return count

    if nj > 1:
        # lhotse's workers each inherit torch's thread pool: nj x threads oversubscribes the cores.
        import torch

        torch.set_num_threads(1)
    # The CPU path is not resumable inside one run; a leftover storage from a
    # killed run is untrusted (no manifest points at it) and is started afresh.
    for leftover in (storage_path, storage_path.with_suffix(".lca")):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    with_feats = cuts.compute_and_store_features(
        extractor=feature_extractor,
        storage_path=storage_path,
        num_jobs=nj if executor is None else None,
        executor=executor,
        storage_type=LilcomChunkyWriter,
    )
    return write_cuts(with_feats, cuts_path)


def _drop_incomplete_last_line(path: Path) -> None:
    """A kill during a write can leave half a JSON line; lhotse's resume would choke on it."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with atomic_output(path) as tmp:
            tmp.write_bytes(data[: data.rfind(b"\n") + 1])


def feature_statistics(cuts, max_cuts: Optional[int] = None):
    """Global per-bin mean and std over all frames (Chan et al. parallel update)."""
    import numpy as np

    count, mean, m2 = 0, None, None
    for i, cut in enumerate(cuts):
        if max_cuts is not None and i >= max_cuts:
            break
        feats = cut.load_features().astype(np.float64)
        n = feats.shape[0]
        batch_mean = feats.mean(axis=0)
        batch_m2 = ((feats - batch_mean) ** 2).sum(axis=0)
        if mean is None:
            count, mean, m2 = n, batch_mean, batch_m2
            continue
        delta = batch_mean - mean
        total = count + n
        mean = mean + delta * n / total
        m2 = m2 + batch_m2 + delta**2 * count * n / total
        count = total
    if mean is None:
        raise SpeechEQError("cannot compute feature statistics: no cuts")
    std = np.sqrt(np.maximum(m2 / max(count - 1, 1), 1e-10))
    return mean.astype(np.float32), std.astype(np.float32)


def compute_corpus_fbank(corpus: str, manifest_dir: Pathlike, fbank_dir: Pathlike, split: str = "all", *,
                         force: bool = False, **options) -> Optional[Path]:
    """The fbank stage for one corpus split: ``<corpus>_cuts_<split>`` + ``<corpus>_feats_<split>``.

    Skipped when marked done; otherwise (re)computed and marked done last.
    """
    from speecheq.io import is_done, mark_done

    manifest_dir, fbank_dir = Path(manifest_dir), Path(fbank_dir)
    cuts_path = fbank_dir / f"{corpus}_cuts_{split}.jsonl.gz"
    if is_done(cuts_path) and not force:
        log.info("%s: features already computed (%s); skipping", corpus, cuts_path)
        return None
    import time

    t0 = time.time()
    n = compute_fbank(
        manifest_dir / f"{corpus}_recordings_{split}.jsonl.gz",
        manifest_dir / f"{corpus}_supervisions_{split}.jsonl.gz",
        cuts_path,
        fbank_dir / f"{corpus}_feats_{split}",
        **options,
    )
    mark_done(cuts_path, {"cuts": n, "seconds": round(time.time() - t0, 1), **{k: str(v) for k, v in options.items()}})
    log.info("%s: %d cuts with features in %.1f s -> %s", corpus, n, time.time() - t0, cuts_path)
    return cuts_path
