"""Export a package's inference graph to TorchScript and ONNX, checked against eager.

Both exports take raw fbank ``(B, T, 80)`` and ``feature_lens (B,)`` and return
:data:`speecheq.engines.INFERENCE_OUTPUTS` with a dynamic batch and length:

* **TorchScript** by ``torch.jit.trace(strict=False)``: the eval forward has no
  Python branch on tensor values (docs/model.md), so a trace at one shape follows
  any other. torch 2.13 marks ``torch.jit`` deprecated; it still works, and it is
  the format C++/libtorch deployments load without Python.
* **ONNX** by the dynamo exporter (``torch.onnx.export(dynamo=True)``, needs
  onnxscript) with the dynamic axes named ``batch`` and ``frames``, and flat
  sherpa-onnx-style metadata (:func:`onnx_metadata`). torch.export specialises
  dimensions of size 1, so the graph needs T >= ``MIN_EXPORT_FRAMES`` (11) frames;
  the inference front-end pads shorter batches (padding never changes a result).

Each file carries the package's weight fingerprint, so ``speecheq infer`` refuses
an engine file left over from another package. Every export is compared with the
eager model at lengths and a batch size other than the example's before it is
kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike, atomic_output
from speecheq.model import MIN_EXPORT_FRAMES, MIN_INPUT_FRAMES
from speecheq.engines import (
    EXTRA_FILE,
    FINGERPRINT_KEY,
    INFERENCE_INPUTS,
    EagerEngine,
    InferenceGraph,
    OnnxEngine,
    TorchScriptEngine,
    engine_metadata,
    engine_path,
)
from speecheq.package import Package, load_package, package_from_exp, save_package

log = logging.getLogger("speecheq")

# Example shape for tracing/export: lengths differ so that no mask logic is specialised away.
EXAMPLE_LENS = (200, 150)
TOLERANCE = 1e-4


def example_inputs(num_mel_bins: int, lens: Sequence[int] = EXAMPLE_LENS, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(len(lens), max(lens), num_mel_bins, generator=g) * 3.0 - 8.0
    return feats, torch.tensor(list(lens), dtype=torch.long)


def package_inputs(package: Package, lens: Sequence[int] = EXAMPLE_LENS, seed: int = 0):
    """:func:`example_inputs` in what the package's model reads: for an ssl model, audio samples
    lasting as long as ``lens`` of its frames (its graph is traced over the waveform)."""
    front_end = package.front_end
    if not front_end.reads_audio:
        return example_inputs(package.config.num_mel_bins, lens, seed)
    per_frame = front_end.frame_shift * front_end.sampling_rate
    samples = [int(round(n * per_frame)) for n in lens]
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(samples), max(samples), generator=g) * 0.1, torch.tensor(samples, dtype=torch.long)


#: Version of the flat ONNX metadata below; a reader can refuse a layout it does not know.
ONNX_METADATA_VERSION = 1


def onnx_metadata(package: Package) -> Dict[str, str]:
    """sherpa-onnx-style metadata: flat string keys, so that a reader without speecheq (C++,
    examples/onnx_infer.py) can rebuild the front end and read the outputs. Lists are joined
    by "," (categories) or " " (tokens: a CTC symbol never holds whitespace, as in tokens.txt)."""
    from speecheq.features import TRIM_MARGIN, default_front_end, spectral_dims
    from speecheq.model import SUBSAMPLING_FACTOR

    cfg = package.feature_config
    lhotse_cfg = dict(cfg.get("lhotse") or {})
    fbank = lhotse_cfg.get("fbank", lhotse_cfg)  # fbank-pitch nests lhotse's FbankConfig
    graph = InferenceGraph(package.model)
    trained = [t.name for t in graph.tasks if package.has_task(t.name)]
    meta = {
        "model_type": "speecheq",
        "version": str(ONNX_METADATA_VERSION),
        "comment": "speech emotion recognition: emotion category, intensity, gender, CTC tokens (ctc_units)",
        "speecheq_version": package.version,
        "package_format_version": str(package.format_version),
        "weights": str(package.source.get("weights", "")),
        "epoch": str(package.source.get("epoch", "")),
        "sample_rate": str(package.sampling_rate),
        "feature_type": str(cfg.get("extractor", "fbank")),
        "feature_dim": str(package.config.num_mel_bins),
        "num_mel_bins": str(spectral_dims(str(cfg.get("extractor", "fbank")), package.config.num_mel_bins)),
        "frame_shift_ms": f"{1000 * float(cfg['frame_shift']):g}",
        "frame_length_ms": f"{1000 * float(cfg['frame_length']):g}",
        # The extractor's full lhotse to_dict(): FeatureExtractor.from_dict() rebuilds it exactly.
        "feature_config": json.dumps(lhotse_cfg, sort_keys=True),
        "trim_silence_db": f"{package.trim_silence_db:g}",
        "trim_margin_s": f"{TRIM_MARGIN:g}",
        "speaker_cmvn": str(int(package.speaker_cmvn)),
        "categories": ",".join(package.categories),
        # A classifying task's class names, e.g. gender_labels = "M,F".
        **{f"{t.name}_labels": ",".join(t.classes) for t in graph.tasks if getattr(t, "classes", ())},
        "tasks": ",".join(trained),
        "tokens": " ".join(package.tokens or []),
        # What the tokens spell (phone, char, bpe): only phone strings can be aligned or read as phones.
        "ctc_units": package.ctc_units,
        "min_frames": str(MIN_INPUT_FRAMES),
        "min_padded_frames": str(MIN_EXPORT_FRAMES),
        "subsampling_factor": str(SUBSAMPLING_FACTOR),
        "encoder_frame_shift_ms": f"{1000 * package.frame_shift:g}",
        "inputs": ",".join(INFERENCE_INPUTS),
        "outputs": ",".join(graph.output_names),
    }
    if package.front_end.reads_audio:
        # The graph reads (B, N) audio samples; its encoder makes frames of frame_shift_ms, one per CTC frame.
        for key in ("min_frames", "min_padded_frames"):
            del meta[key]
        meta.update(input_kind="audio", min_samples=str(package.model.min_input_length), subsampling_factor="1")
        # Its frames hold no energy: silence is trimmed on the fbank stage's default fbank of the audio, as
        # speecheq infer trims it; named here so that a reader rebuilds it with FeatureExtractor.from_dict().
        meta["trim_feature_config"] = json.dumps(default_front_end().extractor("cpu").to_dict(), sort_keys=True)
    for key in (
        "dither",
        "window_type",
        "snip_edges",
        "low_freq",
        "high_freq",
        "preemph_coeff",
        "remove_dc_offset",
        "round_to_power_of_two",
        "energy_floor",
        "use_energy",
        "raw_energy",
    ):
        if key in fbank:  # the options kaldi-native-fbank users set by hand
            value = fbank[key]
            meta[key] = str(int(value)) if isinstance(value, bool) else str(value)
    return meta


@contextlib.contextmanager
def _quiet_export():
    """torch.jit's deprecation notices and the ONNX exporter's chatter are not the user's concern."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message=".*torchvision.*")
        # Named dims: the exporter notes that feature_lens' batch axis is features' batch axis.
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used.*")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def export_torchscript(package: Package, path: Pathlike) -> Path:
    graph = InferenceGraph(package.model.cpu()).eval()
    feats, lens = package_inputs(package)
    with _quiet_export(), torch.no_grad():
        traced = torch.jit.trace(graph, (feats, lens), strict=False, check_trace=False)
        with atomic_output(path) as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={EXTRA_FILE: json.dumps(engine_metadata(package))})
    return Path(path)


def export_onnx(package: Package, path: Pathlike, opset: Optional[int] = None) -> Path:
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise SpeechEQError("ONNX export needs onnxscript (pip install 'speecheq[export]')") from None
    from torch.export import Dim

    graph = InferenceGraph(package.model.cpu()).eval()
    feats, lens = package_inputs(package)
    # Named dims become the ONNX axis names (Dim.DYNAMIC would give "s71"); the output axes follow
    # from them (ctc_log_probs: "((frames - 3)//4)").
    if package.front_end.reads_audio:
        frames = Dim("samples", min=package.model.min_input_length)
    else:
        frames = Dim("frames", min=MIN_EXPORT_FRAMES)
    batch = Dim("batch")
    dynamic = {"features": {0: batch, 1: frames}, "feature_lens": {0: batch}}
    with _quiet_export(), torch.no_grad():
        try:
            program = torch.onnx.export(
                graph,
                (feats, lens),
                dynamo=True,
                dynamic_shapes=dynamic,
                input_names=list(INFERENCE_INPUTS),
                output_names=graph.output_names,
                opset_version=opset,
                verbose=False,
            )
        except Exception as e:  # the exporter's errors are long; the first line says what failed
            raise SpeechEQError(f"ONNX export failed: {str(e).strip().splitlines()[0][:300]}") from None
    program.model.metadata_props.update(onnx_metadata(package))
    program.model.metadata_props[FINGERPRINT_KEY] = package.fingerprint
    program.model.metadata_props[EXTRA_FILE] = json.dumps(engine_metadata(package))
    with atomic_output(path) as tmp:
        # One self-contained file: weights inline (these models are far below protobuf's 2 GB limit).
        program.save(str(tmp), external_data=False)
    return Path(path)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: one number per output, scale-free for log-probs and probabilities alike."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-6)) if a.size else 0.0


def compare_with_eager(
    package: Package, engine: str, path: Pathlike, lens: Sequence[int] = (313, 97, MIN_EXPORT_FRAMES)
) -> Dict[str, float]:
    """Relative error of each output of an exported engine against eager, at lengths
    and a batch size the export never saw (including the shortest it supports). The file
    is read by the engine ``speecheq infer`` uses, so its fingerprint is checked too."""
    feats, lens_t = package_inputs(package, lens, seed=1)
    ref = EagerEngine(package, "cpu")(feats, lens_t)
    exported = (
        TorchScriptEngine(package, Path(path), "cpu")
        if engine == "torchscript"
        else OnnxEngine(package, Path(path), "cpu")
    )
    got = exported(feats, lens_t)
    return {name: relative_error(g.numpy(), r.numpy()) for name, g, r in zip(exported.output_names, got, ref)}


def export_engines(
    package_path: Pathlike, torchscript: bool = True, onnx: bool = True, check: bool = True
) -> Dict[str, Path]:
    """Write model.ts.pt / model.onnx next to a package; each is checked against eager first."""
    package = load_package(package_path)
    written = {}
    for engine, wanted, fn in (("torchscript", torchscript, export_torchscript), ("onnx", onnx, export_onnx)):
        if not wanted:
            continue
        path = engine_path(package_path, engine)
        fn(package, path)
        if check:
            errors = compare_with_eager(package, engine, path)
            worst = max(errors.values())
            if not worst < TOLERANCE:
                path.unlink(missing_ok=True)
                raise SpeechEQError(
                    f"{engine} export differs from the eager model (relative errors {errors}); removed {path}"
                )
            log.info("%s: %s (max relative error vs eager %.1e)", engine, path, worst)
        written[engine] = path
    return written


def export(
    output: Pathlike,
    *,
    exp_dir: Optional[Pathlike] = None,
    epoch: int = 0,
    avg: int = 1,
    use_averaged_model: bool = False,
    checkpoint: str = "",
    corpora: Optional[Sequence[str]] = None,
    extractor: str = "fbank",
    torchscript: bool = False,
    onnx: bool = False,
    trim_silence_db: Optional[float] = None,
    convert: Optional[Pathlike] = None,
) -> Dict[str, Path]:
    """local/export.py and ``speecheq export``: package an exp dir's weights (when ``exp_dir``
    is given) or copy the package ``convert`` into ``output``'s layout, then optionally add the
    TorchScript / ONNX engines next to the package. An ``output`` without a .pt suffix is a
    Hugging Face-layout folder (speecheq.hf)."""
    from speecheq.hf import is_folder_path, save_package_dir

    output = Path(output)
    written: Dict[str, Path] = {}
    save = save_package_dir if is_folder_path(output) else save_package
    if convert is not None:
        from speecheq.package import _read_package_file

        save(_read_package_file(Path(convert)), output)
        log.info("package: %s (from %s)", output, convert)
        written["package"] = output
    elif exp_dir is not None:
        package = package_from_exp(
            exp_dir, epoch, avg, use_averaged_model, checkpoint, corpora, extractor, trim_silence_db
        )
        save(package, output)
        log.info(
            "package: %s (weights %s, %d categories, corpora %s, fingerprint %s)",
            output,
            package["source"]["weights"],
            len(package["categories"]),
            sorted(package["corpus_categories"]),
            package["fingerprint"],
        )
        written["package"] = output
    elif not output.exists():
        raise SpeechEQError(f"model package not found: {output} (give --exp-dir to create it)")
    if torchscript or onnx:
        written.update(export_engines(output, torchscript=torchscript, onnx=onnx))
    return written
