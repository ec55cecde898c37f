#!/usr/bin/env python3
"""Stage 0 of egs/unified: link the manifests and features that each corpus's own recipe prepared.

Every corpus must have been prepared with the same --feature-type into the same --feat-dir
(a folder relative to its recipe folder, e.g. data/fbank_pitch); a corpus that was not stops
the stage with one line before anything is linked."""

import argparse
import tempfile
from contextlib import contextmanager
from pathlib import Path

from speecheq.cli import script


def check_prepared(corpora, egs_dir: Path, feat_dir: Path, feature_type: str) -> None:
    """Every corpus's stage 2 finished in ``feat_dir`` with ``feature_type`` features."""
    from speecheq.corpora import get_corpus
    from speecheq.errors import SpeechEQError
    from speecheq.features import _done_extractor

    own = feat_dir == Path("data/fbank") and feature_type == "fbank"  # the corpus recipes' defaults
    how = "" if own else f" --feature-type {feature_type} --feat-dir {feat_dir}"
    for corpus in corpora:
        get_corpus(corpus)
        cuts = egs_dir / corpus / feat_dir / f"{corpus}_cuts_all.jsonl.gz"
        marker = cuts.with_name(cuts.name + ".done")
        if not marker.exists():
            what = "" if own else f" with {feature_type} features in {feat_dir}"
            raise SpeechEQError(
                f"{corpus} is not prepared{what}: run egs/{corpus}/run.sh --stop-stage 3{how} first (missing {marker})"
            )
        done_with = _done_extractor(cuts)
        if done_with != feature_type:
            raise SpeechEQError(
                f"{corpus}'s {feat_dir} holds {done_with} features, not {feature_type}: every corpus needs the same "
                f"feature type; prepare it with egs/{corpus}/run.sh --stop-stage 3 --feature-type {feature_type} "
                f"--feat-dir <a folder of its own, e.g. data/fbank_pitch> and pass that --feat-dir here"
            )


@contextmanager
def features_as_fbank(corpora, egs_dir: Path, data_dir: Path, feat_dir: Path):
    """(egs folder, data folder) views in which each corpus's ``feat_dir`` and this recipe's are
    ``data/fbank``, the folder speecheq.corpora.link_prepared links (the links it makes resolve to
    the real files, in this recipe's ``feat_dir``: the storage paths stay relative to the recipe)."""
    data_dir.joinpath("manifests").mkdir(parents=True, exist_ok=True)
    feat_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="link_corpora.") as tmp:
        views = {
            Path(tmp, "egs", c, "data"): (egs_dir / c / "data" / "manifests", egs_dir / c / feat_dir) for c in corpora
        }
        views[Path(tmp, "data")] = (data_dir / "manifests", feat_dir)
        for view, (manifests, feats) in views.items():
            view.mkdir(parents=True)
            view.joinpath("manifests").symlink_to(manifests.resolve())
            view.joinpath("fbank").symlink_to(feats.resolve())
        yield Path(tmp, "egs"), Path(tmp, "data")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpora", nargs="+", required=True, help="corpus recipes whose prepared data to link")
    p.add_argument("--egs-dir", type=Path, default=Path(".."), help="folder holding the corpus recipes")
    p.add_argument("--data-dir", type=Path, default=Path("data"), help="this recipe's data folder, where the links go")
    p.add_argument(
        "--feat-dir",
        type=Path,
        default=Path("data/fbank"),
        help="features folder, relative to each recipe folder (this one: the current folder), e.g. data/fbank_pitch",
    )
    p.add_argument(
        "--feature-type", default="fbank", help="the features every corpus must hold there: fbank, fbank-pitch"
    )
    args = p.parse_args()

    from speecheq.corpora import link_prepared
    from speecheq.errors import SpeechEQError

    if args.feat_dir.is_absolute() or ".." in args.feat_dir.parts:
        raise SpeechEQError(
            f"--feat-dir {args.feat_dir}: give a folder inside the recipe folder, e.g. data/fbank_pitch"
        )
    check_prepared(args.corpora, args.egs_dir, args.feat_dir, args.feature_type)
    if args.feat_dir == args.data_dir / "fbank":
        link_prepared(args.corpora, args.egs_dir, args.data_dir)
        return
    # link_prepared knows data/fbank only: it links through views that name the feat dirs so
    with features_as_fbank(args.corpora, args.egs_dir, args.data_dir, args.feat_dir) as (egs_view, data_view):
        link_prepared(args.corpora, egs_view, data_view)


if __name__ == "__main__":
    script(main)
