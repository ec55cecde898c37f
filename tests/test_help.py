"""--help of every stage script and recipe: each option says what it does, and no script
imports torch to say it (issue #13: help must come back at once on a loaded machine)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Runs one script's --help in this process, catching the parsers it builds, then reports
# whether torch got imported and which options have no help text.
PROBE = r"""
import argparse, contextlib, io, json, runpy, sys
parsers = []
parse_args = argparse.ArgumentParser.parse_args
def spy(self, *a, **k):
    parsers.append(self)
    return parse_args(self, *a, **k)
argparse.ArgumentParser.parse_args = spy
sys.argv = [sys.argv[1], "--help"]
out = io.StringIO()
code = None
try:
    with contextlib.redirect_stdout(out):
        runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules, "parsers": len(parsers), "text": out.getvalue(),
                  "no_help": [a.option_strings[-1] for p in parsers for a in p._actions
                              if a.option_strings and not a.help]}))
"""

SCRIPTS = sorted((REPO / "local").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_stage_script_help_describes_every_option_without_importing_torch(script):
    r = subprocess.run(
        [sys.executable, "-c", PROBE, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    found = json.loads(r.stdout.strip().splitlines()[-1])
    assert found["code"] == 0 and found["parsers"] == 1 and "usage:" in found["text"]
    assert not found["torch"], f"{script.name} --help imported torch"
    assert found["no_help"] == [], f"{script.name}: options without a help text: {found['no_help']}"


RECIPES = sorted(p.parent for p in (REPO / "egs").glob("*/run.sh"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_help_gives_every_option_a_description(recipe):
    r = subprocess.run(["bash", "run.sh", "--help"], cwd=recipe, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    options = [line for line in r.stdout.splitlines() if line.lstrip().startswith("--")]
    assert options, r.stdout
    # "  --name   [default]  what it does": a line that ends at its default has no description
    bare = [line.split()[0] for line in options if line.rstrip().endswith("]")]
    assert bare == [], f"{recipe.name}/run.sh: no comment next to the default of {bare}"
