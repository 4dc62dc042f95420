"""Build the Cython extensions in ext/ (and compile the scan path's pure-Python modules
listed in ext/hot_modules.py) and generate the AI table from the vendored
GS1 Barcode Syntax Dictionary before anything compiles.

`pip install -e .` and `pip wheel .` both go through here. The example config is
copied into the wheel as ``settings/_config`` so an installed `serialink serve`
finds its default rules without a source checkout.
"""

import importlib.util
import shutil
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def generate_ai_table() -> None:
    spec = importlib.util.spec_from_file_location("_sd", ROOT / "ext" / "syntax_dictionary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([str(ROOT / "config" / "gs1" / "gs1-syntax-dictionary.txt"),
                 str(ROOT / "ext" / "ai_table.py")])


class BuildPyWithConfig(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "settings" / "_config"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(ROOT / "config", target)


generate_ai_table()


def hot_modules() -> tuple[str, ...]:
    spec = importlib.util.spec_from_file_location("_hot", ROOT / "ext" / "hot_modules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HOT_MODULES


extensions = [
    Extension(f"ext.{p.stem}", [str(p.relative_to(ROOT))], extra_compile_args=["-O3"])
    for p in sorted((ROOT / "ext").glob("*.pyx"))
]
# The scan path's pure-Python modules, compiled as they are (ext/hot_modules.py says why),
# with Python's semantics kept: no unchecked indexing or C division there.
hot = [Extension(rel[:-3].replace("/", "."), [rel], extra_compile_args=["-O2"]) for rel in hot_modules()]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
    ) + cythonize(hot, compiler_directives={"language_level": 3, "binding": True}, quiet=True),
    cmdclass={"build_py": BuildPyWithConfig},
)
