"""kiln.vision pre-processing and ReID on the ref backend, against references
written here in numpy (never calling kiln), and, where cv2 and ultralytics
are importable, against Ultralytics' own LetterBox and scale_boxes.

The numpy reference implements the documented semantics directly:
Ultralytics' letterbox geometry (Python's round, ties to even) and OpenCV's
INTER_LINEAR sampling (pixel centers at +0.5, edge pixels clamped, no
antialiasing) in float64, then (x / 255 - mean) / std.
"""
import ctypes

import numpy as np
import pytest

import kiln
import kiln.vision as kv
from kiln._lib import BACKEND_CUDA, BACKEND_REF, KilnError, check

F32_TOL = 1e-5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------- numpy reference

def ref_geometry(w, h, W, H, scale_up=True, center=True):
    """LetterBox.get_params: ratio, resized size, left and top padding."""
    r = min(H / h, W / w)
    if not scale_up:
        r = min(r, 1.0)
    nw, nh = max(round(w * r), 1), max(round(h * r), 1)
    left = round((W - nw) / 2 - 0.1) if center else 0
    top = round((H - nh) / 2 - 0.1) if center else 0
    return r, nw, nh, left, top


def ref_axis(n, origin, extent, lo, hi):
    """OpenCV INTER_LINEAR taps: n outputs over the source span
    [origin, origin + extent), readable pixels lo..hi."""
    s = origin + (np.arange(n, dtype=np.float64) + 0.5) * (extent / n) - 0.5
    i0 = np.floor(s)
    w = s - i0
    i0 = i0.astype(np.int64)
    low, high = i0 < lo, i0 >= hi
    w[low | high] = 0.0
    i0[low] = lo
    i0[high] = hi
    return i0, np.minimum(i0 + 1, hi), w


def ref_resample(img, xs, ys):
    """Bilinear resample of img (h, w, 3, float64) through x and y taps."""
    x0, x1, wx = xs
    y0, y1, wy = ys
    rows = img[y0] * (1 - wy)[:, None, None] + img[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def ref_normalise(hwc, mean, std):
    """(x / 255 - mean) / std, HWC float64 -> CHW float64."""
    m = np.asarray(mean, np.float64)
    s = np.asarray(std, np.float64)
    return ((hwc / 255.0 - m) / s).transpose(2, 0, 1)


def rgb(img, bgr):
    img = np.asarray(img, np.float64)
    return img[..., ::-1] if bgr else img


def ref_letterbox(img, size, bgr=True, mean=(0, 0, 0), std=(1, 1, 1), pad=114, scale_up=True, center=True):
    """(3, H, W) float64 and (r, left, top) of one frame."""
    W, H = size
    h, w = img.shape[:2]
    r, nw, nh, left, top = ref_geometry(w, h, W, H, scale_up, center)
    canvas = np.full((H, W, 3), float(pad))
    canvas[top:top + nh, left:left + nw] = ref_resample(rgb(img, bgr), ref_axis(nw, 0, w, 0, w - 1),
                                                        ref_axis(nh, 0, h, 0, h - 1))
    return ref_normalise(canvas, mean, std), (r, left, top)


def ref_crops(img, boxes, size, bgr=True, mean=(0, 0, 0), std=(1, 1, 1), pad=114):
    """(n, 3, H, W) float64: each box clipped, its span stretched to size;
    boxes without area after clipping are pad_value."""
    W, H = size
    h, w = img.shape[:2]
    src = rgb(img, bgr)
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes, np.float32).astype(np.float64):
        x1, x2 = np.clip([x1, x2], 0, w)
        y1, y2 = np.clip([y1, y2], 0, h)
        if not (x2 > x1 and y2 > y1):
            out.append(ref_normalise(np.full((H, W, 3), float(pad)), mean, std))
            continue
        xs = ref_axis(W, x1, x2 - x1, int(np.floor(x1)), int(np.ceil(x2)) - 1)
        ys = ref_axis(H, y1, y2 - y1, int(np.floor(y1)), int(np.ceil(y2)) - 1)
        out.append(ref_normalise(ref_resample(src, xs, ys), mean, std))
    return np.stack(out) if out else np.zeros((0, 3, H, W))


def f16_tolerance(ref):
    """Half an f16 ulp at each value, plus the f32 computation's own error."""
    ulp = np.spacing(np.abs(ref).astype(np.float16)).astype(np.float64)
    return ulp / 2 + 2e-6


def frame(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def dets_of(boxes):
    d = np.zeros(len(boxes), kv.DETECTION_DTYPE)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        d[i]["x1"], d[i]["y1"], d[i]["x2"], d[i]["y2"] = x1, y1, x2, y2
        d[i]["score"], d[i]["class_id"], d[i]["anchor"] = 0.9, 0, i
    return d


# ------------------------------------------------------------------ letterbox

# (frame h, w), input (W, H), scale_up, center
LETTERBOX_CASES = [
    ((1, 1), (640, 640), True, True),
    ((17, 33), (640, 640), True, True),
    ((33, 17), (640, 640), True, True),
    ((480, 640), (640, 640), True, True),
    ((1080, 1920), (640, 640), True, True),
    ((1000, 900), (320, 256), True, True),        # larger than the input, non-square input
    ((100, 150), (640, 640), True, True),         # smaller: enlarged; odd vertical padding 213
    ((150, 100), (640, 640), True, True),         # odd horizontal padding: the extra pixel on the right
    ((100, 150), (640, 640), False, True),        # smaller, scale_up off: kept, padded
    ((700, 300), (640, 640), False, True),        # larger, scale_up off: reduced as usual
    ((5, 256), (640, 640), True, True),           # 5 * 2.5 = 12.5: Python rounds to 12
    ((1, 3000), (640, 640), True, True),          # thin: new height max(round(0.21), 1) = 1
    ((333, 501), (416, 416), True, False),        # not centered: padding right/bottom only
    ((37, 91), (64, 48), True, True),
]


def _case_id(c):
    (h, w), (W, H), up, center = c
    return f"{h}x{w}-to-{W}x{H}" + ("" if up else "-noup") + ("" if center else "-topleft")


@pytest.mark.parametrize("case", LETTERBOX_CASES, ids=_case_id)
@pytest.mark.parametrize("bgr", [True, False], ids=["bgr", "rgb"])
def test_letterbox_matches_numpy(case, bgr):
    (h, w), size, scale_up, center = case
    img = frame(h, w, seed=h * 7 + w)
    x, boxes = kv.preprocess([img], size=size, bgr=bgr, scale_up=scale_up, center=center)
    ref, (r, left, top) = ref_letterbox(img, size, bgr=bgr, scale_up=scale_up, center=center)
    assert x.shape == (1, 3, size[1], size[0]) and x.dtype == np.float32
    err = np.abs(x[0] - ref).max()
    assert err <= F32_TOL, f"max abs error {err:.3g}"
    b = boxes[0]
    assert (b.frame_width, b.frame_height) == (w, h)
    assert (b.pad_x, b.pad_y) == (left, top)
    assert b.scale == np.float32(r)


def test_letterbox_mean_std_and_pad_value():
    img = frame(123, 457, seed=3)
    x, _ = kv.preprocess([img], size=(320, 320), mean=IMAGENET_MEAN, std=IMAGENET_STD, pad_value=0)
    ref, _ = ref_letterbox(img, (320, 320), mean=IMAGENET_MEAN, std=IMAGENET_STD, pad=0)
    err = np.abs(x[0] - ref).max()
    assert err <= F32_TOL, f"max abs error {err:.3g}"
    # the border really is pad 0 normalised, channel by channel
    for c in range(3):
        assert x[0, c, 0, 0] == pytest.approx(-IMAGENET_MEAN[c] / IMAGENET_STD[c], abs=1e-6)


@pytest.mark.parametrize("hw", [(17, 33), (480, 640), (1080, 1920)])
def test_letterbox_f16(hw):
    img = frame(*hw, seed=11)
    x, _ = kv.preprocess([img], size=(640, 384), dtype=np.float16, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    ref, _ = ref_letterbox(img, (640, 384), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert x.dtype == np.float16
    err = np.abs(x[0].astype(np.float64) - ref)
    bad = err > f16_tolerance(ref)
    assert not bad.any(), f"{bad.sum()} values beyond half an f16 ulp, worst {err.max():.3g}"


def test_letterbox_batch_of_different_frames():
    imgs = [frame(480, 640, 1), frame(17, 33, 2), frame(1080, 1920, 3)]
    x, boxes = kv.preprocess(imgs, size=(512, 512), bgr=True)
    assert x.shape == (3, 3, 512, 512)
    for i, img in enumerate(imgs):
        ref, (r, left, top) = ref_letterbox(img, (512, 512))
        assert np.abs(x[i] - ref).max() <= F32_TOL, f"frame {i}"
        assert (boxes[i].pad_x, boxes[i].pad_y, boxes[i].frame_width) == (left, top, img.shape[1])


def test_letterbox_view_into_wider_array():
    """A frame whose rows are further apart than width * 3 (a crop of a
    wider image): the wrapper passes numpy's row stride through."""
    big = frame(200, 500, seed=5)
    view = big[10:150, 37:37 + 301]
    assert view.strides[0] > view.shape[1] * 3 and not view.flags.c_contiguous
    x, _ = kv.preprocess([view], size=(256, 256))
    ref, _ = ref_letterbox(np.ascontiguousarray(view), (256, 256))
    assert np.abs(x[0] - ref).max() <= F32_TOL


@pytest.mark.parametrize("bgr", [1, 0])
def test_letterbox_explicit_stride_tight_last_row(bgr):
    """stride > width * 3 given to C directly, the buffer ending right after
    the last row's last pixel: nothing past it may be read (ASan builds)."""
    h, w, stride = 23, 41, 41 * 3 + 13
    buf = np.random.default_rng(9).integers(0, 256, (h - 1) * stride + w * 3, dtype=np.uint8)
    view = np.lib.stride_tricks.as_strided(buf, (h, w, 3), (stride, 3, 1))
    o = kv._options((96, 64), np.float32, (0, 0, 0), (1, 1, 1), 114, True, True)
    fr = (kv.Frame * 1)(kv.Frame(ctypes.c_void_p(buf.ctypes.data), w, h, stride, bgr))
    out = np.empty((1, 3, 64, 96), np.float32)
    boxes = (kv.Letterbox * 1)()
    check(kv._f.call("kiln_vision_preprocess", BACKEND_REF, ctypes.byref(o), 1, fr, kv._ptr(out), boxes, None))
    ref, _ = ref_letterbox(np.array(view), (96, 64), bgr=bool(bgr))
    assert np.abs(out[0] - ref).max() <= F32_TOL


def test_letterbox_not_antialiased():
    """A 1-pixel checkerboard reduced 3x: OpenCV's INTER_LINEAR (and this)
    reads source pixel 3d + 1 alone (its center falls on it), no area
    average, so the result is a checkerboard again, not flat gray."""
    img = np.zeros((300, 300, 3), np.uint8)
    img[::2, ::2] = img[1::2, 1::2] = 255
    x, _ = kv.preprocess([img], size=(100, 100))
    ref, _ = ref_letterbox(img, (100, 100))
    assert np.abs(x[0] - ref).max() <= F32_TOL
    want = ((np.add.outer(np.arange(100), np.arange(100)) % 2) == 0).astype(np.float32)
    assert np.array_equal(x[0, 0], want)


# ----------------------------------------------------- against Ultralytics/cv2

def _ultralytics():
    pytest.importorskip("cv2")
    pytest.importorskip("torch")
    return pytest.importorskip("ultralytics")


@pytest.mark.parametrize("case", LETTERBOX_CASES, ids=_case_id)
def test_letterbox_matches_ultralytics(case):
    _ultralytics()
    from ultralytics.data.augment import LetterBox
    (h, w), (W, H), scale_up, center = case
    img = frame(h, w, seed=h + 3 * w)
    ul = LetterBox(new_shape=(H, W), scaleup=scale_up, center=center)(image=img.copy())
    assert ul.shape == (H, W, 3)
    want = ul[..., ::-1].transpose(2, 0, 1).astype(np.float64) / 255.0  # BGR HWC -> RGB CHW
    x, _ = kv.preprocess([img], size=(W, H), scale_up=scale_up, center=center, bgr=True)
    err = np.abs(x[0] - want).max()
    # OpenCV quantises its weights and rounds to uint8; kiln stays in float
    assert err <= 1 / 255 + 1e-6, f"max abs error {err * 255:.3f} gray levels"


@pytest.mark.parametrize("case", LETTERBOX_CASES, ids=_case_id)
def test_letterbox_maps_back_as_scale_boxes(case):
    """(p - pad) / scale_x|y, clipped, against ultralytics.utils.ops.scale_boxes
    (which recomputes gain and pad from the shapes, each axis its own gain
    round(side * r) / side): equal on both axes to f32 rounding, and scale_x /
    scale_y are those gains."""
    _ultralytics()
    from ultralytics.utils.ops import scale_boxes
    (h, w), (W, H), scale_up, center = case
    if not center or not scale_up:
        pytest.skip("scale_boxes assumes centered padding and scale-up (it recomputes the gain from the shapes)")
    _, boxes = kv.preprocess([frame(h, w)], size=(W, H), scale_up=scale_up, center=center)
    b = boxes[0]
    r, nw, nh, _, _ = ref_geometry(w, h, W, H, scale_up, center)
    assert abs(b.scale_x - nw / w) <= 1e-7 * (nw / w) and abs(b.scale_y - nh / h) <= 1e-7 * (nh / h)
    rng = np.random.default_rng(1)
    p = np.sort(rng.uniform(0, [W, H, W, H], (64, 4)), axis=0)
    p[0] = [b.pad_x, b.pad_y, W, H]  # the frame's top-left corner maps to 0 exactly
    want = scale_boxes((H, W), p.copy(), (h, w))
    got = p.copy()
    got[:, [0, 2]] = np.clip((got[:, [0, 2]] - b.pad_x) / b.scale_x, 0, w)
    got[:, [1, 3]] = np.clip((got[:, [1, 3]] - b.pad_y) / b.scale_y, 0, h)
    assert got[0, 0] == want[0, 0] == 0 and got[0, 1] == want[0, 1] == 0, "pads differ"
    for axis, side in ((0, w), (1, h)):
        cols = [axis, axis + 2]
        diff = np.abs(got[:, cols] - want[:, cols]).max()
        assert diff <= 2e-7 * side, f"axis {axis}: {diff}"  # only the f32 rounding of the gain


@pytest.mark.parametrize("bgr", [True, False])
def test_crops_match_cv2_on_whole_pixel_boxes(bgr):
    cv2 = pytest.importorskip("cv2")
    img = frame(300, 400, seed=21)
    boxes = [(10, 20, 110, 260), (0, 0, 400, 300), (397, 290, 400, 300), (50, 50, 51, 51)]
    x = kv.crops(img, dets_of(boxes), size=(64, 128), bgr=bgr)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        c = cv2.resize(img[y1:y2, x1:x2], (64, 128), interpolation=cv2.INTER_LINEAR)
        want = (c[..., ::-1] if bgr else c).transpose(2, 0, 1).astype(np.float64) / 255.0
        err = np.abs(x[i] - want).max()
        assert err <= 1 / 255 + 1e-6, f"box {i}: {err * 255:.3f} gray levels"


# ---------------------------------------------------------------------- ReID

CROP_BOXES = [
    (10, 20, 110, 260),            # whole pixels
    (10.3, 20.7, 110.2, 259.9),    # fractional
    (-30, -5, 60.5, 40.25),        # partly outside: clipped
    (350.5, 250.5, 460, 320),      # past the right/bottom edge
    (200.2, 100.1, 200.6, 100.9),  # under one pixel wide
    (0, 0, 400, 300),              # the whole frame
    (120, 50, 120, 90),            # zero width: pad
    (500, 10, 600, 80),            # wholly outside: pad
    (30, 80, 20, 90),              # x2 < x1: pad
    (float("nan"), 10, 50, 60),    # NaN: pad
]


@pytest.mark.parametrize("bgr", [True, False], ids=["bgr", "rgb"])
def test_crops_match_numpy(bgr):
    img = frame(300, 400, seed=4)
    x = kv.crops(img, dets_of(CROP_BOXES), size=(64, 128), bgr=bgr)
    ref = ref_crops(img, CROP_BOXES, (64, 128), bgr=bgr)
    assert x.shape == (len(CROP_BOXES), 3, 128, 64)
    for i in range(len(CROP_BOXES)):
        err = np.abs(x[i] - ref[i]).max()
        assert err <= F32_TOL, f"box {i} {CROP_BOXES[i]}: max abs error {err:.3g}"
    assert np.all(x[6] == np.float32(114 / 255)), "a degenerate box is pad_value"


def test_crops_f16_mean_std_and_stride():
    big = frame(260, 520, seed=8)
    img = big[5:245, 7:7 + 333]  # rows 520 * 3 bytes apart
    boxes = [(3.5, 4.25, 200.75, 230), (100, 0, 333, 240), (0, 0, 1, 1)]
    x = kv.crops(img, dets_of(boxes), size=(32, 96), dtype=np.float16, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    ref = ref_crops(np.ascontiguousarray(img), boxes, (32, 96), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    assert x.dtype == np.float16
    err = np.abs(x.astype(np.float64) - ref)
    assert not (err > f16_tolerance(ref)).any(), f"worst {err.max():.3g}"


def test_crops_none():
    x = kv.crops(frame(10, 10), dets_of([]), size=(8, 16))
    assert x.shape == (0, 3, 16, 8)


def test_l2_normalize_matches_numpy():
    rng = np.random.default_rng(2)
    e = rng.normal(size=(7, 129)).astype(np.float32)
    e[2] = 0                      # stays zero, no NaN
    e[3] *= np.float32(1e-30)     # squares underflow in f32, not in the double sum
    e[4] *= np.float32(1e30)      # squares overflow in f32, not in the double sum
    got = kv.l2_normalize(e)
    d = e.astype(np.float64)
    n = np.linalg.norm(d, axis=1, keepdims=True)
    want = np.divide(d, n, out=np.zeros_like(d), where=n > 0)
    assert np.isfinite(got).all()
    assert np.abs(got - want).max() <= 1e-6
    assert np.all(got[2] == 0)
    assert np.allclose(np.linalg.norm(got[[0, 1, 3, 4, 5, 6]].astype(np.float64), axis=1), 1, atol=1e-6)


def test_match_matches_numpy():
    rng = np.random.default_rng(3)
    q = kv.l2_normalize(rng.normal(size=(6, 64)))
    g = kv.l2_normalize(rng.normal(size=(9, 64)))
    q[1] = 0                      # a zero query: similarity 0 to all, best the lowest index
    g[4] = g[7] = q[2]            # a tie: the lower index wins
    g[8] = 0
    sim, best = kv.match(q, g)
    want = q.astype(np.float64) @ g.astype(np.float64).T
    assert sim.shape == (6, 9)
    assert np.abs(sim - want).max() <= 1e-6
    assert best.tolist() == np.argmax(sim, axis=1).tolist()  # argmax: first of ties
    assert best[1] == 0 and best[2] == 4


def test_match_assumes_normalised_rows():
    """Rows are not normalised again: the similarity is the plain dot product."""
    q = np.array([[2.0, 0.0]], np.float32)
    g = np.array([[3.0, 0.0], [0.0, 1.0]], np.float32)
    sim, best = kv.match(q, g)
    assert sim.tolist() == [[6.0, 0.0]] and best.tolist() == [0]


def test_match_empty_gallery():
    q = kv.l2_normalize(np.ones((3, 8)))
    sim, best = kv.match(q, np.zeros((0, 8), np.float32))
    assert sim.shape == (3, 0)
    assert best.tolist() == [-1, -1, -1]


# -------------------------------------------------------------------- errors

def _options():
    return kv._options((64, 64), np.float32, (0, 0, 0), (1, 1, 1), 114, True, True)


def _call_pre(where, frm, o=None):
    o = o or _options()
    out = np.empty((1, 3, o.height, o.width), np.float32)
    fr = (kv.Frame * 1)(frm)
    return kv._f.call("kiln_vision_preprocess", where, ctypes.byref(o), 1, fr, kv._ptr(out), None, None)


def test_non_uint8_frame_is_value_error():
    with pytest.raises(ValueError, match="uint8"):
        kv.preprocess([np.zeros((10, 10, 3), np.float32)])
    with pytest.raises(ValueError, match="uint8"):
        kv.crops(np.zeros((10, 10, 3), np.int16), dets_of([(0, 0, 5, 5)]))
    with pytest.raises(ValueError):
        kv.preprocess([np.zeros((10, 10, 4), np.uint8)])


def test_bad_stride_is_kiln_error():
    img = frame(8, 10)
    with pytest.raises(KilnError, match=r"frame 0: stride 29 is less than width x 3 = 30") as e:
        check(_call_pre(BACKEND_REF, kv.Frame(ctypes.c_void_p(img.ctypes.data), 10, 8, 29, 1)))
    assert e.value.status_name == "KILN_ERR_INVALID_ARGUMENT"


@pytest.mark.parametrize("wh", [(0, 5), (5, 0), (-1, 4)])
def test_zero_size_frame_is_kiln_error(wh):
    img = frame(8, 10)
    with pytest.raises(KilnError, match=r"frame 0 is -?\d+x-?\d+; sides must be"):
        check(_call_pre(BACKEND_REF, kv.Frame(ctypes.c_void_p(img.ctypes.data), wh[0], wh[1], 0, 1)))
    with pytest.raises(KilnError, match="sides must be"):
        kv.preprocess([np.zeros((0, 4, 3), np.uint8)])


def test_cuda_backend_is_unsupported_for_now():
    img = frame(8, 10)
    with pytest.raises(KilnError, match="cuda") as e:
        check(_call_pre(BACKEND_CUDA, kv.Frame(ctypes.c_void_p(img.ctypes.data), 10, 8, 0, 1)))
    assert e.value.status_name == "KILN_ERR_UNSUPPORTED"
    o = _options()
    d = dets_of([(0, 0, 5, 5)])
    out = np.empty((1, 3, 64, 64), np.float32)
    fr = kv.Frame(ctypes.c_void_p(img.ctypes.data), 10, 8, 0, 1)
    with pytest.raises(KilnError, match="cuda"):
        check(kv._f.call("kiln_vision_crops", BACKEND_CUDA, ctypes.byref(o), ctypes.byref(fr), 1, kv._ptr(d),
                         kv._ptr(out), None))
    emb = np.ones((2, 4), np.float32)
    with pytest.raises(KilnError, match="cuda"):
        check(kv._f.call("kiln_vision_l2_normalize", BACKEND_CUDA, 2, 4, kv._ptr(emb), None))


def test_bad_options_are_kiln_errors():
    img = frame(8, 10)
    fr = kv.Frame(ctypes.c_void_p(img.ctypes.data), 10, 8, 0, 1)
    o = _options()
    o.std[1] = 0
    with pytest.raises(KilnError, match="std"):
        check(_call_pre(BACKEND_REF, fr, o))
    with pytest.raises(KilnError, match="emb NULL"):
        check(kv._f.call("kiln_vision_l2_normalize", BACKEND_REF, 2, 4, None, None))
    assert kiln.library_path
