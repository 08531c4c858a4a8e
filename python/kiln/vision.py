"""kiln.vision: what goes around a YOLO/ReID engine (include/kiln_vision.h),
on numpy arrays through the ref backend (host memory). The cuda kernels
take device memory and come with the GPU side of the vision layer; asking
for them before they exist raises KilnError(KILN_ERR_UNSUPPORTED).

    import kiln.vision as kv
    x, boxes = kv.preprocess([frame_bgr], size=(640, 640))      # NCHW f32, letterboxes
    dets = kv.detect(pred, boxes, num_classes=80)                 # per image: structured array
    kp = kv.keypoints(extra, boxes[0], k=17)
    masks = kv.masks(coeffs, dets[0], protos[0], boxes[0], net_size=(640, 640))

Every function returns new numpy arrays; inputs are not modified.
"""
import ctypes
from ctypes import POINTER, Structure, c_float, c_int, c_uint8, c_void_p

import numpy as np

from ._lib import BACKEND_REF, MAX_RANK, Tensor, check, lib

F32, F16 = 1, 10
LAYOUTS = {"v8": 0, "v11": 0, "v9": 0, "v5": 1, "v10": 2}


class Frame(Structure):
    """kiln_frame"""
    _fields_ = [("data", c_void_p), ("width", c_int), ("height", c_int), ("stride", c_int), ("bgr", c_int)]


class Letterbox(Structure):
    """kiln_letterbox: network pixel = frame pixel * scale + pad"""
    _fields_ = [("scale", c_float), ("pad_x", c_float), ("pad_y", c_float), ("frame_width", c_int),
                ("frame_height", c_int), ("scale_x", c_float), ("scale_y", c_float)]

    def __repr__(self):
        return (f"Letterbox(scale={self.scale:.6g}, pad=({self.pad_x:g}, {self.pad_y:g}), "
                f"frame={self.frame_width}x{self.frame_height}, axes=({self.scale_x:.6g}, {self.scale_y:.6g}))")


class PreprocessOptions(Structure):
    """kiln_preprocess_options"""
    _fields_ = [("width", c_int), ("height", c_int), ("dtype", c_int), ("mean", c_float * 3), ("std", c_float * 3),
                ("pad_value", c_uint8), ("center", c_int), ("scale_up", c_int)]


class DetectOptions(Structure):
    """kiln_detect_options"""
    _fields_ = [("layout", c_int), ("num_classes", c_int), ("num_extra", c_int), ("conf", c_float), ("iou", c_float),
                ("max_det", c_int), ("max_nms", c_int), ("agnostic", c_int), ("classes", POINTER(c_int)),
                ("n_classes", c_int)]


class Detection(Structure):
    """kiln_detection"""
    _fields_ = [("x1", c_float), ("y1", c_float), ("x2", c_float), ("y2", c_float), ("score", c_float),
                ("class_id", c_int), ("anchor", c_int)]


class MaskOptions(Structure):
    """kiln_mask_options"""
    _fields_ = [("out_width", c_int), ("out_height", c_int), ("threshold", c_float)]


#: numpy view of kiln_detection
DETECTION_DTYPE = np.dtype([("x1", "<f4"), ("y1", "<f4"), ("x2", "<f4"), ("y2", "<f4"), ("score", "<f4"),
                            ("class_id", "<i4"), ("anchor", "<i4")])
assert DETECTION_DTYPE.itemsize == ctypes.sizeof(Detection)

_P = POINTER
_FUNCS = {
    "kiln_preprocess_options_init": (None, [_P(PreprocessOptions)]),
    "kiln_detect_options_init": (None, [_P(DetectOptions)]),
    "kiln_vision_preprocess": (c_int, [c_int, _P(PreprocessOptions), c_int, _P(Frame), c_void_p, _P(Letterbox),
                                       c_void_p]),
    "kiln_vision_detect": (c_int, [c_int, _P(DetectOptions), _P(Tensor), _P(Letterbox), c_void_p, c_void_p, c_void_p,
                                   c_void_p]),
    "kiln_vision_keypoints": (c_int, [c_int, c_int, c_int, c_void_p, _P(Letterbox), c_void_p, c_void_p]),
    "kiln_vision_masks": (c_int, [c_int, _P(MaskOptions), c_int, c_void_p, c_void_p, _P(Tensor), _P(Letterbox), c_int,
                                  c_int, c_void_p, c_void_p]),
    "kiln_vision_crops": (c_int, [c_int, _P(PreprocessOptions), _P(Frame), c_int, c_void_p, c_void_p, c_void_p]),
    "kiln_vision_l2_normalize": (c_int, [c_int, c_int, c_int, c_void_p, c_void_p]),
    "kiln_vision_match": (c_int, [c_int, c_int, c_int, c_int, c_void_p, c_void_p, c_void_p, c_void_p, c_void_p]),
}


class _Fns:
    def __init__(self):
        for name, (res, args) in _FUNCS.items():
            fn = getattr(lib.cdll, name, None)
            if fn is not None:
                fn.restype, fn.argtypes = res, args
            setattr(self, name, fn)

    def __getattr__(self, name):
        raise AttributeError(name)

    def call(self, name, *args):
        fn = getattr(self, name)
        if fn is None:
            from ._lib import KilnError
            raise KilnError(4, f"{name} is not in {lib.path}: this libkiln predates the vision layer")
        return fn(*args)


_f = _Fns()


def _ptr(a):
    return ctypes.c_void_p(a.ctypes.data) if a is not None and a.size else ctypes.c_void_p(0)


def _frame(img, bgr):
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"a frame must be a uint8 array of shape (H, W, 3), got {img.dtype} {img.shape}")
    if img.strides[2] != 1 or img.strides[1] != 3:
        img = np.ascontiguousarray(img)
    f = Frame(c_void_p(img.ctypes.data), img.shape[1], img.shape[0], img.strides[0], int(bool(bgr)))
    return f, img


def _options(size, dtype, mean, std, pad_value, center, scale_up):
    o = PreprocessOptions()
    _f.call("kiln_preprocess_options_init", ctypes.byref(o))
    o.width, o.height = int(size[0]), int(size[1])
    o.dtype = F16 if np.dtype(dtype) == np.float16 else F32
    for c in range(3):
        o.mean[c], o.std[c] = float(mean[c]), float(std[c])
    o.pad_value, o.center, o.scale_up = int(pad_value), int(bool(center)), int(bool(scale_up))
    return o


def _tensor(a):
    t = Tensor()
    t.name = None
    t.dtype = F16 if a.dtype == np.float16 else F32
    t.rank = a.ndim
    for k in range(a.ndim):
        t.dims[k] = a.shape[k]
    t.data = _ptr(a)
    return t


def _float(a, what):
    a = np.asarray(a)
    if a.dtype not in (np.float32, np.float16):
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def preprocess(frames, size=(640, 640), dtype=np.float32, mean=(0, 0, 0), std=(1, 1, 1), pad_value=114,
               center=True, scale_up=True, bgr=True):
    """Letterboxes uint8 HWC frames (BGR, as OpenCV reads them, unless
    bgr=False) into one NCHW RGB array of size=(W, H); returns it and the
    list of Letterbox each frame was fitted with."""
    o = _options(size, dtype, mean, std, pad_value, center, scale_up)
    keep = [_frame(f, bgr) for f in frames]
    fr = (Frame * max(len(keep), 1))(*[k[0] for k in keep])
    out = np.empty((len(keep), 3, o.height, o.width), np.float16 if o.dtype == F16 else np.float32)
    boxes = (Letterbox * max(len(keep), 1))()
    check(_f.call("kiln_vision_preprocess", BACKEND_REF, ctypes.byref(o), len(keep), fr, _ptr(out), boxes, None))
    return out, [boxes[i] for i in range(len(keep))]


def detect(pred, boxes=None, num_classes=80, num_extra=0, layout="v8", conf=0.25, iou=0.7, max_det=300,
           max_nms=30000, agnostic=False, classes=None, return_extra=False):
    """Decodes YOLO output `pred` ([B, 4+C+E, N] for v8/v11, [B, N, 5+C+E]
    for v5, [B, N, 6+E] for v10) with confidence filter and NMS; boxes: one
    Letterbox per image (or None: network pixels). Returns a list of B
    structured arrays (DETECTION_DTYPE), and with return_extra also a list
    of B (n, E) float arrays."""
    pred = _float(pred, "pred")
    o = DetectOptions()
    _f.call("kiln_detect_options_init", ctypes.byref(o))
    o.layout, o.num_classes, o.num_extra = LAYOUTS[layout], int(num_classes), int(num_extra)
    o.conf, o.iou, o.max_det, o.max_nms, o.agnostic = conf, iou, int(max_det), int(max_nms), int(bool(agnostic))
    cls = None
    if classes is not None:
        cls = (c_int * max(len(classes), 1))(*[int(c) for c in classes])
        o.classes, o.n_classes = ctypes.cast(cls, POINTER(c_int)), len(classes)
    b = pred.shape[0] if pred.ndim == 3 else 0
    lb = None
    if boxes is not None:
        if len(boxes) != b:
            raise ValueError(f"{len(boxes)} letterboxes for {b} images")
        lb = (Letterbox * max(b, 1))(*boxes)
    out = np.zeros((max(b, 1), o.max_det), DETECTION_DTYPE)
    counts = np.zeros(max(b, 1), np.int32)
    extra = np.zeros((max(b, 1), o.max_det, max(o.num_extra, 1)), np.float32)
    t = _tensor(pred)
    check(_f.call("kiln_vision_detect", BACKEND_REF, ctypes.byref(o), ctypes.byref(t), lb, _ptr(out), _ptr(counts),
                  _ptr(extra) if o.num_extra else None, None))
    dets = [out[i, :counts[i]].copy() for i in range(b)]
    if return_extra:
        return dets, [extra[i, :counts[i], :o.num_extra].copy() for i in range(b)]
    return dets


def keypoints(extra, box=None, k=17):
    """Pose keypoints: extra (n, k*3) in network pixels -> (n, k, 3) x, y, conf in frame pixels."""
    extra = np.ascontiguousarray(extra, np.float32)
    n = extra.shape[0]
    kp = np.empty((n, k, 3), np.float32)
    check(_f.call("kiln_vision_keypoints", BACKEND_REF, n, int(k), _ptr(extra), ctypes.byref(box) if box else None,
                  _ptr(kp), None))
    return kp


def masks(coeffs, dets, protos, box, net_size=(640, 640), out_size=None, threshold=0.5):
    """Instance masks of one image: coeffs (n, P), dets (n structured), protos
    (P, mh, mw); (n, H, W) uint8 of the frame's size (Ultralytics'
    retina_masks), or with out_size=(W, H) the network input, padding
    included, resampled to that size (at net_size: Ultralytics' default
    masks). box=None needs out_size and dets in network pixels."""
    coeffs = np.ascontiguousarray(coeffs, np.float32)
    dets = np.ascontiguousarray(dets, DETECTION_DTYPE)
    protos = _float(protos, "protos")
    o = MaskOptions(0, 0, threshold)
    if out_size is not None:
        o.out_width, o.out_height = int(out_size[0]), int(out_size[1])
        w, h = o.out_width, o.out_height
    else:
        w, h = box.frame_width, box.frame_height
    n = len(dets)
    out = np.zeros((n, h, w), np.uint8)
    t = _tensor(protos)
    check(_f.call("kiln_vision_masks", BACKEND_REF, ctypes.byref(o), n, _ptr(coeffs), _ptr(dets), ctypes.byref(t),
                  ctypes.byref(box) if box else None, int(net_size[0]), int(net_size[1]), _ptr(out), None))
    return out


def crops(frame, dets, size=(128, 256), dtype=np.float32, mean=(0, 0, 0), std=(1, 1, 1), bgr=True):
    """ReID input: each detection's box cut out of the frame and resized to
    size=(W, H); (n, 3, H, W)."""
    o = _options(size, dtype, mean, std, 114, True, True)
    f, keep = _frame(frame, bgr)
    dets = np.ascontiguousarray(dets, DETECTION_DTYPE)
    out = np.empty((len(dets), 3, o.height, o.width), np.float16 if o.dtype == F16 else np.float32)
    check(_f.call("kiln_vision_crops", BACKEND_REF, ctypes.byref(o), ctypes.byref(f), len(dets), _ptr(dets), _ptr(out),
                  None))
    return out


def l2_normalize(emb):
    """Rows of emb (n, d) scaled to unit length (a copy)."""
    emb = np.array(emb, np.float32, copy=True, order="C")
    check(_f.call("kiln_vision_l2_normalize", BACKEND_REF, emb.shape[0], emb.shape[1], _ptr(emb), None))
    return emb


def match(queries, gallery):
    """Cosine similarity (n, m) of normalised queries against a gallery, and
    each query's best gallery index (-1 for an empty gallery)."""
    q = np.ascontiguousarray(queries, np.float32)
    g = np.ascontiguousarray(gallery, np.float32)
    n, d = q.shape
    m = g.shape[0]
    sim = np.zeros((n, m), np.float32)
    best = np.zeros(n, np.int32)
    check(_f.call("kiln_vision_match", BACKEND_REF, n, m, d, _ptr(q), _ptr(g), _ptr(sim), _ptr(best), None))
    return sim, best


__all__ = ["preprocess", "detect", "keypoints", "masks", "crops", "l2_normalize", "match", "Letterbox", "Detection",
           "DETECTION_DTYPE", "MAX_RANK"]
