"""Carries the top-level targets/, calibration/ and weights/ folders (their one source of truth)
into the wheel as edgecnn/_shipped/<name>/, where edgecnn.resources finds them. Everything else
about the package is in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"targets": ("*.toml",), "calibration": ("*.toml", "**/*.png"), "weights": ("*.pt",)}


class BuildPyWithShippedFiles(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the source tree
            return
        for name, patterns in SHIPPED.items():
            for pattern in patterns:
                for src in sorted((ROOT / name).glob(pattern)):
                    dst = Path(self.build_lib, "edgecnn", "_shipped", name,
                               src.relative_to(ROOT / name))
                    self.mkpath(str(dst.parent))
                    self.copy_file(str(src), str(dst))


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
