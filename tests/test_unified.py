"""egs/unified: several prepared corpora, one model, the cross-corpus matrix."""

import csv
import gzip
import json
import os
import resource
import subprocess
import time
from types import SimpleNamespace

import pytest

from speecheq.errors import SpeechEQError
from speecheq.unified import (
    check_pairing,
    discover_folds,
    fold_plan,
    intensity_by_category,
    kendall_tau,
    pair_folds,
    shared_category_metrics,
)
from tests.conftest import REPO, TINY_MODEL, recipe_copy, tone, write_wav


def run(cwd, *args, timeout=600):
    # One epoch of a tiny model: its CTC head has not learnt, and stage 6 refuses such a head unless told.
    # Stage 7's four SVM rows are the library's (test_baseline); the recipe runs the one stage 8 fuses.
    env = {
        **os.environ,
        "allow_untrained_alignment": "true",
        "baseline_featsets": "ComParE_2016",
        "baseline_speaker_norm": "no",
    }
    r = subprocess.run(["bash", "run.sh", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    return r


def test_unified_recipe_trains_decodes_and_writes_the_matrix(synth_data, tmp_path):
    egs = tmp_path / "egs"
    # synth: already prepared by the session fixture; link its data where its recipe would have it.
    synth = egs / "synth" / "data"
    synth.mkdir(parents=True)
    for sub in ("manifests", "fbank", "lang"):
        (synth / sub).symlink_to(synth_data / sub)
    # ravdess: a small stand-in in the real layout (2 files per actor, all 24 actors), stages 0-3.
    corpus = tmp_path / "ravdess_corpus"
    for a in range(1, 25):
        for e, inten in (("01", "01"), ("05", "02"), ("03", "01"), ("04", "02")):
            write_wav(
                corpus / f"Actor_{a:02d}" / f"03-01-{e}-{inten}-01-01-{a:02d}.wav", tone(1.0, freq=100 + 5 * a, seed=a)
            )
    ravdess = recipe_copy(egs / "ravdess", "ravdess")
    run(ravdess, "--stop-stage", "3", "--corpus-dir", str(corpus), "--label-preset", "4class")
    # The corpus's own stages 4-6 (shared fold stages): one fold, one epoch, tiny model.
    run(
        ravdess,
        "--stage",
        "4",
        "--fold",
        "1",
        "--label-preset",
        "4class",
        "--num-epochs",
        "1",
        "--max-duration",
        "30",
        "--model-config",
        TINY_MODEL,
    )
    # The recipe decodes the last min(5, num_epochs) epochs averaged unless told otherwise.
    assert (ravdess / "exp/multitask_4class/fold1/decode/ravdess_fold1_test-epoch-1-avg-1/metrics.json").is_file()
    rows = (ravdess / "RESULTS.md").read_text().splitlines()
    row = next(
        r
        for r in rows
        if r.startswith("| ravdess 4class multitask (emotion,intensity,ctc,gender) epoch-1-avg-1 folds: 1 |")
    )
    assert "local/decode.py" in row
    assert any(
        r.startswith("| ravdess 4class multitask epoch-1-avg-1 + ComParE_2016 SVM, fused (w on dev) folds: 1 |")
        for r in rows
    )
    assert (ravdess / "data/fbank_ali/ravdess_cuts_fold1_test.jsonl.gz").is_file()
    # Stages 7-8: the classic baseline on the same fold, then the network fused with its ComParE row.
    assert (ravdess / "exp/baseline_ComParE_2016_4class/fold1/decode/ravdess_fold1_test-svm/metrics.json").is_file()
    fusion = json.loads((ravdess / "exp/fusion_multitask_ComParE_2016_4class/fold1/fusion.json").read_text())
    assert 0.0 <= fusion["w"] <= 1.0 and "ravdess_fold1_dev" in fusion["chosen_on"]
    assert (
        ravdess / "exp/fusion_multitask_ComParE_2016_4class/fold1/decode/ravdess_fold1_test-fused/metrics.json"
    ).is_file()

    # Stage 9: the first fold's model exported with its engines, each checked against the eager model.
    for name in ("speecheq-package.pt", "model.ts.pt", "model.onnx"):
        assert (ravdess / "exp/multitask_4class/fold1" / name).stat().st_size > 1000

    unified = recipe_copy(egs / "unified", "unified")
    run(  # stage 9 is the same shared export as the fold recipe's above
        unified,
        "--stop-stage",
        "5",
        "--corpora",
        "synth ravdess",
        "--num-epochs",
        "1",
        "--max-duration",
        "30",
        "--model-config",
        TINY_MODEL,
        "--corpus-weights",
        "synth=1,ravdess=1",
    )
    tokens = (unified / "data/lang/tokens.txt").read_text().split("\n")
    assert any(t.startswith("AA ") for t in tokens), "English phones from RAVDESS"
    assert any(t.startswith("iou4 ") or t.startswith("i4 ") for t in tokens), "Mandarin phones from synth"
    matrix = json.loads((unified / "exp/cross_corpus_fold0/cross_corpus.json").read_text())
    assert set(matrix) == {"unified_fold0", "single_synth_fold0", "single_ravdess_fold0"}
    for row in matrix.values():
        assert set(row) == {"synth_test", "ravdess_fold0_test"}
        assert all(0 <= v <= 100 for v in row.values())
    assert (unified / "exp/cross_corpus_fold0/cross_corpus.png").stat().st_size > 1000
    # Decoded with the recipes' default weights (the last min(5, num_epochs) epochs averaged): every RAVDESS test cut.
    pred = (unified / "exp/unified_fold0/decode/ravdess_fold0_test-epoch-1-avg-1/predictions.tsv").read_text()
    assert pred.count("\n") == 6 * 4 + 1


def test_unprepared_corpus_is_one_clear_error(tmp_path):
    egs = tmp_path / "egs"
    unified = recipe_copy(egs / "unified", "unified")
    r = subprocess.run(
        ["bash", "run.sh", "--corpora", "ravdess", "--stop-stage", "0"],
        cwd=unified,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    assert "ERROR: ravdess is not prepared: run egs/ravdess/run.sh --stop-stage 3 first" in r.stderr


def prepared(recipe, corpus, feat_dir, extractor):
    """A corpus recipe whose stage 2 is marked done in feat_dir, as compute_corpus_fbank marks it."""
    marker = recipe / feat_dir / f"{corpus}_cuts_all.jsonl.gz.done"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"cuts": 1, "extractor": extractor}))


def unified_fails(unified, *args):
    r = subprocess.run(["bash", "run.sh", *args], cwd=unified, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    return r.stderr.strip()


def test_a_corpus_without_the_feature_type_or_a_bad_front_end_is_one_clear_error(tmp_path):
    egs = tmp_path / "egs"
    unified = recipe_copy(egs / "unified", "unified")
    prepared(egs / "emodb", "emodb", "data/fbank_pitch", "fbank-pitch")
    prepared(egs / "ravdess", "ravdess", "data/fbank", "fbank")  # prepared with the recipe's defaults only
    pitch = ("--feature-type", "fbank-pitch", "--feat-dir", "data/fbank_pitch")
    assert unified_fails(unified, "--corpora", "emodb ravdess", *pitch, "--stop-stage", "0") == (
        "ERROR: ravdess is not prepared with fbank-pitch features in data/fbank_pitch: run egs/ravdess/run.sh "
        "--stop-stage 3 --feature-type fbank-pitch --feat-dir data/fbank_pitch first "
        "(missing ../ravdess/data/fbank_pitch/ravdess_cuts_all.jsonl.gz.done)"
    )
    assert not (unified / "data/fbank_pitch/emodb_cuts_all.jsonl.gz.done").exists(), "checked before linking"
    # The requested type in a folder that holds another: the corpus's own stage 2 refuses to mix them.
    assert unified_fails(unified, "--corpora", "ravdess", "--feature-type", "fbank-pitch", "--stop-stage", "0") == (
        "ERROR: ravdess's data/fbank holds fbank features, not fbank-pitch: every corpus needs the same feature "
        "type; prepare it with egs/ravdess/run.sh --stop-stage 3 --feature-type fbank-pitch --feat-dir "
        "<a folder of its own, e.g. data/fbank_pitch> and pass that --feat-dir here"
    )
    # Stage 4 checks the front end (utils/stages.sh front_end_args) before the folds or any training.
    stage4 = ("--corpora", "emodb", "--stage", "4", "--stop-stage", "4")
    assert unified_fails(unified, *stage4, "--front-end", "ssl") == (
        "ERROR: front_end=ssl needs ssl_model=DIR (a local WavLM/HuBERT/wav2vec 2.0 folder; docs/ssl.md)"
    )
    assert unified_fails(unified, *stage4, "--front-end", "mfcc") == "ERROR: front_end=mfcc: choose fbank or ssl"


# ----------------------------------------------------------------- fold pairing (speecheq/unified.py)


def toy_corpus(name, speakers, num_folds, dev_rule="speakers"):
    """{fold: {split: path}} and {path: members} for a corpus whose fold k tests every
    num_folds-th speaker; dev: the next fold's test speakers, or held-out utterances of train."""
    files, members = {}, {}
    tests = [speakers[k::num_folds] for k in range(num_folds)]
    for k in range(num_folds):
        test = set(tests[k])
        dev = set(tests[(k + 1) % num_folds]) if dev_rule == "speakers" else set()
        train = set(speakers) - test - dev
        fold = f"fold{k}" if num_folds > 1 else ""
        splits = {"test": (test, {f"{s}_u1" for s in test}), "train": (train, {f"{s}_u1" for s in train})}
        splits["dev"] = (dev, {f"{s}_u1" for s in dev}) if dev else (train, {f"{s}_u2" for s in train})
        for split, (spk, rec) in splits.items():
            path = f"{name}/{fold}/{split}"
            members[path] = {"speakers": spk, "recordings": {f"{name}_{r}" for r in rec}}
            files.setdefault(fold, {})[split] = path
    return files, members


def toy_plan(corpora):
    folds, members = {}, {}
    for name, (files, m) in corpora.items():
        folds[name] = files
        members.update(m)
    plan = pair_folds({c: list(f) for c, f in folds.items()})
    for model in plan:
        for c, entry in model.items():
            entry.update(folds[c][entry["fold"]])
    return plan, members


def test_fold_pairing_tests_every_speaker_once_by_a_model_that_never_trained_on_it_or_its_dev():
    corpora = {
        "ravdess": toy_corpus("ravdess", [f"{a:02d}" for a in range(1, 25)], 4),
        "emodb": toy_corpus("emodb", [f"{s:02d}" for s in range(3, 13)], 5),
        "casia": toy_corpus("casia", ["liu", "zhao", "wang", "zz"], 4, dev_rule="utterances"),
        "synth": toy_corpus("synth", [f"v{i}" for i in range(6)], 1),
    }
    plan, members = toy_plan(corpora)
    assert len(plan) == 5  # the largest fold count
    assert [m["emodb"]["fold"] for m in plan] == ["fold0", "fold1", "fold2", "fold3", "fold4"]
    assert [m["ravdess"]["fold"] for m in plan] == ["fold0", "fold1", "fold2", "fold3", "fold0"]
    assert [m["ravdess"]["primary"] for m in plan] == [True] * 4 + [False]
    assert [m["synth"]["primary"] for m in plan] == [True] + [False] * 4
    counts = check_pairing(plan, members.__getitem__)
    assert counts["ravdess"] == {"speakers": 24, "tested": 24, "dev_rule": "speakers"}
    assert counts["emodb"] == {"speakers": 10, "tested": 10, "dev_rule": "speakers"}
    assert counts["casia"]["dev_rule"] == "utterances" and counts["casia"]["tested"] == 4
    # The guarantee itself, from the members: no model trains on a test or dev speaker of a corpus it tests.
    for model in plan:
        train = {(c, s) for c, e in model.items() for s in members[e["train"]]["speakers"]}
        for c, e in model.items():
            assert not train & {(c, s) for s in members[e["test"]]["speakers"]}
            if c != "casia":
                assert not train & {(c, s) for s in members[e["dev"]]["speakers"]}


def test_fold_pairing_check_catches_leaks_and_double_tests():
    plan, members = toy_plan(
        {
            "ravdess": toy_corpus("ravdess", [f"{a:02d}" for a in range(1, 25)], 4),
            "emodb": toy_corpus("emodb", [f"{s:02d}" for s in range(3, 13)], 5),
        }
    )
    leaky = {
        **members,
        plan[1]["emodb"]["train"]: {
            "speakers": members[plan[1]["emodb"]["train"]]["speakers"] | {"04"},
            "recordings": set(),
        },
    }
    with pytest.raises(SpeechEQError, match=r"unified model 1: emodb fold1 test speakers \['04'\]"):
        check_pairing(plan, leaky.__getitem__)
    # Speaker 02 is fold 0's dev speaker: in training only as held-out utterances, and here its recording is trained on.
    dev_leak = {
        **members,
        plan[0]["ravdess"]["train"]: {
            "speakers": {"02"},
            "recordings": members[plan[0]["ravdess"]["dev"]]["recordings"],
        },
    }
    with pytest.raises(SpeechEQError, match="unified model 0: ravdess fold0 dev recordings"):
        check_pairing(plan, dev_leak.__getitem__)
    plan[4]["ravdess"]["primary"] = True
    with pytest.raises(SpeechEQError, match="ravdess: speakers .* tested by more than one primary model"):
        check_pairing(plan, members.__getitem__)


def test_fold_plan_reads_the_prepared_splits(tmp_path):
    for k in range(2):
        for split in ("train", "dev", "test"):
            (tmp_path / f"ravdess_cuts_fold{k}_{split}.jsonl.gz").touch()
    for split in ("train", "dev", "test"):
        (tmp_path / f"synth_cuts_{split}.jsonl.gz").touch()
    assert discover_folds("ravdess", tmp_path) == ["fold0", "fold1"] and discover_folds("synth", tmp_path) == [""]
    plan = fold_plan(["ravdess", "synth"], tmp_path)
    assert plan[1]["synth"] == {
        "fold": "",
        "primary": False,
        "train": str(tmp_path / "synth_cuts_train.jsonl.gz"),
        "dev": str(tmp_path / "synth_cuts_dev.jsonl.gz"),
        "test": str(tmp_path / "synth_cuts_test.jsonl.gz"),
    }
    with pytest.raises(SpeechEQError, match="emodb: no test split .* run egs/emodb/run.sh --stop-stage 3 first"):
        fold_plan(["ravdess", "emodb"], tmp_path)
    (tmp_path / "ravdess_cuts_fold1_dev.jsonl.gz").unlink()
    with pytest.raises(SpeechEQError, match="ravdess_cuts_fold1_dev.jsonl.gz is missing"):
        fold_plan(["ravdess"], tmp_path)
    (tmp_path / "ravdess_cuts_fold3_test.jsonl.gz").touch()
    with pytest.raises(SpeechEQError, match=r"folds \[0, 1, 3\], not 0..2"):
        discover_folds("ravdess", tmp_path)


def write_predictions(path, rows, categories):
    """predictions.tsv as local/decode.py writes it (the columns these reports read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(
            ["cut_id", "corpus", "emotion_true", "emotion_pred", *[f"p_{c}" for c in categories], "intensity_pred"]
        )
        for i, (true, probs, inten) in enumerate(rows):
            w.writerow([f"c{i}", "emodb", true, "-", *[f"{probs.get(c, 0.0):.4f}" for c in categories], f"{inten:.3f}"])
    return path


def test_shared_categories_and_the_intensity_scale_from_predictions(tmp_path):
    cats = ["neutral", "calm", "happy", "sad", "angry", "boredom"]
    rows = [
        ("neutral", {"neutral": 0.6, "calm": 0.3}, 0.05),
        ("happy", {"boredom": 0.6, "happy": 0.3}, 0.7),
        ("angry", {"calm": 0.5, "angry": 0.4, "happy": 0.1}, 0.9),
        ("boredom", {"boredom": 0.9}, 0.3),
        ("sad", {"happy": 0.5, "sad": 0.4}, 0.4),
    ]
    pred = write_predictions(tmp_path / "a/predictions.tsv", rows, cats)
    # Boredom is left out; the decision is among neutral, happy, sad, angry only (calm and boredom ignored).
    r = shared_category_metrics(pred, ["neutral", "happy", "sad", "angry"])
    assert r["utterances"] == 4 and r["WA"] == pytest.approx(75.0) and r["UA"] == pytest.approx(75.0)
    with pytest.raises(SpeechEQError, match="no \\['fear'\\]"):
        shared_category_metrics(pred, ["neutral", "fear"])
    other = write_predictions(
        tmp_path / "b/predictions.tsv",
        [(t, p, {"neutral": 0.1, "boredom": 0.2, "sad": 0.5, "happy": 0.6, "angry": 0.8}[t]) for t, p, _ in rows],
        cats,
    )
    scale = intensity_by_category({"fold0": pred, "fold1": other}, tmp_path / "intensity.md")
    assert scale["order_per_fold"]["fold0"] == ["neutral", "boredom", "sad", "happy", "angry"]
    assert scale["order_over_folds"] == ["neutral", "boredom", "sad", "happy", "angry"]
    assert scale["neutral_lowest_in"] == 2 and scale["kendall_tau_mean"] == pytest.approx(1.0)
    assert scale["mean_over_folds"]["neutral"]["mean"] == pytest.approx(0.075)
    assert "neutral lowest in 2 of 2 folds" in (tmp_path / "intensity.md").read_text()
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0


def test_labels_per_corpus_counts_what_each_task_learns_from_each_corpus():
    from speecheq.data import labels_per_corpus
    from speecheq.labels import LabelScheme

    def cut(corpus, emotion, intensity=None, phones=None, gender="F"):
        sup = SimpleNamespace(
            gender=gender, custom={"corpus": corpus, "emotion": emotion, "intensity": intensity, "phones": phones}
        )
        return SimpleNamespace(duration=1.0, supervisions=[sup])

    cuts = [
        cut("emodb", "neutral", 0.0, ["a"]),
        cut("emodb", "boredom", None, ["a"]),
        cut("casia", "angry", None, None, "M"),
        cut("casia", "sad", None, ["i3"]),
        cut("ravdess", "calm", 0.5, ["AA"]),
    ]
    counts = labels_per_corpus(cuts, LabelScheme.from_preset("all"), ["emotion", "intensity", "ctc", "gender"])
    assert counts == {
        "casia": {"cuts": 2, "emotion": 2, "intensity": 0, "ctc": 1, "gender": 2},
        "emodb": {"cuts": 2, "emotion": 2, "intensity": 1, "ctc": 2, "gender": 2},
        "ravdess": {"cuts": 1, "emotion": 1, "intensity": 1, "ctc": 1, "gender": 1},
    }
    assert labels_per_corpus(cuts, LabelScheme.from_preset("4class"), ["emotion"])["emodb"] == {"cuts": 2, "emotion": 1}


# ----------------------------------------------------------------- three languages, three protocols

CASIA_SPEAKERS = ("liuchanhg", "zhaoquanyin", "wangzhe", "ZhaoZuoxiang")
EMODB_SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")


def recipe(cwd, script, *args, timeout=1800):  # generous: on a loaded machine every python start waits
    r = subprocess.run(
        ["bash", script, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-4000:]
    return r


def phones_of(manifests, corpus):
    with gzip.open(manifests / f"{corpus}_supervisions_all.jsonl.gz", "rt") as f:
        return {p for line in f for p in (json.loads(line).get("custom", {}).get("phones") or [])}


def prepare_like_its_recipe(
    recipe_dir,
    corpus,
    corpus_dir,
    monkeypatch,
    trim_silence_db=0.0,
    feature_type="fbank",
    feat_dir="data/fbank",
    **options,
):
    """Stages 0-3 of egs/<corpus>/run.sh in-process (their scripts are tested in test_corpora):
    the same library calls, paths relative to the recipe folder as the scripts write them."""
    from speecheq.corpora import prepare_corpus
    from speecheq.splits import validate_and_split
    from speecheq.features import compute_corpus_fbank
    from speecheq.text import G2P

    recipe_dir.mkdir(parents=True)
    monkeypatch.chdir(recipe_dir)
    prepare_corpus(corpus, corpus_dir, "data/manifests", g2p=G2P(), progress=False, **options)
    compute_corpus_fbank(corpus, "data/manifests", feat_dir, nj=1, extractor=feature_type)
    validate_and_split(corpus, feat_dir, "all", trim_silence_db=trim_silence_db)


def test_unified_folds_over_casia_ravdess_and_emodb(tmp_path, monkeypatch):
    """Mandarin, English and German in one phone inventory; 4, 4 and 5 folds paired into 5
    models (two run here: model 0, primary for all three, and model 4, which repeats CASIA's
    and RAVDESS's fold 0); EmoDB's intensity only on its neutral cuts, CASIA's phones only where
    the transcript file has a line."""
    from speecheq.options import TrainConfig
    from speecheq.text.lang import prepare_lang
    from speecheq.train import train

    start, cpu = time.time(), time.process_time()
    egs = tmp_path / "egs"
    casia_dir, ravdess_dir, emodb_dir = tmp_path / "casia", tmp_path / "ravdess", tmp_path / "emodb"
    for k, spk in enumerate(CASIA_SPEAKERS):  # 201: train text with a transcript, 202: without, 205: a dev text
        for e in ("angry", "neutral"):
            for n in ("201", "202", "205"):
                write_wav(casia_dir / spk / e / f"{n}.wav", tone(0.8, freq=150 + 30 * k, seed=k))
    (tmp_path / "casia_transcripts.txt").write_text("201\t我们去公园吧。\n205\tni3 hao3 ma5\n", encoding="utf-8")
    for a in range(1, 25):
        for e, inten in (("01", "01"), ("05", "02")):
            write_wav(
                ravdess_dir / f"Actor_{a:02d}" / f"03-01-{e}-{inten}-01-01-{a:02d}.wav",
                tone(0.8, freq=100 + 5 * a, seed=a),
            )
    for k, spk in enumerate(EMODB_SPEAKERS):
        for name in ("a01Na", "a02Wa", "a01La"):
            write_wav(emodb_dir / "wav" / f"{spk}{name}.wav", tone(0.8, freq=110 + 15 * k, seed=k))
    prepare_like_its_recipe(
        egs / "casia", "casia", casia_dir, monkeypatch, transcripts=str(tmp_path / "casia_transcripts.txt")
    )
    prepare_like_its_recipe(egs / "ravdess", "ravdess", ravdess_dir, monkeypatch, trim_silence_db=30)
    emodb = egs / "emodb"
    prepare_like_its_recipe(emodb, "emodb", emodb_dir, monkeypatch)
    # EmoDB's own fold models for the cross-corpus rows, where its recipe's stage 4 puts them.
    prepare_lang(["data/manifests/emodb_supervisions_all.jsonl.gz"], "data/lang")
    for k in (0, 4):
        train(
            TrainConfig(
                train_cuts=[f"data/fbank/emodb_cuts_fold{k}_train.jsonl.gz"],
                dev_cuts=[f"data/fbank/emodb_cuts_fold{k}_dev.jsonl.gz"],
                exp_dir=f"exp/multitask_all/fold{k}",
                label_preset="all",
                model_preset="tiny",
                tasks="emotion,ctc,gender",
                num_epochs=1,
                max_duration=30.0,
                warmup_batches=2,
                tensorboard=0,
            )
        )
    prepared, prepared_cpu = time.time(), time.process_time()

    unified = recipe_copy(egs / "unified", "unified")
    (unified / "run_folds.sh").symlink_to((REPO / "egs/unified/run_folds.sh").resolve())
    recipe(
        unified,
        "run_folds.sh",
        "--corpora",
        "casia ravdess emodb",
        "--folds",
        "0 4",
        "--model-preset",
        "tiny",
        "--num-epochs",
        "1",
        "--max-duration",
        "30",
        "--extra-train-args",
        "--lr-schedule cosine --warmup-batches 2",
        "--single",
        "emodb=../emodb/exp/multitask_all/fold{k}",
        "--intensity-on",
        "emodb",
    )
    elapsed = time.time() - prepared
    children = resource.getrusage(resource.RUSAGE_CHILDREN)

    tokens = {t.split()[0] for t in (unified / "data/lang/tokens.txt").read_text().splitlines() if t.strip()}
    manifests = unified / "data/manifests"
    for corpus in ("casia", "ravdess", "emodb"):
        own = phones_of(manifests, corpus) - set().union(
            *(phones_of(manifests, c) for c in {"casia", "ravdess", "emodb"} - {corpus})
        )
        assert own and own <= tokens, f"{corpus}'s own phones in the one inventory"

    plan = json.loads((unified / "exp/unified-folds.json").read_text())
    assert [{c: (e["fold"], e["primary"]) for c, e in m.items()} for m in plan["models"]][4] == {
        "casia": ("fold0", False),
        "ravdess": ("fold0", False),
        "emodb": ("fold4", True),
    }
    assert plan["speakers"]["emodb"] == {"speakers": 10, "tested": 10, "dev_rule": "speakers"}
    assert plan["speakers"]["casia"]["dev_rule"] == "utterances"

    labels = json.loads((unified / "exp/unified_fold0/train-summary.json").read_text())[
        "labelled_train_cuts_per_corpus"
    ]
    # EmoDB fold 0 trains on 6 speakers x 3 files, intensity only on the 6 neutral ones (0);
    # CASIA fold 0 on 3 speakers x 2 emotions x texts 201, 202: phones only for 201.
    assert labels["emodb"] == {"cuts": 18, "emotion": 18, "intensity": 6, "ctc": 18, "gender": 18}
    assert labels["casia"] == {"cuts": 12, "emotion": 12, "intensity": 6, "ctc": 6, "gender": 12}
    assert labels["ravdess"] == {"cuts": 32, "emotion": 32, "intensity": 32, "ctc": 32, "gender": 32}
    log = (unified / "exp/unified_fold0/log").glob("*")
    assert any("train cuts of emodb" in p.read_text() for p in log if p.is_file())

    rows = (unified / "exp/unified-RESULTS.md").read_text()
    assert "| unified (casia + ravdess + emodb) on emodb, epoch-1-avg-1, folds: fold0 fold4 |" in rows
    assert "| unified (casia + ravdess + emodb) on ravdess, epoch-1-avg-1, folds: fold0 |" in rows
    assert (
        "| unified (casia + ravdess + emodb) on ravdess, epoch-1-avg-1, REPEATS (not in the mean above) of folds: fold0 |"
        in rows
    )
    summary = json.loads((unified / "exp/unified-folds-summary-epoch-1-avg-1.json").read_text())
    assert summary["emodb"]["primary"]["summary"]["UA"]["folds"] == 2 and "repeat" not in summary["emodb"]

    matrix = json.loads((unified / "exp/unified_cross_corpus_epoch-1-avg-1/cross_corpus_folds.json").read_text())
    assert matrix["categories"] == ["neutral", "happy", "sad", "angry", "fear"]  # the three corpora's shared ones
    assert set(matrix["table"]) == {"unified", "emodb only"}
    assert set(matrix["table"]["emodb only"]["emodb"]["per_fold"]) == {"fold0", "fold4"}
    # EmoDB's fold-0 model on RAVDESS's and CASIA's fold-0 test speakers, decoded by the report.
    assert set(matrix["table"]["emodb only"]["ravdess"]["per_fold"]) == {"fold0"}
    assert (emodb / "exp/multitask_all/fold0/decode/casia_fold0_test-epoch-1-avg-1/predictions.tsv").is_file()

    scale = json.loads((unified / "exp/unified_intensity_emodb_epoch-1-avg-1.json").read_text())
    assert set(scale["per_fold"]) == {"fold0", "fold4"}
    assert set(scale["order_over_folds"]) == {"neutral", "angry", "boredom"}
    print(
        f"prepare + EmoDB models: {prepared - start:.0f} s ({prepared_cpu - cpu:.0f} s CPU); "
        f"run_folds.sh: {elapsed:.0f} s ({children.ru_utime + children.ru_stime:.0f} s CPU)"
    )


def test_unified_trains_on_fbank_pitch_and_passes_the_front_end_and_the_recipe_defaults(tmp_path, monkeypatch):
    """Two corpora prepared by their recipes' stages with fbank-pitch into data/fbank_pitch: the
    unified recipe links that folder and trains on its 84-dim features; run_folds.sh hands the
    features, the front end and the training defaults down to local/train.py (a stand-in here)."""
    import torch

    egs = tmp_path / "egs"
    for a in range(1, 25):
        for e, inten in (("01", "01"), ("05", "02")):
            write_wav(
                tmp_path / "ravdess" / f"Actor_{a:02d}" / f"03-01-{e}-{inten}-01-01-{a:02d}.wav",
                tone(0.6, freq=100 + 5 * a, seed=a),
            )
    for k, spk in enumerate(EMODB_SPEAKERS):
        for name in ("a01Na", "a02Wa"):
            write_wav(tmp_path / "emodb" / "wav" / f"{spk}{name}.wav", tone(0.6, freq=110 + 15 * k, seed=k))
    pitch = {"feature_type": "fbank-pitch", "feat_dir": "data/fbank_pitch"}
    for corpus in ("ravdess", "emodb"):
        prepare_like_its_recipe(egs / corpus, corpus, tmp_path / corpus, monkeypatch, **pitch)
    unified = recipe_copy(egs / "unified", "unified")
    (unified / "run_folds.sh").symlink_to((REPO / "egs/unified/run_folds.sh").resolve())
    options = ("--corpora", "ravdess emodb", "--feature-type", "fbank-pitch", "--feat-dir", "data/fbank_pitch")
    small = ("--model-config", TINY_MODEL, "--num-epochs", "1", "--max-duration", "30")
    recipe(unified, "run.sh", *options, *small, "--stop-stage", "4", "--single", "false")

    assert (unified / "data/fbank_pitch/ravdess_feats_all.lca").is_symlink()
    ckpt = torch.load(unified / "exp/unified_fold0/epoch-1.pt", map_location="cpu", weights_only=False)
    assert ckpt["model_config"]["num_mel_bins"] == 84  # 80 mel bands + log F0, voicing and their deltas
    assert "fbank-pitch" in json.dumps(ckpt["training_data"]["feature_config"])
    args = ckpt["train_args"]
    assert [str(p) for p in args["train_cuts"]] == [
        "data/fbank_pitch/ravdess_cuts_fold0_train.jsonl.gz",
        "data/fbank_pitch/emodb_cuts_fold0_train.jsonl.gz",
    ]
    # The single-corpus recipes' defaults (egs/ravdess/run.sh), where the command did not set them.
    assert (args["lr_schedule"], args["mixup_alpha"], ckpt["label_preset"]) == ("cosine", 0.4, "all")

    # run_folds.sh -> run.sh -> utils/stages.sh train_model -> local/train.py, here a stand-in
    # that prints its arguments, one a line (a path with a space shows as one).
    (unified / "local").unlink()
    (unified / "local").mkdir()
    for script in (REPO / "local").glob("*.py"):
        if script.name != "train.py":
            (unified / "local" / script.name).symlink_to(script)
    (unified / "local/train.py").write_text('#!/usr/bin/env bash\nprintf "arg:%s\\n" "$@"\n')
    (unified / "local/train.py").chmod(0o755)
    front = ("--front-end", "ssl", "--ssl-model", "models/wavlm base", "--ssl-finetune-top", "2")
    recipe(
        unified,
        "run_folds.sh",
        *options,
        *front,
        "--folds",
        "1",
        "--name",
        "ssl",
        "--stop-stage",
        "4",
        "--ctc-weight",
        "1.0",
        "--extra-train-args",
        "--mixup-alpha 0",
    )
    log = (unified / "exp/log/ssl-fold1.log").read_text()
    args = [line[4:] for line in log.splitlines() if line.startswith("arg:")]
    i = args.index("--front-end")
    assert tuple(args[i : i + 6]) == front
    for flag, values in {
        "--train-cuts": ["data/fbank_pitch/ravdess_cuts_fold1_train.jsonl.gz"],
        "--num-epochs": ["25"],
        "--max-duration": ["50"],
        "--lr-schedule": ["cosine"],
        "--mixup-alpha": ["0.4", "0"],  # --extra-train-args come last: the last value is the one used
        "--seed": ["42"],
        "--ctc-weight": ["1.0"],  # EmoDB's own recipe's weight, passed through run.sh
    }.items():
        assert [args[j + 1] for j, a in enumerate(args) if a == flag] == values, flag
    assert "data/fbank_pitch/emodb_cuts_fold1_train.jsonl.gz" == args[args.index("--train-cuts") + 2]
