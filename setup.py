"""Package discovery that pyproject.toml cannot express: the Blender add-on
lives in addon/ (the extension's own layout) but installs as `kinemo_addon`,
so the demo and tests can import it. Everything else is in pyproject.toml."""
from setuptools import find_packages, setup

addon = ["kinemo_addon" + p[len("addon"):] for p in find_packages(".", include=["addon", "addon.*"])]
setup(packages=find_packages("backend") + addon)
