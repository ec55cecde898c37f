"""The floors of the ``speecheq`` package: a module imports only from its own floor or a floor below.

FLOORS below is the one declaration; docs/architecture.md draws it, and a test here keeps that
drawing equal to it. Modules are read with ``ast`` (nothing is imported), every import counts,
also those inside functions. Names are relative to ``speecheq``: ``__init__`` is
``speecheq/__init__.py``; a package's name covers its ``__init__.py`` and its modules unless a
more specific entry names them (``corpora`` is the registry, ``corpora.*`` every corpus module).
Not seen: ``importlib.import_module`` strings (the only one is ``speecheq.model``'s lazy loader,
inside its own package).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "speecheq"
ARCHITECTURE = REPO / "docs" / "architecture.md"

# Bottom first: (title, names). Keep docs/architecture.md's drawing equal (test_the_drawing_is_floors).
# fmt: off
FLOORS = (
    ("foundations", ("__init__", "errors", "io", "labels", "tasks", "metrics", "plots", "curves", "executors")),
    ("signal, text, network", ("audio", "text", "model", "ctc", "options")),
    ("corpora, front end", ("corpora.*", "features", "pitch", "ge2e")),
    ("registry, batches, checkpoints", ("corpora", "splits", "augment", "data", "losses", "predict", "checkpoint")),
    ("stages", ("train", "decode", "align", "baseline", "fusion", "unified")),
    ("package, inference", ("package", "hf", "engines", "export", "inputs", "segments", "records", "infer", "pretrained")),
    ("entry points", ("cli",)),
)
# fmt: on

# (importer, imported) -> why it may point up. Each must stay inside a function, so that loading
# the lower module never loads the upper one; an entry that no longer occurs must go.
KNOWN_UPWARD = {
    ("__init__", "pretrained"): "speecheq.from_pretrained is a lazy facade: `import speecheq` stays torch-free",
    ("corpora.custom", "corpora"): "load_mapping refuses a YAML name that is a built-in corpus by reading the registry",
}


def module_names():
    """{name relative to speecheq: path} of every module of the package."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        names[".".join(parts)] = path
    return names


def relative(dotted: str) -> str:
    return "__init__" if dotted == "speecheq" else dotted.removeprefix("speecheq.")


def absolute(name: str) -> str:
    return "speecheq" if name == "__init__" else f"speecheq.{name}"


def covers(entry: str, name: str) -> bool:
    if entry.endswith(".*"):
        return name.startswith(entry[:-1])
    return name == entry or (entry != "__init__" and name.startswith(entry + "."))


def floor_of(name: str):
    """(floor index, entry) of the most specific entry covering ``name``, or None."""
    found = [
        (len(entry), i, entry) for i, (_, entries) in enumerate(FLOORS) for entry in entries if covers(entry, name)
    ]
    return max(found)[1:] if found else None


def imports_of(path: Path, names):
    """(line, imported module, inside a function) for every import of a speecheq module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    own = absolute(next(n for n, p in names.items() if p == path))
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    known = {absolute(n) for n in names}

    def module(dotted):  # the longest existing module: "speecheq.model.SpeechEQModel" -> "speecheq.model"
        while dotted not in known and "." in dotted:
            dotted = dotted.rpartition(".")[0]
        return dotted

    def visit(node, in_function):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            if target == "speecheq" or target.startswith("speecheq."):
                yield node.lineno, relative(module(target)), in_function
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inside)

    return list(visit(tree, False))


def upward_imports(names=None):
    """[(importer, line, imported, importer's floor, imported's floor, inside a function)]."""
    names = names or module_names()
    found = []
    for name, path in names.items():
        if floor_of(name) is None:  # test_every_module_has_a_floor_and_every_entry_a_module says so
            continue
        low = floor_of(name)[0]
        for line, target, in_function in imports_of(path, names):
            high = (floor_of(target) or (low,))[0]
            if target != name and high > low:
                found.append((name, line, target, low, high, in_function))
    return found


def test_every_module_has_a_floor_and_every_entry_a_module():
    names = module_names()
    unplaced = [n for n in names if floor_of(n) is None]
    assert not unplaced, f"add these modules to FLOORS (and docs/architecture.md): {unplaced}"
    entries = [e for _, floor in FLOORS for e in floor]
    assert len(entries) == len(set(entries)), "an entry on two floors"
    stale = [e for e in entries if not any(floor_of(n)[1] == e for n in names)]
    assert not stale, f"FLOORS names modules that do not exist: {stale}"


def test_no_module_imports_from_a_floor_above_it():
    names = module_names()
    unexpected = [
        f"speecheq/{names[name].relative_to(PACKAGE)}:{line} imports {absolute(target)} "
        f"(floor {high}, {FLOORS[high][0]}) from floor {low} ({FLOORS[low][0]})"
        for name, line, target, low, high, _ in upward_imports()
        if (name, target) not in KNOWN_UPWARD
    ]
    assert not unexpected, "\n".join(unexpected)


def test_known_upward_imports_are_lazy_and_still_there():
    found = {(name, target): in_function for name, _, target, _, _, in_function in upward_imports()}
    for pair, why in KNOWN_UPWARD.items():
        assert pair in found, f"{pair} no longer points up: remove it from KNOWN_UPWARD ({why})"
        assert found[pair], f"{pair} is a module-level import: loading the lower module loads the upper one"


def test_the_drawing_is_floors():
    drawn = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"\s*(\d+) \| ([^|]+?) +\| (.+)", line)
        if match:
            drawn[int(match[1])] = (match[2].strip(), tuple(match[3].split()))
    assert drawn == dict(enumerate(FLOORS)), "docs/architecture.md's drawing differs from FLOORS"


def test_an_upward_import_is_found(tmp_path):
    # The checker itself: labels (floor 0) importing train (floor 4) inside a function is reported.
    fake = tmp_path / "labels.py"
    fake.write_text("import os\n\n\ndef f():\n    from speecheq import train\n")
    names = {**module_names(), "labels": fake}
    assert ("labels", 5, "train", 0, 4, True) in upward_imports(names)
