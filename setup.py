"""Installs the folders under one package, byom (byom.core is core/, byom.cli is cli/, ...).

No generic top-level name (core, cli, console, scoring) lands in
site-packages, and the folders stay where the layout has them. Everything
else about the package is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup

FOLDERS = ("core", "cli", "console", "scoring")

setup(
    package_dir={f"byom.{folder}": folder for folder in FOLDERS},
    packages=[f"byom.{name}" for name in find_namespace_packages(include=[f"{folder}*" for folder in FOLDERS],
                                                                  exclude=["*__pycache__*"])],
    package_data={"byom.scoring": ["*.py"], "byom.console": ["favicon.png"]},
)
