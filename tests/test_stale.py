"""Stale outputs (issue #13): every ``.done`` marker records what its output was made from; another
input stops the stage with one line (preparation, corpus generation) or re-runs it (features), and
``run.sh --force`` redoes a stage. Also the shared recipe stages 0-3 (utils/stages.sh, issue #15)."""

import json
import logging
import os
import re
import subprocess

import pytest
from lhotse import load_manifest

from speecheq.corpora import prepare_corpus
from speecheq.errors import SpeechEQError
from speecheq.features import compute_corpus_fbank
from speecheq.io import done_marker
from tests.conftest import REPO, recipe_copy
from tests.test_prepare import fake_ravdess

ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
RECIPES = ("casia", "cremad", "custom", "emodb", "esd", "iemocap", "ravdess", "synth", "unified")


def speakers(manifest_dir, corpus="ravdess"):
    return {s.speaker for s in load_manifest(manifest_dir / f"{corpus}_supervisions_all.jsonl.gz")}


def run_recipe(recipe, *args):
    return subprocess.run(
        ["bash", "run.sh", "--nj", "1", *args], cwd=recipe, capture_output=True, text=True, timeout=600, env=ENV
    )


def test_recipe_prepares_another_folder_only_with_force_and_never_skips_a_missing_one(tmp_path):
    a = fake_ravdess(tmp_path / "a", actors=(1, 2))
    b = fake_ravdess(tmp_path / "b", actors=(3,))
    recipe = recipe_copy(tmp_path / "egs_ravdess", "ravdess")
    stage0 = ("--stage", "0", "--stop-stage", "0", "--corpus-dir")
    manifests = recipe / "data/manifests"
    r = run_recipe(recipe, *stage0, str(a))
    assert r.returncode == 0, r.stderr[-3000:]

    r = run_recipe(recipe, *stage0, str(b))  # was: exit 0, "already prepared; skipping", A's manifests kept
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert [line for line in r.stderr.splitlines() if "ERROR" in line] == [
        f"ERROR: data/manifests was prepared with corpus folder {a.resolve()}, not {b.resolve()}; "
        "re-run stage 0 with --force to prepare it again"
    ]
    assert speakers(manifests) == {"Actor_01", "Actor_02"}

    r = run_recipe(recipe, *stage0, str(tmp_path / "gone"))
    assert r.returncode == 1 and "corpus folder not found" in r.stderr and "skipping" not in r.stderr

    r = run_recipe(recipe, *stage0, str(b), "--force")
    assert r.returncode == 0, r.stderr[-3000:]
    assert speakers(manifests) == {"Actor_03"}
    r = run_recipe(recipe, *stage0, str(b))
    assert r.returncode == 0 and "already prepared" in r.stderr


def test_prepare_stops_when_the_corpus_files_a_transcript_or_an_option_changed(tmp_path):
    from tests.test_corpora import CASIA_SPEAKERS, fake_casia, wav

    root, transcripts = fake_casia(tmp_path / "casia")
    out = tmp_path / "m"
    options = dict(transcripts=str(transcripts), on_error="skip", g2p=None, progress=False)
    prepare_corpus("casia", root, out, **options)
    assert prepare_corpus("casia", root, out, **options) is None

    transcripts.write_bytes("201\t我们去公园吧。\n205\tni3 hao3 ma5 a5\n".encode("gb18030"))
    with pytest.raises(
        SpeechEQError,
        match=rf"^{out} was prepared with transcripts {transcripts.resolve()} \(\d+ bytes, "
        r"sha1 \w{12}\), not .* re-run stage 0 with --force",
    ):
        prepare_corpus("casia", root, out, **options)
    with pytest.raises(SpeechEQError, match=r"was prepared with on error skip, not stop"):
        prepare_corpus("casia", root, out, **{**options, "on_error": "stop"})
    prepare_corpus("casia", root, out, force=True, **options)
    with pytest.raises(SpeechEQError, match=r"was prepared with transcripts .*, not \(none\)"):
        prepare_corpus("casia", root, out, **{**options, "transcripts": None})

    wav(root / CASIA_SPEAKERS[0] / "angry" / "209.wav")  # a file added to the corpus
    with pytest.raises(SpeechEQError, match=r"was prepared with corpus files 16 files, listing sha1 \w+, not 17 files"):
        prepare_corpus("casia", root, out, **options)


def test_features_are_recomputed_when_their_manifests_changed(tmp_path, caplog):
    manifests, fbank = tmp_path / "manifests", tmp_path / "fbank"
    prepare_corpus("ravdess", fake_ravdess(tmp_path / "a", actors=(1, 2)), manifests, g2p=None, progress=False)
    assert compute_corpus_fbank("ravdess", manifests, fbank, nj=1) is not None
    assert compute_corpus_fbank("ravdess", manifests, fbank, nj=1) is None  # same manifests: skipped

    prepare_corpus(
        "ravdess", fake_ravdess(tmp_path / "b", actors=(3,)), manifests, force=True, g2p=None, progress=False
    )
    with caplog.at_level(logging.WARNING, logger="speecheq"):
        cuts = compute_corpus_fbank("ravdess", manifests, fbank, nj=1)  # was: skipped, Actor_01/02's features kept
    assert cuts is not None and {c.supervisions[0].speaker for c in load_manifest(cuts)} == {"Actor_03"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "were computed from recordings manifest" in warnings[0]
    assert "recomputing" in warnings[0]
    assert compute_corpus_fbank("ravdess", manifests, fbank, nj=1) is None


def test_a_marker_without_recorded_inputs_is_trusted_with_one_warning(tmp_path, caplog):
    root = fake_ravdess(tmp_path / "ravdess", actors=(1,))
    out = tmp_path / "m"
    prepare_corpus("ravdess", root, out, g2p=None, progress=False)
    marker = done_marker(out / "ravdess_recordings_all.jsonl.gz")
    old = json.loads(marker.read_text())
    assert old["inputs"]["corpus folder"] == str(root.resolve())
    del old["inputs"]  # as written before inputs were recorded
    marker.write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING, logger="speecheq"):
        assert prepare_corpus("ravdess", root, out, g2p=None, progress=False) is None
        assert prepare_corpus("ravdess", root, out, g2p=None, progress=False) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "records no inputs" in warnings[0] and "--force" in warnings[0]


def test_synth_corpus_generated_with_other_arguments_stops_and_force_regenerates(tmp_path):
    from speecheq.corpora.synth import generate_synth

    corpus = tmp_path / "synth"
    small = dict(voices=["en-us_m1"], sentences_per_language=1, progress=False)
    generate_synth(corpus, seed=0, **small)
    assert generate_synth(corpus, seed=0, **small) == corpus  # same arguments: kept
    with pytest.raises(
        SpeechEQError, match=rf"^synth: {corpus} was generated with seed 0, not 1; re-run stage 0 with --force"
    ):
        generate_synth(corpus, seed=1, **small)  # was: returned as it is, whatever the arguments
    generate_synth(corpus, seed=1, force=True, **small)
    assert json.loads(done_marker(corpus).read_text())["inputs"]["seed"] == 1


def test_truncated_manifest_advice_names_force(tmp_path):
    from speecheq.io import check_readable_manifest

    p = tmp_path / "x.jsonl.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(SpeechEQError, match="re-run the stage that writes it with --force"):
        check_readable_manifest(p)


def test_a_true_false_option_given_alone_is_switched_on(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text(
        f'stage=0\nstop_stage=3\nforce=false\n. {REPO}/utils/parse_options.sh\necho "$stage|$stop_stage|$force"\n'
    )
    for args, out in (
        (["--force"], "0|3|true"),
        (["--stage", "2", "--force", "--stop-stage", "2"], "2|2|true"),
        (["--force", "false"], "0|3|false"),
    ):
        r = subprocess.run(["bash", str(script), *args], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == out, r.stderr
    r = subprocess.run(["bash", str(script), "--force", "maybe"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == f"{script}: --force is true or false, got 'maybe'"


@pytest.mark.parametrize("corpus", RECIPES)
def test_every_recipe_takes_force_and_describes_its_options(corpus):
    r = subprocess.run(
        ["bash", str(REPO / "egs" / corpus / "run.sh"), "--help"], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert r.returncode == 0, r.stderr
    options = {m[1]: (m[2], m[3]) for m in re.finditer(r"^  (--\S+)\s+\[([^\]]*)\]\s*(.*)$", r.stdout, re.M)}
    assert options["--force"][0] == "false" and "--stage" in options
    if corpus != "unified":  # the recipes whose stages 0-3 are utils/stages.sh: one comment per variable
        assert [name for name, (_, what) in options.items() if not what] == []


@pytest.mark.parametrize("corpus", RECIPES[:-1])
def test_recipes_run_stages_0_to_3_from_the_shared_functions(corpus):
    text = (REPO / "egs" / corpus / "run.sh").read_text()
    assert ". utils/stages.sh" in text
    for function in ("stage_prepare", "stage_lang", "stage_fbank", "stage_validate"):
        assert text.count(function) == 1
    for script in ("local/prepare.py", "local/prepare_lang.py", "local/compute_fbank.py", "local/validate.py"):
        assert script not in text  # one copy of each command, in utils/stages.sh
