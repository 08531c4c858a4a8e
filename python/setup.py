"""Only what pyproject.toml cannot say: a wheel that bundles libkiln.so is
tagged for the platform (py3-none-linux_x86_64), not as pure Python. The
package itself is ctypes only, so one wheel serves every Python 3."""
import os

from setuptools import setup

_HERE = os.path.dirname(os.path.abspath(__file__))
_BUNDLED = os.path.exists(os.path.join(_HERE, "kiln", "libkiln.so"))

cmdclass = {}
if _BUNDLED:
    try:
        from setuptools.command.bdist_wheel import bdist_wheel  # setuptools >= 70.1
    except ImportError:
        from wheel.bdist_wheel import bdist_wheel

    class PlatformWheel(bdist_wheel):
        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = PlatformWheel

setup(cmdclass=cmdclass)
