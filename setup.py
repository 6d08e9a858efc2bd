"""Build hook (everything else is in pyproject.toml): the weights registry lives at the repository's top level
(weights.toml); every build copies it into the package, where an installed stylecli finds it."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

REGISTRY = Path(__file__).resolve().parent / "weights.toml"


class BuildPyWithRegistry(build_py):
    def _registry_target(self) -> Path:
        return Path(self.build_lib) / "stylecli" / "weights.toml"

    def run(self) -> None:
        super().run()
        self.mkpath(str(self._registry_target().parent))
        self.copy_file(str(REGISTRY), str(self._registry_target()))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(self._registry_target())]

    def get_output_mapping(self) -> dict[str, str]:
        return {**super().get_output_mapping(), str(self._registry_target()): str(REGISTRY)}


setup(cmdclass={"build_py": BuildPyWithRegistry})
