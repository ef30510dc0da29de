"""#11 item 7: the package ships ``py.typed`` (PEP 561) and its data tables, in the wheel a user installs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_installed_package_is_typed():
    assert resources.files("laion_lake").joinpath("py.typed").is_file()
    assert resources.files("storage_schemas").joinpath("py.typed").is_file()
    assert resources.files("storage_schemas").joinpath("variables.json").is_file()


def test_the_wheel_ships_py_typed_and_the_variables_table(tmp_path):
    # offline: the test extra installs the build backend, so no index is needed (loopback only)
    source = tmp_path / "src"  # a copy: building in place would leave build/ and egg-info in the checkout
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("laion_lake", "storage_schemas", "flows"):
        shutil.copytree(ROOT / name, source / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("laion_lake-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"laion_lake/py.typed", "storage_schemas/py.typed", "storage_schemas/variables.json", "storage_schemas/vocabulary.json"} <= names
