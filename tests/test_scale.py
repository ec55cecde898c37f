"""Preparation and fbank on a dask cluster give the same manifests and features as a local run."""

import runpy
import sys

import numpy as np
import pytest

from speecheq.errors import SpeechEQError
from tests.conftest import REPO

distributed = pytest.importorskip("distributed")

# lilcom stores fbank on a fixed grid of 2**-5 (LilcomChunkyWriter's tick_power): values
# computed in another process may land one step apart, never more.
LILCOM_STEP = 2.0**-5


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", processes=True, dashboard_address=None
    ) as c:
        yield c


def run_stage_script(name, *args, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
    runpy.run_path(str(REPO / "local" / name), run_name="__main__")


def test_dask_cluster_prepares_and_extracts_like_a_local_run(synth_data, cluster, tmp_path, monkeypatch):
    from lhotse import load_manifest_lazy

    address = cluster.scheduler_address
    run_stage_script(
        "prepare.py",
        "--corpus",
        "synth",
        "--corpus-dir",
        synth_data / "corpus",
        "--output-dir",
        tmp_path / "manifests",
        "--executor",
        "dask",
        "--dask-scheduler",
        address,
        monkeypatch=monkeypatch,
    )
    for kind in ("recordings", "supervisions"):
        name = f"synth_{kind}_all.jsonl.gz"
        local = [m.to_dict() for m in load_manifest_lazy(synth_data / "manifests" / name)]
        dask = [m.to_dict() for m in load_manifest_lazy(tmp_path / "manifests" / name)]
        assert dask == local, f"{name} differs between the dask and the local run"

    # 2 chunks on the cluster against the fixture's single local process: chunking changes the
    # storage layout and the order of the manifest, never a cut or a feature value.
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)  # the address can also come from the environment
    run_stage_script(
        "compute_fbank.py",
        "--corpus",
        "synth",
        "--manifest-dir",
        tmp_path / "manifests",
        "--output-dir",
        tmp_path / "fbank",
        "--nj",
        "2",
        "--executor",
        "dask",
        monkeypatch=monkeypatch,
    )
    assert sorted((tmp_path / "fbank/synth_feats_all").iterdir()) == [
        tmp_path / "fbank/synth_feats_all/feats-0.lca",
        tmp_path / "fbank/synth_feats_all/feats-1.lca",
    ]
    local = {c.id: c for c in load_manifest_lazy(synth_data / "fbank/synth_cuts_all.jsonl.gz")}
    dask = {c.id: c for c in load_manifest_lazy(tmp_path / "fbank/synth_cuts_all.jsonl.gz")}
    assert set(dask) == set(local) and len(dask) > 0

    def fields(cut):
        d = cut.to_dict()
        for key in ("storage_path", "storage_key"):
            d["features"].pop(key)
        return d

    exact = total = 0
    for cut_id, a in local.items():
        b = dask[cut_id]
        assert fields(b) == fields(a), cut_id
        fa, fb = a.load_features(), b.load_features()
        assert fa.shape == fb.shape and np.abs(fa - fb).max() <= LILCOM_STEP + 1e-6, cut_id
        exact += int((fa == fb).sum())
        total += fa.size
    assert exact / total > 0.999, "features differ beyond an occasional lilcom rounding step"
    assert not list((tmp_path / "fbank").glob(".tmp.*")), "chunk manifests are removed"


def test_streamed_cuts_equal_the_eager_cuts(synth_data, tmp_path):
    """The fbank stage streams its cuts (memory flat in the corpus size): same cuts, same order,
    and the same when the supervisions are not in the recordings' order (eager fallback)."""
    from lhotse import SupervisionSet, load_manifest

    from speecheq.features import ManifestCuts, cuts_from_manifests

    rec = synth_data / "manifests/synth_recordings_all.jsonl.gz"
    sup = synth_data / "manifests/synth_supervisions_all.jsonl.gz"
    streamed = ManifestCuts(rec, sup)
    assert streamed.in_order and len(streamed) == sum(1 for _ in load_manifest(sup))
    assert [c.to_dict() for c in streamed] == [c.to_dict() for c in cuts_from_manifests(rec, sup)]
    shuffled = tmp_path / "sups.jsonl.gz"
    sups = list(load_manifest(sup))
    SupervisionSet.from_segments(sups[1::2] + sups[0::2]).to_file(shuffled)
    fallback = ManifestCuts(rec, shuffled)
    assert not fallback.in_order
    assert [c.to_dict() for c in fallback] == [c.to_dict() for c in cuts_from_manifests(rec, shuffled)]


def test_executor_errors_are_one_line(cluster, tmp_path, monkeypatch):
    from speecheq.executors import executor_scope, make_executor

    monkeypatch.chdir(tmp_path)  # the workers run where the cluster started: relative paths would miss
    with pytest.raises(SpeechEQError, match=r"dask workers run in .*, this stage in .*: .*start the workers in"):
        make_executor("dask", 2, cluster.scheduler_address)
    monkeypatch.undo()

    with pytest.raises(SpeechEQError, match=r"cannot reach the dask scheduler at tcp://127\.0\.0\.1:9 "):
        make_executor("dask", 2, "tcp://127.0.0.1:9", timeout=1)
    with pytest.raises(SpeechEQError, match="cannot reach the dask scheduler at no-port"):
        make_executor("dask", 2, "no-port", timeout=1)
    with pytest.raises(SpeechEQError, match="--executor must be one of local, dask"):
        make_executor("slurm", 2)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask were not installed
    with pytest.raises(SpeechEQError, match=r"--executor dask needs dask\.distributed: pip install"):
        make_executor("dask", 2, "tcp://127.0.0.1:9")
    with executor_scope("local", 1) as ex:
        assert ex is None  # one job: the stage runs in its own process
