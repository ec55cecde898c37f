"""--help of every stage script and recipe: each option says what it does, and no script
imports torch to say it (issue #13: help must come back at once on a loaded machine)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Catches the parsers that --help builds in this process; help_of(run) gives (exit code, stdout).
SPY = r"""
import argparse, contextlib, io, json, runpy, sys
parsers = []
parse_args = argparse.ArgumentParser.parse_args
def spy(self, *a, **k):
    parsers.append(self)
    return parse_args(self, *a, **k)
argparse.ArgumentParser.parse_args = spy
def help_of(run):
    out, code = io.StringIO(), None
    try:
        with contextlib.redirect_stdout(out):
            run()
    except SystemExit as e:
        code = e.code
    return code, out.getvalue()
def no_help():
    return [a.option_strings[-1] for p in parsers for a in p._actions if a.option_strings and not a.help]
"""

# Runs one script's --help, then reports whether torch got imported and which options have no help text.
PROBE = (
    SPY
    + r"""
sys.argv = [sys.argv[1], "--help"]
code, text = help_of(lambda: runpy.run_path(sys.argv[0], run_name="__main__"))
print(json.dumps({"code": code, "torch": "torch" in sys.modules, "parsers": len(parsers), "text": text,
                  "no_help": no_help()}))
"""
)


def probe(code: str, *args: str) -> dict:
    """Runs ``code`` in a fresh interpreter (so torch's import is seen) and reads its last line, JSON."""
    r = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


SCRIPTS = sorted((REPO / "local").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_stage_script_help_describes_every_option_without_importing_torch(script):
    found = probe(PROBE, str(script))
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


# Every `speecheq COMMAND --help` in one process (one interpreter start for all), next to the
# help of the local/ script that mirrors it; reports the options each parser has.
CLI_PROBE = (
    SPY
    + r"""
from speecheq.cli import COMMANDS, main
found = {}
for name, command in COMMANDS.items():
    del parsers[:]
    code, text = help_of(lambda: main([name, "--help"]))
    options = [o for p in parsers for a in p._actions if a.help != argparse.SUPPRESS for o in a.option_strings]
    found[name] = {"code": code, "text": text, "parsers": len(parsers), "options": options, "no_help": no_help()}
    if command.local:
        sys.argv = [command.local, "--help"]
        found[name]["local"] = help_of(lambda: runpy.run_path(command.local, run_name="__main__"))
    found[name]["torch"] = "torch" in sys.modules
print(json.dumps({"commands": found, "top": help_of(lambda: main(["--help"]))}))
"""
)


@pytest.fixture(scope="module")
def cli_help():
    return probe(CLI_PROBE)


def test_cli_lists_every_command_with_its_stage_script(cli_help):
    code, text = cli_help["top"]
    assert code == 0 and text.startswith("usage: speecheq")
    for name in ("prepare", "lang", "fbank", "validate", "train", "decode", "align", "baseline", "fuse", "export"):
        assert name in cli_help["commands"]
    for name, found in cli_help["commands"].items():
        assert f"\n  {name} " in text, f"speecheq --help does not list {name}"


def test_every_cli_command_help_describes_its_options_without_importing_torch(cli_help):
    for name, found in cli_help["commands"].items():
        assert found["code"] == 0 and found["parsers"] == 1, name
        assert found["text"].startswith(f"usage: speecheq {name} "), found["text"][:200]
        assert not found["torch"], f"speecheq {name} --help imported torch"
        assert found["no_help"] == [], f"speecheq {name}: options without a help text: {found['no_help']}"
        missing = [o for o in found["options"] if o not in found["text"]]
        assert len(found["options"]) > 1 and missing == [], f"speecheq {name} --help does not list {missing}"


def test_cli_command_and_its_stage_script_share_one_parser(cli_help):
    # Same help text but for the program's name: one parser, not two kept in step by hand.
    from speecheq.cli import COMMANDS

    for name, found in cli_help["commands"].items():
        local = COMMANDS[name].local
        if not local:
            continue
        code, text = found["local"]
        assert code == 0 and text.startswith(f"usage: {local} ")
        # the usage line wraps at another column when the program's name is longer
        assert text.replace(local, f"speecheq {name}").split() == found["text"].split(), name
