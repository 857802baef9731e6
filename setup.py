"""Which packages the wheel holds; everything else is in pyproject.toml.

Packages are found, never listed: every folder under vstore/, plus the top-level alembic/ and sql/ (where
DESIGN.md keeps them) mapped into the wheel as vstore._alembic and vstore._sql with their subfolders, so a
non-editable install finds migrations and SQL too (vstore/resources.py). pyproject.toml's static
`packages.find` cannot add those mapped folders to what it finds; this file only computes the list.
"""

from pathlib import Path

from setuptools import find_namespace_packages, find_packages, setup

HERE = Path(__file__).parent
MAPPED = {"vstore._alembic": "alembic", "vstore._sql": "sql"}  # package name -> folder (package-dir)


def _mapped_packages() -> list[str]:
    packages = []
    for package, folder in MAPPED.items():
        packages.append(package)
        for sub in find_namespace_packages(where=str(HERE / folder), exclude=["*__pycache__*"]):
            packages.append(f"{package}.{sub}")
    return packages


setup(packages=find_packages(where=str(HERE), include=["vstore", "vstore.*"]) + _mapped_packages())
