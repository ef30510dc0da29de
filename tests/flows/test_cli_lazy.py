"""The CLI imports a sub-command's module only when that command runs (issue #11: --version took ~4 s)."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from laion_lake import cli


def test_command_table_matches_what_the_modules_register() -> None:
    for module in set(cli.COMMAND_MODULES.values()):
        commands = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).add_commands(commands)
        assert {name for name, owner in cli.COMMAND_MODULES.items() if owner == module} == set(commands.choices)
    assert not set(cli.CORE_COMMANDS) & set(cli.COMMAND_MODULES)


def test_version_and_core_commands_import_no_sub_command_module() -> None:
    probe = (
        "import sys; from laion_lake import cli; cli.build_parser('synth');"
        "heavy = [m for m in ('laion_lake.features.cli', 'laion_lake.lake', 'prefect', 'dask', 'zarr') if m in sys.modules];"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    version = subprocess.run([sys.executable, "-m", "laion_lake.cli", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.strip() == "laion-lake 0.1.0"


def test_help_still_lists_every_command() -> None:
    text = cli.build_parser().format_help()
    for command in [*cli.CORE_COMMANDS, *cli.COMMAND_MODULES]:
        assert command in text
    # the top-level help names Brain-Score's family aliases, from the one table of them
    from laion_lake.benchmarks import FAMILY_ALIASES

    assert all(f"{alias}.* = {canonical}.*" in text for alias, canonical in FAMILY_ALIASES.items())
