"""The inference graph and the three engines that run it: eager, TorchScript, ONNX.

:class:`InferenceGraph` is what every engine runs and what ``speecheq.export`` writes,
so the names of its inputs and outputs, the engine files' names and the metadata
keys that tie an engine file to its package's weights are defined here once, for
the writer (export) and the readers (infer, from_pretrained) alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import torch

from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike
from speecheq.model import MIN_EXPORT_FRAMES, MIN_INPUT_FRAMES, SpeechEQModel
from speecheq.package import Package
from speecheq.tasks import readout_order

ENGINES = ("eager", "torchscript", "onnx")
#: Outputs of :class:`InferenceGraph` for the built-in tasks, in order (also the ONNX output names):
#: each evaluated task's inference outputs, in speecheq.tasks.readout_order.
INFERENCE_OUTPUTS = tuple(name for task in readout_order() for name, _, _ in task.inference_outputs())
INFERENCE_INPUTS = ("features", "feature_lens")
#: Files that ``local/export.py --torchscript --onnx`` writes next to the package.
ENGINE_FILES = {"torchscript": "model.ts.pt", "onnx": "model.onnx"}
#: The TorchScript extra file (and ONNX metadata entry) holding :func:`engine_metadata` as JSON.
EXTRA_FILE = "speecheq.json"
#: The ONNX metadata entry holding the weight fingerprint, readable without parsing JSON.
FINGERPRINT_KEY = "speecheq_fingerprint"


class InferenceGraph(torch.nn.Module):
    """The model as inference reads it: probabilities instead of logits, a tuple instead of a dict.

    Every engine (eager, TorchScript, ONNX) runs this same module, so their outputs
    can be compared one to one and the readout code is shared.
    """

    def __init__(self, model: SpeechEQModel):
        super().__init__()
        self.model = model
        heads = {t.name for t in model.utterance_heads.tasks}
        self.tasks = [t for t in readout_order() if t.frame_level or t.name in heads]

        #: (name, model output key, transform) of each output, in order.
        self.outputs = [spec for task in self.tasks for spec in task.inference_outputs()]

    @property
    def output_names(self) -> List[str]:
        """The names of the tuple forward() returns (for the built-in tasks, INFERENCE_OUTPUTS)."""
        return [name for name, _, _ in self.outputs]

    def forward(self, features: torch.Tensor, feature_lens: torch.Tensor):
        out = self.model(features, feature_lens)
        return tuple(_TRANSFORMS[transform](out[key]) for _, key, transform in self.outputs)


# What the graph gives instead of a model output (speecheq.tasks.Task.inference_outputs):
# probabilities instead of logits, and float32 whatever precision the model ran in.
_TRANSFORMS = {
    "softmax": lambda x: torch.softmax(x.float(), dim=-1),
    "float": lambda x: x.float(),
    "as_is": lambda x: x,
}


def engine_path(package_path: Pathlike, engine: str) -> Path:
    """Engine files sit next to a single-file package, and inside a package folder."""
    path = Path(package_path)
    return path / ENGINE_FILES[engine] if path.is_dir() else path.with_name(ENGINE_FILES[engine])


def engine_metadata(package: Package) -> dict:
    """What an engine file says about itself (:data:`EXTRA_FILE`); ``fingerprint`` is what readers check."""
    return {
        "fingerprint": package.fingerprint,
        "speecheq_version": package.version,
        "inputs": list(INFERENCE_INPUTS),
        "outputs": InferenceGraph(package.model).output_names,
        "categories": package.categories,
        "ctc_units": package.ctc_units,
        "min_frames": MIN_EXPORT_FRAMES,
    }


class Engine:
    """Maps padded fbank (B, T, F) and lengths to INFERENCE_OUTPUTS as CPU tensors."""

    name = "?"
    min_frames = MIN_INPUT_FRAMES
    #: The name of each output, in the order run() gives them.
    output_names: List[str] = list(INFERENCE_OUTPUTS)

    def __call__(self, feats: torch.Tensor, lens: torch.Tensor) -> List[torch.Tensor]:
        if lens.numel() and int(lens.min()) < MIN_INPUT_FRAMES:
            # Caught here, for every engine: ONNX would fail deep inside a Conv node, or give NaN once padded.
            n = int(lens.min())
            raise SpeechEQError(
                f"an input of {n} feature frames is shorter than the model's minimum of {MIN_INPUT_FRAMES} frames"
            )
        if feats.shape[1] < self.min_frames:
            # Padding never changes a result (docs/model.md), so a short batch is padded up to what the graph takes.
            # Frames (B, T, F) or audio samples (B, N): the second axis is time either way.
            pad = (0, 0) * (feats.dim() - 2) + (0, self.min_frames - feats.shape[1])
            feats = torch.nn.functional.pad(feats, pad)
        return self.run(feats, lens)

    def run(self, feats: torch.Tensor, lens: torch.Tensor) -> List[torch.Tensor]:
        raise NotImplementedError


class EagerEngine(Engine):
    name = "eager"

    def __init__(self, package: Package, device):
        self.device = torch.device(device)
        self.graph = InferenceGraph(package.model.to(self.device)).eval()
        self.output_names = self.graph.output_names

    def run(self, feats, lens):
        with torch.inference_mode():
            out = self.graph(feats.to(self.device), lens.to(self.device))
        return [o.cpu() for o in out]


def _check_fingerprint(path: Path, found: Optional[str], package: Package) -> None:
    if found != package.fingerprint:
        raise SpeechEQError(
            f"{path} was exported from other weights (fingerprint {found}, package "
            f"{package.fingerprint}); re-export: local/export.py --package {package.path} --torchscript --onnx"
        )


class TorchScriptEngine(Engine):
    name = "torchscript"
    min_frames = MIN_EXPORT_FRAMES

    def __init__(self, package: Package, path: Path, device):
        import warnings

        if torch.device(device).type != "cpu":
            # A trace records the device of the tensors it creates (masks, positions): it runs where it was traced.
            raise SpeechEQError(
                "the TorchScript engine runs on CPU (it was traced there); use --engine eager or onnx on GPU"
            )
        if not path.is_file():
            raise SpeechEQError(
                f"{path} not found; write it with local/export.py --package {package.path} --torchscript"
            )
        extra = {EXTRA_FILE: ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
            except Exception as e:
                raise SpeechEQError(f"{path}: not a readable TorchScript file ({type(e).__name__})") from None
        try:
            meta = json.loads(extra[EXTRA_FILE] or "{}")
        except ValueError:
            meta = {}
        _check_fingerprint(path, meta.get("fingerprint"), package)
        self.output_names = list(meta.get("outputs") or INFERENCE_OUTPUTS)

    def run(self, feats, lens):
        with torch.inference_mode():
            return [o.cpu() for o in self.module(feats, lens)]


class OnnxEngine(Engine):
    name = "onnx"
    min_frames = MIN_EXPORT_FRAMES

    def __init__(self, package: Package, path: Path, device, num_threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise SpeechEQError("--engine onnx needs onnxruntime (pip install 'speecheq[export]')") from None
        if not path.is_file():
            raise SpeechEQError(f"{path} not found; write it with local/export.py --package {package.path} --onnx")
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise SpeechEQError("this onnxruntime has no CUDA provider (install onnxruntime-gpu) ")
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        # Idle onnxruntime threads spin by default and starve the fbank front-end, which runs in between.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if num_threads > 0:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:
            raise SpeechEQError(f"{path}: not a readable ONNX model ({type(e).__name__}: {str(e)[:120]})") from None
        _check_fingerprint(path, self.session.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY), package)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feats, lens):
        inputs = dict(zip(INFERENCE_INPUTS, (feats.numpy(), lens.numpy())))
        try:
            out = self.session.run(self.output_names, inputs)
        except Exception as e:  # onnxruntime's messages name graph nodes; the first line is enough
            raise SpeechEQError(
                f"onnxruntime failed on a batch of shape {tuple(feats.shape)}: "
                f"{(str(e).strip().splitlines() or [type(e).__name__])[0][:200]}"
            ) from None
        return [torch.from_numpy(o) for o in out]


def make_engine(package: Package, engine: str = "eager", device="cpu", num_threads: int = 0) -> Engine:
    if engine == "eager":
        return EagerEngine(package, device)
    if engine == "torchscript":
        return TorchScriptEngine(package, engine_path(package.path, "torchscript"), device)
    if engine == "onnx":
        return OnnxEngine(package, engine_path(package.path, "onnx"), device, num_threads)
    raise SpeechEQError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
