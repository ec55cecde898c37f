"""CASIA, ESD, IEMOCAP, EmoDB, CREMA-D and the custom TSV+YAML format on fixtures built
in each corpus's exact layout (generated audio, real file-name and label-file formats)."""

import json
import os
import runpy
import subprocess
import sys

import pytest

from speecheq.corpora import get_corpus, prepare_corpus
from speecheq.corpora.common import UtteranceSplit, balanced_folds
from speecheq.errors import SpeechEQError
from speecheq.text import G2P
from speecheq.text.encoding import decode_bytes, read_text
from tests.conftest import REPO, recipe_copy, tone, write_wav

G2P_ = G2P()  # one memo for the whole file: each fixed sentence is spelled once


def wav(path, seconds=0.6, freq=180.0):
    return write_wav(path, tone(seconds, freq=freq))


def by_id(out):
    return {s.id: s for s in out["supervisions"]}


def prepare(name, root, tmp_path, **options):
    return get_corpus(name).prepare(root, tmp_path / f"{name}_manifests", g2p=G2P_, progress=False, **options)


def run_recipe(corpus, tmp_path, *args):
    """Stages 0-3 of egs/<corpus>/run.sh in a scratch copy of the recipe folder."""
    recipe = recipe_copy(tmp_path / f"egs_{corpus}", corpus)
    r = subprocess.run(
        ["bash", "run.sh", "--stop-stage", "3", "--nj", "1", *args],
        cwd=recipe,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return recipe


def assert_speaker_independent(folds, everyone):
    tested = set()
    for f in folds.values():
        assert not (f["train"] & f["dev"]) and not (f["train"] & f["test"]) and not (f["dev"] & f["test"])
        assert f["train"] | f["dev"] | f["test"] == set(everyone)
        assert not (tested & f["test"])
        tested |= f["test"]
    assert tested == set(everyone)


# ----------------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "gb18030"])
def test_text_encodings_are_detected(encoding):
    text = "0001_000001\t打远一看，它们的确很是美丽，\t中立\n0011_000001\tThe nine the eggs, I keep.\tNeutral\n"
    assert decode_bytes(text.encode(encoding))[0].lstrip("\ufeff") == text


def test_undecodable_text_names_the_file(tmp_path):
    bad = tmp_path / "0001.txt"
    bad.write_bytes(b"0001_000001\tcaf\xe9\n\x81")
    with pytest.raises(SpeechEQError, match=r"0001\.txt: cannot decode"):
        read_text(bad)


# ----------------------------------------------------------------------------------- CASIA

CASIA_SPEAKERS = ("liuchanhg", "zhaoquanyin", "wangzhe", "ZhaoZuoxiang")


def fake_casia(root, emotions=("angry", "neutral"), numbers=("201", "205")):
    for k, spk in enumerate(CASIA_SPEAKERS):
        for e in emotions:
            for n in numbers:
                wav(root / spk / e / f"{n}.wav", freq=150 + 30 * k)
    transcripts = root.parent / "casia_transcripts.txt"
    transcripts.write_bytes("201\t我们去公园吧。\n205\tni3 hao3 ma5\n".encode("gb18030"))
    return root, transcripts


def test_casia(tmp_path):
    root, transcripts = fake_casia(tmp_path / "casia")
    wav(root / "readme.wav")  # outside <speaker>/<emotion>/<nnn>.wav
    wav(root / "lidan" / "angry" / "201.wav")  # not a CASIA speaker
    wav(root / "wangzhe" / "angry" / "20.wav")  # not three digits
    wav(root / "wangzhe" / "disgust" / "203.wav")  # emotion outside the table
    out = prepare("casia", root, tmp_path, transcripts=str(transcripts))
    sups = by_id(out)
    assert len(sups) == 16 and out["summary"].skipped == {"layout": 3, "label": 1}
    s = sups["casia_wangzhe_angry_201"]
    assert (s.speaker, s.gender, s.language, s.custom["emotion"], s.custom["intensity"]) == (
        "wangzhe",
        "M",
        "zh",
        "angry",
        None,
    )
    assert s.text == "我们去公园吧。" and s.custom["phones"][:3] == ["uo3", "m", "en5"]
    assert sups["casia_liuchanhg_neutral_205"].custom["phones"] == ["n", "i3", "h", "ao3", "m", "a5"]
    assert sups["casia_liuchanhg_neutral_205"].gender == "F"
    # Without transcripts the phoneme task is off for CASIA.
    bare = get_corpus("casia").prepare(root, None, g2p=G2P_, progress=False)
    assert all(s.text is None and s.custom["phones"] is None for s in bare["supervisions"])
    # Default protocol: three training speakers; dev holds their utterances of texts train never sees.
    folds = get_corpus("casia").protocol()
    assert list(folds) == ["fold0", "fold1", "fold2", "fold3"]
    for k, f in enumerate(folds.values()):
        test = CASIA_SPEAKERS[k]
        assert f["test"] == {test}
        train = {i for i, s in sups.items() if f["train"](s)}
        dev = {i for i, s in sups.items() if f["dev"](s)}
        assert train and dev and not train & dev
        assert {sups[i].speaker for i in train} == {sups[i].speaker for i in dev} == set(CASIA_SPEAKERS) - {test}
        assert {sups[i].custom["number"] for i in train} == {"201"} and {sups[i].custom["number"] for i in dev} == {
            "205"
        }
    folds = get_corpus("casia").protocol(kind="speaker")
    assert_speaker_independent(folds, CASIA_SPEAKERS)
    genders = {"liuchanhg": "F", "zhaoquanyin": "F", "wangzhe": "M", "ZhaoZuoxiang": "M"}
    for f in folds.values():
        assert len(f["test"]) == 1 and len(f["dev"]) == 1
        assert sorted(genders[s] for s in f["train"]) == ["F", "M"]
    with pytest.raises(SpeechEQError, match="unknown protocol"):
        get_corpus("casia").protocol(kind="official")


def test_casia_recipe_stages_0_to_3(tmp_path):
    root, transcripts = fake_casia(tmp_path / "casia", emotions=("happy", "sad"))
    recipe = run_recipe("casia", tmp_path, "--corpus-dir", str(root), "--transcripts", str(transcripts))
    summary = json.loads((recipe / "data/manifests/casia_prepare_summary.json").read_text())
    assert summary["utterances"] == 16 and summary["skipped"] == {}
    splits = json.loads((recipe / "data/fbank/casia_splits.json").read_text())
    assert sorted(splits) == sorted(f"fold{k}_{s}" for k in range(4) for s in ("train", "dev", "test"))
    # 3 training speakers x 2 emotions: text 201 trains, held-out text 205 is dev.
    assert splits["fold0_test"]["cuts"] == 4 and splits["fold0_train"]["cuts"] == 6 and splits["fold0_dev"]["cuts"] == 6
    assert splits["fold0_train"]["with_phones"] == 6 and splits["fold0_train"]["with_intensity"] == 0
    assert splits["fold2_test"]["emotion"] == {"happy": 2, "sad": 2}
    assert (recipe / "data/lang/tokens.txt").read_text().count("\n") > 5


# ----------------------------------------------------------------------------------- ESD


def fake_esd(root):
    files = [
        "0001/Neutral/train/0001_000001.wav",
        "0001/Angry/evaluation/0001_000351.wav",
        "0001/Angry/test/0001_000352.wav",
        "0002/Neutral/0002_000001.wav",
        "0002/Happy/0002_000701.wav",  # a copy without the split level
        "0011/Sad/train/0011_001051.wav",
        "0011/Surprise/test/0011_001401.wav",
    ]
    for k, f in enumerate(files):
        wav(root / f, freq=140 + 10 * k)
    (root / "0001/0001.txt").write_bytes(
        "0001_000001\t打远一看，它们的确很是美丽，\t中立\n0001_000351\t他们来了。\t生气\n".encode("gb18030")
    )
    (root / "0002/0002.txt").write_bytes(
        "0002_000001\t我们走吧。\t中立\n0002_000701\t太好了！\t快乐\n0002_001051\t太好了！\t快乐\n".encode("utf-8-sig")
    )
    (root / "0011/0011.txt").write_bytes(
        "0011_001051\tThe nine the eggs, I keep.\tSad\r\n0011_001401\tI am going to the mall.\tSurprise\r\n".encode(
            "utf-16"
        )
    )
    return root


def test_esd(tmp_path):
    root = fake_esd(tmp_path / "esd")
    wav(root / "0011/Sad/dev/0011_001052.wav")  # unknown split folder
    wav(root / "0001/Angry/train/0002_000353.wav")  # another speaker's file
    wav(root / "0002/Sad/0002_001051.wav")  # the transcript says happy
    wav(root / "0002/Bored/0002_001751.wav")  # emotion outside the table
    table = tmp_path / "speakers.tsv"
    table.write_text("speaker\tgender\n0001\tF\n11\tmale\n")
    out = prepare("esd", root, tmp_path, speaker_table=str(table))
    sups = by_id(out)
    summary = out["summary"]
    assert len(sups) == 7
    assert summary.skipped == {"layout": 2, "label mismatch": 1, "label": 1}
    assert summary.notes["no transcript line"] == 2  # 0001_000352 and 0002_001751
    s = sups["esd_0001_000001"]
    assert (s.speaker, s.gender, s.language, s.custom["emotion"], s.custom["split"]) == (
        "0001",
        "F",
        "zh",
        "neutral",
        "train",
    )
    assert s.text == "打远一看，它们的确很是美丽，" and s.custom["phones"][:2] == ["d", "a3"]
    assert sups["esd_0001_000351"].custom["split"] == "dev"  # evaluation
    assert sups["esd_0002_000701"].gender is None and sups["esd_0002_000701"].custom["split"] is None
    assert sups["esd_0002_000701"].custom["emotion"] == "happy"
    e = sups["esd_0011_001051"]
    assert (e.gender, e.language, e.text) == ("M", "en", "The nine the eggs, I keep.")
    assert e.custom["phones"][:3] == ["DH", "AH", "N"] and e.custom["intensity"] is None
    # The official protocol selects by each utterance's split folder.
    official = get_corpus("esd").protocol(kind="official")
    assert list(official) == [""] and isinstance(official[""]["dev"], UtteranceSplit)
    assert {i for i, s in sups.items() if official[""]["test"](s)} == {"esd_0001_000352", "esd_0011_001401"}
    # One language only; no speaker table: gender unknown.
    zh = get_corpus("esd").prepare(root, None, language="zh", g2p=None, progress=False)
    assert {s.speaker for s in zh["supervisions"]} == {"0001", "0002"}
    assert all(s.gender is None for s in zh["supervisions"])
    assert zh["summary"].notes["other language than --language zh"] == 2


def test_esd_protocols_and_bad_input(tmp_path):
    folds = get_corpus("esd").protocol()
    assert list(folds) == [f"fold{k}" for k in range(5)]
    assert_speaker_independent(folds, [f"{n:04d}" for n in range(1, 21)])
    assert folds["fold0"]["test"] == {"0001", "0006", "0011", "0016"} and folds["fold0"]["dev"] == {"0002", "0012"}
    en = get_corpus("esd").protocol(language="en")
    assert_speaker_independent(en, [f"{n:04d}" for n in range(11, 21)])
    assert all(len(f["test"]) == 2 and len(f["dev"]) == 1 for f in en.values())
    with pytest.raises(SpeechEQError, match="--language must be one of"):
        get_corpus("esd").protocol(language="de")
    root = fake_esd(tmp_path / "esd")
    (root / "0011/0011.txt").write_bytes(b"0011_001051\tcaf\xe9\n\x81")
    with pytest.raises(SpeechEQError, match=r"0011\.txt: cannot decode"):
        get_corpus("esd").prepare(root, None, progress=False)
    bad = tmp_path / "speakers.tsv"
    bad.write_text("0001\tX\n")
    with pytest.raises(SpeechEQError, match=r"speakers\.tsv:1: unknown gender 'X'"):
        get_corpus("esd").prepare(root, None, speaker_table=str(bad), progress=False)


# ----------------------------------------------------------------------------------- IEMOCAP

EMO_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def fake_iemocap(root):
    dialogs = {
        (1, "Ses01F_impro01"): [
            ("F000", "neu", "2.5000, 2.5000, 2.5000", "Excuse me."),
            ("M000", "exc", "3.5000, 4.0000, 3.0000", "Do you have your forms? [LAUGHTER]"),
            ("F001", "xxx", "2.0000, 3.0000, 2.5000", "Yeah."),
            ("M001", "fru", "2.0000, 3.5000, 3.0000", "I need an ID."),
        ],
        (2, "Ses02M_script01_1"): [
            ("F000", "ang", "1.5000, 4.5000, 4.0000", "What is wrong with you?"),
            ("M000", "sad", "2.0000, 1.5000, 2.0000", "Nothing."),
            ("M001", "hap", "4.0000, 3.0000, 3.0000", "Fine then."),
        ],
    }
    for (session, dialog), utts in dialogs.items():
        sdir = root / f"Session{session}"
        lines, trans = [EMO_HEADER], []
        for k, (suffix, cat, vad, text) in enumerate(utts):
            utt = f"{dialog}_{suffix}"
            start, end = 6.2901 + 3 * k, 8.2357 + 3 * k
            lines.append(f"[{start:.4f} - {end:.4f}]\t{utt}\t{cat}\t[{vad}]\n")
            lines.append("C-E2:\tNeutral;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n\n")
            trans.append(f"{utt} [{start:08.4f}-{end:08.4f}]: {text}\n")
            if utt != "Ses02M_script01_1_M001":  # a label line without its wav
                wav(sdir / "sentences/wav" / dialog / f"{utt}.wav", freq=120 + 20 * k)
        (sdir / "dialog/EmoEvaluation").mkdir(parents=True)
        (sdir / "dialog/EmoEvaluation" / f"{dialog}.txt").write_text("".join(lines))
        (sdir / "dialog/transcriptions").mkdir(parents=True)
        (sdir / "dialog/transcriptions" / f"{dialog}.txt").write_text("".join(trans))
    return root


def test_iemocap(tmp_path):
    from lhotse import CutSet

    from speecheq.labels import LabelScheme, label_summary

    root = fake_iemocap(tmp_path / "iemocap")
    wav(root / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F002.wav")  # no label line
    wav(root / "Session1/sentences/wav/Ses01F_impro01/._Ses01F_impro01_F000.wav")  # macOS debris
    out = prepare("iemocap", root, tmp_path)
    sups = by_id(out)
    assert len(sups) == 6 and out["summary"].skipped == {"no label": 1, "layout": 1, "file not found": 1}
    m = sups["iemocap_Ses01F_impro01_M000"]
    assert (m.speaker, m.gender, m.custom["emotion_raw"], m.custom["emotion"]) == ("Ses01M", "M", "exc", "happy")
    assert m.custom["intensity"] == pytest.approx(0.75) and m.custom["arousal"] == 4.0
    assert m.text == "Do you have your forms?" and m.custom["phones"][-5:] == ["F", "AO", "R", "M", "Z"]
    n = sups["iemocap_Ses01F_impro01_F000"]
    assert (n.speaker, n.gender, n.custom["emotion"], n.custom["intensity"]) == ("Ses01F", "F", "neutral", 0.0)
    x = sups["iemocap_Ses01F_impro01_F001"]
    assert x.custom["emotion"] is None and x.custom["intensity"] == pytest.approx(0.5)
    assert sups["iemocap_Ses02M_script01_1_F000"].speaker == "Ses02F"
    # The 4-class preset is the validate stage's business: counted there, kept in the manifest.
    cuts = CutSet.from_manifests(recordings=out["recordings"], supervisions=out["supervisions"])
    summary = label_summary(cuts, LabelScheme.from_preset("4class"))
    assert summary["emotion"] == {"neutral": 1, "happy": 1, "angry": 1, "sad": 1}
    assert summary["excluded"] == {"None": 1, "frustration": 1}
    folds = get_corpus("iemocap").protocol()
    assert list(folds) == [f"fold{k}" for k in range(5)]
    assert_speaker_independent(folds, [f"Ses{s:02d}{g}" for s in range(1, 6) for g in "FM"])
    assert folds["fold0"]["test"] == {"Ses01F", "Ses01M"} and folds["fold0"]["dev"] == {"Ses02F"}
    assert folds["fold1"]["dev"] == {"Ses03M"} and all(len(f["train"]) == 7 for f in folds.values())


# ----------------------------------------------------------------------------------- EmoDB

EMODB_FILES = (
    "03a01Fa",
    "08a02Wa",
    "09a04La",
    "10a05Ea",
    "11a07Aa",
    "12b01Ta",
    "13b02Na",
    "14b03Wb",
    "15b09Fa",
    "16b10Nc",
)


def fake_emodb(root):
    for k, name in enumerate(EMODB_FILES):
        wav(root / "wav" / f"{name}.wav", freq=110 + 15 * k)
    return root


def test_emodb(tmp_path):
    root = fake_emodb(tmp_path / "emodb")
    wav(root / "wav" / "03x01Fa.wav")  # unknown text code
    wav(root / "wav" / "17a01Fa.wav")  # unknown speaker
    wav(root / "lablaut" / "03a01Fa.wav")  # outside wav/
    wav(root / "wav" / "03a01Xa.wav")  # emotion letter outside the table
    (root / "wav" / "03a02Fa.wav").write_bytes(b"")  # empty file
    (root / "wav" / "03a01Fa.lab").write_text("not audio")  # ignored
    out = prepare("emodb", root, tmp_path)
    sups = by_id(out)
    assert len(sups) == 10 and out["summary"].skipped == {"layout": 3, "label": 1, "empty file": 1}
    s = sups["emodb_09a04La"]
    assert (s.speaker, s.gender, s.language, s.custom["emotion"], s.custom["intensity"]) == (
        "09",
        "F",
        "de",
        "boredom",
        None,
    )
    assert s.text == "Heute abend könnte ich es ihm sagen." and s.custom["phones"][:3] == ["h", "ɔø", "t"]
    assert sups["emodb_03a01Fa"].gender == "M" and sups["emodb_03a01Fa"].custom["emotion"] == "happy"
    assert sups["emodb_16b10Nc"].custom["intensity"] == 0.0
    folds = get_corpus("emodb").protocol()
    assert_speaker_independent(folds, ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"])
    for f in folds.values():
        assert len(f["test"]) == 2 and len(f["dev"]) == 2 and len(f["train"]) == 6


def test_emodb_recipe_stages_0_to_3(tmp_path):
    root = fake_emodb(tmp_path / "emodb")
    recipe = run_recipe("emodb", tmp_path, "--corpus-dir", str(root))
    splits = json.loads((recipe / "data/fbank/emodb_splits.json").read_text())
    assert splits["fold0_test"]["cuts"] == 2 and splits["fold0_dev"]["cuts"] == 2 and splits["fold0_train"]["cuts"] == 6
    assert splits["fold0_train"]["with_phones"] == 6 and splits["fold0_train"]["with_gender"] == 6
    assert splits["fold3_test"]["emotion"] == {"sad": 1, "angry": 1}  # 12b01Ta, 14b03Wb


# ----------------------------------------------------------------------------------- CREMA-D


def fake_cremad(root, demographics=True):
    names = ("1001_DFA_ANG_XX", "1002_IEO_HAP_HI", "1003_TIE_SAD_LO", "1004_IOM_NEU_XX", "1005_IWW_FEA_MD")
    for k, name in enumerate(names):
        wav(root / "AudioWAV" / f"{name}.wav", freq=130 + 20 * k)
    if demographics:
        (root / "VideoDemographics.csv").write_text(
            "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n1002,21,Female,Caucasian,Not Hispanic\n"
            "1003,21,Female,Caucasian,Not Hispanic\n1004,42,Female,Caucasian,Not Hispanic\n"
        )
    return root


def test_cremad(tmp_path):
    root = fake_cremad(tmp_path / "cremad")
    wav(root / "AudioWAV" / "1001_ABC_ANG_XX.wav")  # unknown sentence
    wav(root / "AudioWAV" / "1001_DFA_BOR_XX.wav")  # emotion outside the table
    wav(root / "AudioWAV" / "1002_DFA_ANG_ZZ.wav")  # level outside the table
    out = prepare("cremad", root, tmp_path)
    sups = by_id(out)
    assert len(sups) == 5 and out["summary"].skipped == {"layout": 1, "label": 2}
    assert out["summary"].notes["actor not in demographics"] == 1
    intensity = {i: s.custom["intensity"] for i, s in sups.items()}
    assert intensity == {
        "cremad_1001_DFA_ANG_XX": None,
        "cremad_1002_IEO_HAP_HI": 1.0,
        "cremad_1003_TIE_SAD_LO": pytest.approx(1 / 3),
        "cremad_1004_IOM_NEU_XX": 0.0,
        "cremad_1005_IWW_FEA_MD": pytest.approx(2 / 3),
    }
    assert [sups[f"cremad_{a}"].gender for a in ("1001_DFA_ANG_XX", "1002_IEO_HAP_HI", "1005_IWW_FEA_MD")] == [
        "M",
        "F",
        None,
    ]
    s = sups["cremad_1001_DFA_ANG_XX"]
    assert s.text == "Don't forget a jacket" and s.custom["phones"] == [
        "D",
        "OW",
        "N",
        "T",
        "F",
        "ER",
        "G",
        "EH",
        "T",
        "AH",
        "JH",
        "AE",
        "K",
        "AH",
        "T",
    ]
    assert s.custom["emotion"] == "angry" and s.speaker == "1001"
    # Without the demographics file every gender is None, never guessed.
    bare = get_corpus("cremad").prepare(fake_cremad(tmp_path / "bare", demographics=False), None, progress=False)
    assert all(s.gender is None for s in bare["supervisions"])
    actors = [str(n) for n in range(1001, 1092)]
    folds = get_corpus("cremad").protocol()
    assert_speaker_independent(folds, actors)
    assert [len(f["test"]) for f in folds.values()] == [19, 18, 18, 18, 18] and len(folds["fold0"]["dev"]) == 9
    balanced = get_corpus("cremad").protocol(corpus_dir=str(root))
    assert_speaker_independent(balanced, actors)
    assert balanced != folds


# ----------------------------------------------------------------------------------- custom

MAPPING = """\
name: seqd
language: zh
emotions:
  开心: happy
  生气: angry
  平静: neutral
  其他: null
intensity_levels:
  弱: 0.5
  强: 1.0
"""


def fake_custom(root, split=True):
    for spk in ("s1", "s2", "s3", "s4"):
        for k in range(2):
            wav(root / "wav" / spk / f"{k}.wav", freq=150 + 25 * k)
    outside = wav(root.parent / "elsewhere" / "x.wav")  # an absolute path
    rows = [
        ("wav/s1/0.wav", "s1", "开心", "强", "F", "", "你好", "train"),
        ("wav/s1/1.wav", "s1", "平静", "0.7", "female", "", "", "train"),
        ("wav/s2/0.wav", "s2", "生气", "0.25", "M", "en", "Hello there", "dev"),
        ("wav/s2/1.wav", "s2", "其他", "", "", "", "", "dev"),
        ("wav/s3/0.wav", "s3", "开心", "弱", "M", "", "", "test"),
        ("wav/s3/1.wav", "", "开心", "", "M", "", "", "test"),  # missing speaker
        ("wav/s4/9.wav", "s4", "开心", "", "", "", "", "test"),  # no such file
        ("wav/s4/0.wav", "s4", "惊讶", "", "", "", "", "test"),  # label outside the mapping
        ("wav/s4/1.wav", "s4", "开心", "medium", "", "", "", "test"),  # intensity neither level nor number
        (str(outside), "s4", "开心", "", "", "", "", "holdout"),  # bad split
    ]
    header = ["path", "speaker", "emotion", "intensity", "gender", "language", "text", "split"]
    if not split:
        header, rows = header[:-1], [r[:-1] for r in rows]
    lines = ["\t".join(header)] + ["\t".join(r) for r in rows] + ["wav/s4/0.wav\ts4"]  # a row with missing columns
    (root / "metadata.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "labels.yaml").write_bytes(MAPPING.encode("gb18030"))
    return root


def test_custom(tmp_path):
    root = fake_custom(tmp_path / "inhouse")
    out = prepare("custom", root, tmp_path)
    sups = by_id(out)
    assert sorted(sups) == ["seqd_wav_s1_0", "seqd_wav_s1_1", "seqd_wav_s2_0", "seqd_wav_s2_1", "seqd_wav_s3_0"]
    assert out["summary"].skipped == {"row": 4, "label": 2}
    assert (tmp_path / "custom_manifests" / "custom_supervisions_all.jsonl.gz").is_file()
    a = sups["seqd_wav_s1_0"]
    assert (a.speaker, a.gender, a.language, a.text) == ("s1", "F", "zh", "你好")
    assert (a.custom["corpus"], a.custom["emotion"], a.custom["intensity"], a.custom["split"]) == (
        "seqd",
        "happy",
        1.0,
        "train",
    )
    assert a.custom["phones"] == ["n", "i3", "h", "ao3"]
    assert sups["seqd_wav_s1_1"].custom["intensity"] == 0.0  # neutral is 0 whatever the row says
    b = sups["seqd_wav_s2_0"]
    assert (b.language, b.custom["intensity"], b.custom["phones"][:2]) == ("en", 0.25, ["HH", "AH"])
    assert sups["seqd_wav_s2_1"].custom["emotion"] is None and sups["seqd_wav_s2_1"].gender is None
    assert sups["seqd_wav_s3_0"].custom["intensity"] == 0.5
    folds = get_corpus("custom").protocol(tsv=str(root / "metadata.tsv"))
    assert list(folds) == [""]
    assert {i for i, s in sups.items() if folds[""]["dev"](s)} == {"seqd_wav_s2_0", "seqd_wav_s2_1"}
    si = get_corpus("custom").protocol(corpus_dir=str(root), kind="si")
    assert list(si) == ["fold0", "fold1", "fold2", "fold3"]
    assert_speaker_independent(si, ["s1", "s2", "s3", "s4"])


def test_custom_bad_input(tmp_path):
    root = fake_custom(tmp_path / "inhouse", split=False)
    with pytest.raises(SpeechEQError, match=r"metadata\.tsv:7: missing speaker"):
        get_corpus("custom").prepare(root, None, on_error="stop", progress=False)
    assert list(get_corpus("custom").protocol(tsv=str(root / "metadata.tsv"))) == ["fold0", "fold1", "fold2", "fold3"]
    (root / "labels.yaml").write_text("emotions: {开心: happy\n  生气 angry\n")
    with pytest.raises(SpeechEQError, match=r"labels\.yaml:\d+: malformed YAML"):
        get_corpus("custom").prepare(root, None, progress=False)
    (root / "labels.yaml").write_text("emotions:\n  开心: joy\n")
    with pytest.raises(SpeechEQError, match=r"labels\.yaml: .*'joy', which is not a unified category"):
        get_corpus("custom").prepare(root, None, progress=False)
    (root / "labels.yaml").write_text("emotion:\n  开心: happy\n")
    with pytest.raises(SpeechEQError, match=r"labels\.yaml: unknown key\(s\) emotion"):
        get_corpus("custom").prepare(root, None, progress=False)
    (root / "labels.yaml").write_text("name: ravdess\nemotions:\n  开心: happy\n")
    with pytest.raises(SpeechEQError, match="built-in corpus"):
        get_corpus("custom").prepare(root, None, progress=False)
    (root / "labels.yaml").write_text(MAPPING)
    (root / "metadata.tsv").write_text("file\tspeaker\temotion\nwav/s1/0.wav\ts1\t开心\n")
    with pytest.raises(SpeechEQError, match=r"metadata\.tsv:1: header lacks column\(s\) path"):
        get_corpus("custom").prepare(root, None, progress=False)
    (root / "labels.yaml").write_text(MAPPING)
    (root / "metadata.tsv").write_text(
        "id\tpath\tspeaker\temotion\nu1\twav/s1/0.wav\ts1\t开心\nu1\twav/s1/1.wav\ts1\t开心\n"
    )
    with pytest.raises(SpeechEQError, match="duplicate utterance id 'seqd_u1'"):
        get_corpus("custom").prepare(root, None, progress=False)
    with pytest.raises(SpeechEQError, match="at least 3 speakers"):
        get_corpus("custom").protocol(tsv=str(root / "metadata.tsv"))


def test_balanced_folds_interleave_groups():
    speakers = [f"s{k}" for k in range(10)]
    folds = balanced_folds(speakers, 5, {s: "F" if int(s[1:]) < 5 else "M" for s in speakers})
    assert_speaker_independent(folds, speakers)
    assert all(len({int(s[1:]) < 5 for s in f["test"]}) == 2 for f in folds.values())


# ----------------------------------------------------------------------------------- local/ scripts


def run_script(name, *args, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [name, *args])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(REPO / "local" / name), run_name="__main__")
    return e.value.code, capsys.readouterr().err


def test_scripts_reject_options_a_corpus_does_not_take(tmp_path, monkeypatch, capsys):
    code, err = run_script(
        "prepare.py",
        "--corpus",
        "emodb",
        "--corpus-dir",
        str(tmp_path),
        "--transcripts",
        "t.txt",
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert code == 1 and "ERROR: corpus emodb takes no --transcripts" in err
    code, err = run_script(
        "validate.py", "--corpus", "emodb", "--protocol", "official", monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 1 and "ERROR: corpus emodb takes no --protocol" in err


def test_corpus_options_are_keywords_of_the_functions_they_feed():
    import inspect

    from speecheq.corpora import CORPORA

    for name, corpus in CORPORA.items():
        for stage, function in (("prepare", corpus.prepare), ("validate", corpus.module.protocol)):
            accepted = inspect.signature(function).parameters
            for flag, (keyword, help) in corpus.options(stage).items():
                assert keyword in accepted and help, (name, stage, flag)


def imported_modules(path):
    import ast

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_corpora_sit_below_data_and_features():
    # Every import, also those inside functions: the validate stage (speecheq.splits) sits above
    # corpora, data and features, so preparing a corpus never needs torch or feature extraction.
    for path in sorted((REPO / "speecheq" / "corpora").glob("*.py")):
        for module in imported_modules(path):
            for above in ("speecheq.data", "speecheq.features", "speecheq.splits"):
                assert module != above and not module.startswith(above + "."), f"{path.name} imports {module}"


def test_prepare_corpus_passes_options_and_ids_carry_the_corpus(tmp_path):
    root, transcripts = fake_casia(tmp_path / "casia", emotions=("sad",), numbers=("201",))
    summary = prepare_corpus("casia", root, tmp_path / "m", transcripts=str(transcripts), g2p=None, progress=False)
    assert summary.kept == 4
    from lhotse import load_manifest

    sups = load_manifest(tmp_path / "m" / "casia_supervisions_all.jsonl.gz")
    assert all(s.id.startswith("casia_") and s.text == "我们去公园吧。" for s in sups)
