"""Stand-in for OpenCV on the GPU machine, which has none (and whose wheel is
too large to carry). Ultralytics imports cv2 at start-up and reads a few
constants; building a model from its YAML and exporting it to ONNX call no
OpenCV function. Any call reaching here raises, so nothing silently fakes
image I/O."""
__version__ = "0.0.0-kiln-stub"


class _Missing(int):
    def __call__(self, *args, **kwargs):
        raise RuntimeError("OpenCV is not installed on this machine (kiln's cv2 stand-in)")


def setNumThreads(n):
    """A setting, not image work: Ultralytics calls it at import."""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing(0)
