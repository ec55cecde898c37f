"""Corpora of any size for the benchmarks, without generating (or storing) more audio.

The synthetic corpus is generated once; a corpus of ``scale`` times its size reuses
its audio files under new utterance ids (``<id>_x<k>``), so disk and generation time
stay those of the 1x corpus while every stage sees ``scale`` times the utterances.
Shared by bench/fbank.py and bench/scale.py.
"""

from __future__ import annotations

from pathlib import Path


def make_corpus(work: Path, sentences: int, scale: int) -> Path:
    """Manifests for the synthetic corpus, repeated ``scale`` times under new ids."""
    from lhotse import RecordingSet, SupervisionSet, load_manifest
    from lhotse.utils import fastcopy

    from speecheq.corpora import prepare_corpus
    from speecheq.corpora.synth import generate_synth

    corpus = generate_synth(work / "corpus", sentences_per_language=sentences, progress=False)
    base = work / "manifests-1x"
    prepare_corpus("synth", corpus, base, progress=False)
    if scale == 1:
        return base
    out = work / f"manifests-{scale}x"
    out.mkdir(exist_ok=True)
    recs = load_manifest(base / "synth_recordings_all.jsonl.gz")
    sups = load_manifest(base / "synth_supervisions_all.jsonl.gz")
    RecordingSet.from_recordings(fastcopy(r, id=f"{r.id}_x{k}") for k in range(scale) for r in recs).to_file(
        out / "synth_recordings_all.jsonl.gz"
    )
    SupervisionSet.from_segments(
        fastcopy(s, id=f"{s.id}_x{k}", recording_id=f"{s.recording_id}_x{k}") for k in range(scale) for s in sups
    ).to_file(out / "synth_supervisions_all.jsonl.gz")
    return out


def make_corpus_dir(work: Path, sentences: int, scale: int) -> Path:
    """A synth corpus folder ``scale`` times the generated one, for the preparation stage:
    ``metadata.tsv`` lists every row ``scale`` times under ids ``<id>_x<k>``; ``wav`` is a
    link to the generated audio."""
    from speecheq.corpora.synth import METADATA, generate_synth

    corpus = generate_synth(work / "corpus", sentences_per_language=sentences, progress=False)
    if scale == 1:
        return corpus
    out = work / f"corpus-{scale}x"
    out.mkdir(exist_ok=True)
    if not (out / "wav").exists():
        (out / "wav").symlink_to((corpus / "wav").resolve(), target_is_directory=True)
    header, *rows = (corpus / METADATA).read_text(encoding="utf-8").splitlines()
    col = header.split("\t").index("id")
    lines = [header]
    for k in range(scale):
        for row in rows:
            fields = row.split("\t")
            fields[col] = f"{fields[col]}_x{k}"
            lines.append("\t".join(fields))
    (out / METADATA).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
