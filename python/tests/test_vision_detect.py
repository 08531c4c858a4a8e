"""kiln.vision.detect / keypoints on the ref backend (issue #15).

Two oracles:
  1. `ref_decode`, a numpy re-statement of the rules kiln follows
     (Ultralytics' non_max_suppression for v8/v11/v10, YOLOv5's for v5,
     torchvision's greedy NMS, scale_boxes/clip_boxes), written here from the
     rules and never calling kiln. kiln must agree with it exactly: same
     anchors, classes and scores, boxes to float rounding.
  2. Ultralytics itself, where torch and ultralytics import: its
     non_max_suppression + scale_boxes (+ scale_coords for keypoints) on the
     same random tensors and, when it can build one offline from its yaml, on
     a real YOLOv8n / YOLO11n / YOLOv10n / pose / seg network with random
     weights. Agreement is the issue's: boxes matched one to one with
     IoU >= 0.99, same classes, scores within 1e-3, keypoints within 0.5 px.
"""
import ctypes
import inspect

import numpy as np
import pytest

import kiln
import kiln.vision as kv

F = np.float32
NET = 640
MAX_WH = F(7680)


# --------------------------------------------------------------- reference

def _factors(lb):
    """The per-axis factors a letterbox maps back with: scale_x / scale_y,
    or scale where they are 0 (a hand-made letterbox)."""
    return tuple(F(f) if f != 0 else F(lb.scale) for f in (lb.scale_x, lb.scale_y))


def _map(v, pad, factor, side):
    """scale_boxes / clip_boxes for one coordinate, f32 as kiln and torch."""
    return np.clip((v - F(pad)) / F(factor), F(0), F(side))


def _nms(boxes, cls, max_det, iou, agnostic):
    """Greedy NMS over boxes already sorted best first (torchvision's rule:
    class offset 7680, area without +1, suppress when IoU > iou)."""
    off = np.zeros(len(cls), F) if agnostic else cls.astype(F) * MAX_WH
    ob = boxes + off[:, None]
    area = (ob[:, 2] - ob[:, 0]) * (ob[:, 3] - ob[:, 1])
    supp = np.zeros(len(ob), bool)
    kept = []
    for i in range(len(ob)):
        if supp[i]:
            continue
        kept.append(i)
        if len(kept) == max_det:
            break
        r = ob[i + 1:]
        w = np.maximum(F(0), np.minimum(ob[i, 2], r[:, 2]) - np.maximum(ob[i, 0], r[:, 0]))
        h = np.maximum(F(0), np.minimum(ob[i, 3], r[:, 3]) - np.maximum(ob[i, 1], r[:, 1]))
        inter = w * h
        supp[i + 1:] |= inter / (area[i] + area[i + 1:] - inter) > F(iou)
    return np.asarray(kept, np.int64)


def ref_decode(pred, layout="v8", nc=80, ne=0, conf=0.25, iou=0.7, max_det=300, max_nms=30000, agnostic=False,
               classes=None, lbs=None):
    """Per image a dict: boxes (n, 4), score, cls, anchor, extra (n, ne)."""
    pred = np.asarray(pred).astype(F)  # f16 is widened first, as kiln reads it
    res = []
    for b in range(pred.shape[0]):
        x = pred[b].T if layout == "v8" else pred[b]  # (N, values)
        idx = np.arange(x.shape[0])
        if layout == "v10":
            score, cls = x[:, 4], x[:, 5]
            keep = score > F(conf)
            if classes is not None:
                keep &= np.isin(cls, np.asarray(classes, F))
            sel = idx[keep][:max_det]  # Ultralytics' end2end: the first max_det, in output order
            order = sel[np.argsort(-score[sel], kind="stable")]
            boxes, cls, e0 = x[order, :4], cls[order].astype(np.int64), 6
            score = score[order]
        else:
            if layout == "v8":
                s, e0 = x[:, 4:4 + nc], 4 + nc
                best, cls = s.max(1), s.argmax(1)
                keep = best > F(conf)
            else:  # YOLOv5: objectness first, then obj * cls
                obj = x[:, 4]
                s, e0 = obj[:, None] * x[:, 5:5 + nc], 5 + nc
                best, cls = s.max(1), s.argmax(1)
                keep = (obj > F(conf)) & (best > F(conf))
            if classes is not None:
                keep &= np.isin(cls, classes)
            cand = idx[keep]
            order = cand[np.argsort(-best[cand], kind="stable")][:max_nms]
            c = x[order]
            hw, hh = c[:, 2] / F(2), c[:, 3] / F(2)
            boxes = np.stack([c[:, 0] - hw, c[:, 1] - hh, c[:, 0] + hw, c[:, 1] + hh], 1)
            k = _nms(boxes, cls[order], max_det, iou, agnostic)
            order, boxes = order[k], boxes[k]
            score, cls = best[order], cls[order]
        boxes = boxes.astype(F).copy()
        if lbs is not None:
            lb = lbs[b]
            sx, sy = _factors(lb)
            axes = [(lb.pad_x, sx, lb.frame_width), (lb.pad_y, sy, lb.frame_height)] * 2
            for j, (pad, factor, side) in enumerate(axes):
                boxes[:, j] = _map(boxes[:, j], pad, factor, side)
        res.append(dict(boxes=boxes, score=score.astype(F), cls=cls.astype(np.int64), anchor=order,
                        extra=x[order, e0:e0 + ne]))
    return res


def assert_same(dets, extras, ref):
    assert len(dets) == len(ref)
    for b, (d, r) in enumerate(zip(dets, ref)):
        assert len(d) == len(r["anchor"]), f"image {b}: kiln {len(d)} detections, reference {len(r['anchor'])}"
        np.testing.assert_array_equal(d["anchor"], r["anchor"], err_msg=f"image {b}: anchors")
        np.testing.assert_array_equal(d["class_id"], r["cls"], err_msg=f"image {b}: classes")
        np.testing.assert_array_equal(d["score"], r["score"], err_msg=f"image {b}: scores")
        got = np.stack([d["x1"], d["y1"], d["x2"], d["y2"]], 1) if len(d) else np.zeros((0, 4), F)
        np.testing.assert_allclose(got, r["boxes"], rtol=1e-6, atol=1e-5, err_msg=f"image {b}: boxes")
        if extras is not None:
            np.testing.assert_array_equal(extras[b], r["extra"], err_msg=f"image {b}: extra")


# ------------------------------------------------------------------ inputs

def make_v8(rng, batch=2, nc=80, n=8400, objects=30, per_object=10, ne=0, dtype=F):
    """A YOLOv8-like [B, 4 + nc + ne, n]: low-score background and clusters
    of overlapping high-score candidates (some of another class on the same
    spot, some reaching past the input's border)."""
    p = np.empty((batch, 4 + nc + ne, n), F)
    p[:, 0:2] = rng.uniform(0, NET, (batch, 2, n))
    p[:, 2:4] = rng.uniform(4, 200, (batch, 2, n))
    p[:, 4:4 + nc] = rng.uniform(0, 0.2, (batch, nc, n))
    if ne:
        p[:, 4 + nc:] = rng.uniform(-20, NET + 20, (batch, ne, n))
    for b in range(batch):
        anchors = rng.choice(n, objects * per_object, replace=False).reshape(objects, per_object)
        for a in anchors:
            cx, cy = rng.uniform(-20, NET + 20, 2)
            w, h = rng.uniform(8, 300, 2)
            c1, c2 = rng.integers(0, nc, 2)
            for i in a:
                p[b, 0, i] = cx + rng.normal(0, 0.08 * w)
                p[b, 1, i] = cy + rng.normal(0, 0.08 * h)
                p[b, 2, i] = w * rng.uniform(0.8, 1.2)
                p[b, 3, i] = h * rng.uniform(0.8, 1.2)
                p[b, 4 + (c2 if rng.random() < 0.3 else c1), i] = rng.uniform(0.2, 0.95)
    return p.astype(dtype)


def make_pose(rng, batch=2, n=8400, k=17):
    """[B, 5 + 3k, n]: one class, keypoints x, y (some off the frame), conf."""
    p = make_v8(rng, batch, nc=1, n=n, objects=25, per_object=8, ne=3 * k)
    kp = p[:, 5:].reshape(batch, k, 3, n)
    kp[:, :, 2] = rng.uniform(0, 1, (batch, k, n))
    return p


def to_v5(p8, rng, nc):
    """The same candidates as YOLOv5's [B, N, 5 + nc + E]: objectness and
    class scores whose product ranks them."""
    b, rows, n = p8.shape
    x = np.transpose(p8, (0, 2, 1))
    obj = np.where(x[..., 4:4 + nc].max(-1) > 0.2, rng.uniform(0.5, 1.0, (b, n)), rng.uniform(0, 0.4, (b, n)))
    return np.ascontiguousarray(np.concatenate([x[..., :4], obj[..., None].astype(F), x[..., 4:]], -1))


def make_v10(rng, batch=2, rows=300, nc=80, ne=0, sort=True):
    """[B, rows, 6 + ne] end to end: x1 y1 x2 y2 score class, best first as a v10 head emits them."""
    p = np.empty((batch, rows, 6 + ne), F)
    xy = rng.uniform(-30, NET + 30, (batch, rows, 2))
    wh = rng.uniform(4, 250, (batch, rows, 2))
    p[..., 0:2], p[..., 2:4] = xy, xy + wh
    p[..., 4] = rng.uniform(0, 1, (batch, rows)) ** 2
    p[..., 5] = rng.integers(0, nc, (batch, rows))
    p[..., 6:] = rng.normal(0, 1, (batch, rows, ne))
    if sort:
        p = np.take_along_axis(p, np.argsort(-p[..., 4], axis=1, kind="stable")[..., None], axis=1)
    return p


def letterbox(fw, fh, net=NET, axes=True):
    """The letterbox Ultralytics' LetterBox would use for a fw x fh frame
    (resized to round(side * r), centered, padding round(dw - 0.1)), as a
    kiln Letterbox; axes=False leaves scale_x/scale_y 0 (hand-made)."""
    r = min(net / fh, net / fw)
    nw, nh = round(fw * r), round(fh * r)
    return kv.Letterbox(r, round((net - nw) / 2 - 0.1), round((net - nh) / 2 - 0.1), fw, fh,
                        nw / fw if axes else 0, nh / fh if axes else 0)


# ----------------------------------------------- against the numpy reference

@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_v8_matches_reference(dtype):
    rng = np.random.default_rng(1)
    p = make_v8(rng, batch=3, dtype=dtype)
    dets = kv.detect(p, num_classes=80)
    ref = ref_decode(p)
    assert_same(dets, None, ref)
    # the random input does exercise NMS: many candidates, a good part suppressed
    cands = (p[:, 4:].astype(F).max(1) > 0.25).sum(1)
    assert all(c > 200 for c in cands)
    assert all(len(d) < c * 0.7 for d, c in zip(dets, cands))
    for d in dets:
        assert np.all(np.diff(d["score"]) <= 0)  # best first
        assert len(set(d["class_id"])) > 5


def test_f16_ties_keep_candidate_order():
    """f16 scores collide often: equal scores must come out in candidate
    order, as torchvision's (stable) sort orders them."""
    rng = np.random.default_rng(2)
    p = make_v8(rng, batch=1, objects=60, per_object=10, dtype=np.float16)
    s = p[0, 4:].astype(F).max(0)
    assert len(np.unique(s[s > 0.25])) < (s > 0.25).sum()  # there are ties
    (d,) = kv.detect(p, num_classes=80, iou=0.95)
    for a, b in zip(d[:-1], d[1:]):
        assert a["score"] > b["score"] or a["anchor"] < b["anchor"]
    assert_same([d], None, ref_decode(p, iou=0.95))


@pytest.mark.parametrize("case", ["agnostic", "classes", "max_det", "max_nms", "iou0", "iou1", "conf0"])
def test_v8_options(case):
    rng = np.random.default_rng(3)
    p = make_v8(rng, batch=2)
    kw = {"agnostic": dict(agnostic=True), "classes": dict(classes=[3, 7, 11, 40, 41, 79]),
          "max_det": dict(max_det=7), "max_nms": dict(max_nms=40), "iou0": dict(iou=0.0), "iou1": dict(iou=1.0),
          "conf0": dict(conf=0.0)}[case]
    if case == "conf0":  # every candidate is in: keep the problem small
        p = p[:, :, :600].copy()
    dets = kv.detect(p, num_classes=80, **kw)
    ref = ref_decode(p, **kw)
    assert_same(dets, None, ref)
    if case == "max_det":
        full = kv.detect(p, num_classes=80)
        for d, f in zip(dets, full):
            assert len(d) == 7 and np.array_equal(d, f[:7])
    if case == "classes":
        assert all(set(d["class_id"]) <= {3, 7, 11, 40, 41, 79} and len(d) for d in dets)
    if case == "agnostic":
        aware = kv.detect(p, num_classes=80)
        assert all(len(a) < len(w) for a, w in zip(dets, aware))


def test_conf_is_strict_and_empty_images():
    p = np.zeros((3, 4 + 3, 5), F)
    p[:, 0:2], p[:, 2:4] = 100, 20
    p[:, 0] += np.arange(5) * 50  # five disjoint boxes
    p[0, 4 + 1] = [0.25, np.nextafter(F(0.25), F(1)), 0.1, 1.0, 0.2]
    p[1, 4:] = 0.1  # nothing above conf
    p[2, 4 + 1] = p[2, 4 + 2] = 0.3  # two classes tie: the first is the label, as torch's max
    dets = kv.detect(p, num_classes=3, conf=0.25)
    assert list(dets[0]["anchor"]) == [3, 1] and list(dets[0]["class_id"]) == [1, 1]
    assert len(dets[1]) == 0
    assert list(dets[2]["anchor"]) == [0, 1, 2, 3, 4]  # equal scores: candidate order
    assert list(dets[2]["class_id"]) == [1] * 5
    assert len(kv.detect(p, num_classes=3, conf=1.0)[0]) == 0
    assert_same(dets, None, ref_decode(p, nc=3))
    # no candidates at all (N = 0), and no images
    assert list(_detect_empty((2, 7, 0), 3)) == [0, 0]
    assert list(_detect_empty((0, 7, 10), 3)) == [-1]  # untouched


def _detect_empty(shape, nc):
    """kiln_vision_detect on an empty pred. kv.detect hands an empty array's
    data over as NULL, which vision.c refuses ("has no data"), so the C call
    gets a dummy non-NULL pointer here; returns counts (-1: not written)."""
    dummy = np.zeros(1, F)
    t = kv._tensor(np.zeros(shape, F))
    t.data = kv._ptr(dummy)
    o = kv.DetectOptions()
    kv._f.call("kiln_detect_options_init", ctypes.byref(o))
    o.num_classes = nc
    nb = max(shape[0], 1)
    out = np.zeros((nb, o.max_det), kv.DETECTION_DTYPE)
    counts = np.full(nb, -1, np.int32)
    kv.check(kv._f.call("kiln_vision_detect", kv.BACKEND_REF, ctypes.byref(o), ctypes.byref(t), None, kv._ptr(out),
                        kv._ptr(counts), None, None))
    return counts


def test_nms_threshold_and_class_offset():
    """Two boxes of IoU 0.6 (1200 / 2000 exactly): suppressed at iou 0.5,
    kept at 0.7, and never suppressed across classes unless agnostic."""
    p = np.zeros((1, 4 + 2, 2), F)
    p[0, :4, 0] = [50, 50, 40, 40]    # x 30..70: area 1600
    p[0, :4, 1] = [60, 50, 40, 40]    # x 40..80: inter 30 x 40 = 1200, union 2000
    p[0, 4, :] = [0.9, 0.8]
    assert len(kv.detect(p, num_classes=2, iou=0.5)[0]) == 1
    assert len(kv.detect(p, num_classes=2, iou=0.7)[0]) == 2
    p[0, 4, 1], p[0, 5, 1] = 0, 0.8  # second box becomes class 1
    assert len(kv.detect(p, num_classes=2, iou=0.5)[0]) == 2
    assert len(kv.detect(p, num_classes=2, iou=0.5, agnostic=True)[0]) == 1


def test_letterbox_mapping_and_clipping():
    rng = np.random.default_rng(4)
    p = make_v8(rng, batch=3)
    lbs = [letterbox(1920, 1080), letterbox(810, 1080), letterbox(1366, 768, axes=False)]
    dets = kv.detect(p, lbs, num_classes=80)
    assert_same(dets, None, ref_decode(p, lbs=lbs))
    raw = kv.detect(p, num_classes=80)
    for d, r, lb in zip(dets, raw, lbs):
        assert np.array_equal(d["anchor"], r["anchor"])
        assert d["x1"].min() == 0 and d["x2"].max() == lb.frame_width  # some boxes were clipped
        assert d["y1"].min() >= 0 and d["y2"].max() <= lb.frame_height
        inside = (r["x1"] > lb.pad_x) & (r["x2"] < NET - lb.pad_x) & (r["y1"] > lb.pad_y) & (r["y2"] < NET - lb.pad_y)
        np.testing.assert_allclose(d["x1"][inside], (r["x1"][inside] - lb.pad_x) / _factors(lb)[0], rtol=1e-6)
    bad = kv.Letterbox(0, 0, 0, 640, 640)
    with pytest.raises(kiln.KilnError):
        kv.detect(p[:1], [bad], num_classes=80)


def test_extra_values_seg_and_pose():
    rng = np.random.default_rng(5)
    p = make_v8(rng, batch=2, ne=32)
    dets, ext = kv.detect(p, num_classes=80, num_extra=32, return_extra=True)
    assert_same(dets, ext, ref_decode(p, ne=32))
    q = make_pose(rng)
    dets, ext = kv.detect(q, num_classes=1, num_extra=51, return_extra=True)
    assert_same(dets, ext, ref_decode(q, nc=1, ne=51))


def test_v5_layout():
    rng = np.random.default_rng(6)
    p8 = make_v8(rng, batch=2, nc=20, ne=4)
    p5 = to_v5(p8, rng, 20)
    for kw in [{}, dict(agnostic=True), dict(classes=[0, 5, 19]), dict(max_det=10, conf=0.3)]:
        dets, ext = kv.detect(p5, layout="v5", num_classes=20, num_extra=4, return_extra=True, **kw)
        assert_same(dets, ext, ref_decode(p5, layout="v5", nc=20, ne=4, **kw))
        assert all(len(d) for d in dets)
    # the score is obj * cls, and a high class score with low objectness is out
    x = np.zeros((1, 2, 5 + 2), F)
    x[0, :, :4] = [[50, 50, 20, 20], [150, 50, 20, 20]]
    x[0, 0, 4:] = [0.5, 0.9, 0.1]   # 0.45 -> kept
    x[0, 1, 4:] = [0.2, 0.1, 1.0]   # objectness below conf
    (d,) = kv.detect(x, layout="v5", num_classes=2)
    assert len(d) == 1 and d["score"][0] == F(0.5) * F(0.9) and d["class_id"][0] == 0


@pytest.mark.parametrize("sort", [True, False])
def test_v10_layout(sort):
    rng = np.random.default_rng(7)
    p = make_v10(rng, ne=3, sort=sort)
    lbs = [letterbox(1280, 720), letterbox(500, 900)]
    for kw in [{}, dict(classes=[1, 2, 3, 50]), dict(max_det=20), dict(conf=0.6)]:
        dets, ext = kv.detect(p, lbs, layout="v10", num_extra=3, return_extra=True, **kw)
        assert_same(dets, ext, ref_decode(p, layout="v10", ne=3, lbs=lbs, **kw))
    # no NMS: identical overlapping boxes all stay
    q = np.tile(np.array([10, 10, 50, 50, 0.9, 2], F), (1, 5, 1))
    assert len(kv.detect(q, layout="v10")[0]) == 5


def test_keypoints():
    rng = np.random.default_rng(8)
    e = rng.uniform(-50, 700, (6, 17 * 3)).astype(F)
    e[:, 2::3] = rng.uniform(0, 1, (6, 17))
    lb = letterbox(1366, 768)
    kp = kv.keypoints(e, lb, 17)
    src = e.reshape(6, 17, 3)
    sx, sy = _factors(lb)
    assert sx != sy  # 1366 x 768 -> 640 x 360: the axes' factors differ
    np.testing.assert_array_equal(kp[..., 0], _map(src[..., 0], lb.pad_x, sx, lb.frame_width))
    np.testing.assert_array_equal(kp[..., 1], _map(src[..., 1], lb.pad_y, sy, lb.frame_height))
    np.testing.assert_array_equal(kp[..., 2], src[..., 2])
    assert kp[..., 0].min() == 0 and kp[..., 0].max() == 1366 and kp[..., 1].max() == 768
    np.testing.assert_array_equal(kv.keypoints(e, None, 17), src)
    hand = letterbox(1366, 768, axes=False)  # scale_x/scale_y 0: scale maps both axes
    np.testing.assert_array_equal(kv.keypoints(e, hand, 17)[..., 1], _map(src[..., 1], hand.pad_y, hand.scale, 768))
    with pytest.raises(kiln.KilnError):
        kv.keypoints(e, kv.Letterbox(float("nan"), 0, 0, 10, 10), 17)


# ----------------------------------------------------- against Ultralytics

def _ultra():
    torch = pytest.importorskip("torch")
    # Ultralytics uses torchvision.ops.nms only when torchvision is already
    # imported (its predictor imports it); otherwise its own TorchNMS, whose
    # unstable argsort orders equal scores arbitrarily. Compare with the
    # torchvision path, the one a predictor runs.
    pytest.importorskip("torchvision")
    pytest.importorskip("ultralytics")
    try:
        from ultralytics.utils.nms import non_max_suppression
    except ImportError:
        from ultralytics.utils.ops import non_max_suppression
    from ultralytics.utils import ops
    torch.set_num_threads(2)
    return torch, non_max_suppression, ops


AGREEMENT = {"iou_deficit": 0.0, "score_diff": 0.0, "kp_px": 0.0, "compared": 0}


@pytest.fixture(scope="module", autouse=True)
def _report_agreement():
    yield
    if AGREEMENT["compared"]:
        print(f"\nagreement with Ultralytics over {AGREEMENT['compared']} detections: max IoU deficit "
              f"{AGREEMENT['iou_deficit']:.3g}, max score diff {AGREEMENT['score_diff']:.3g}, max keypoint "
              f"diff {AGREEMENT['kp_px']:.3g} px")


def _iou(a, b):
    """IoU of matching rows; identical (e.g. clipped to zero area) boxes are 1."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)
    same = np.all(np.abs(a - b) <= 1e-3, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(same, 1.0, inter / np.where(union > 0, union, 1))


def match_ultralytics(d, ul, anchors=None, kp=None, ul_kp=None):
    """One-to-one matching of kiln's detections `d` with Ultralytics' rows
    `ul` (x1 y1 x2 y2 score cls ...): greedy by IoU within a class."""
    ul = np.asarray(ul, np.float64)
    assert len(d) == len(ul), f"kiln {len(d)} detections, Ultralytics {len(ul)}"
    if not len(d):
        return
    kb = np.stack([d["x1"], d["y1"], d["x2"], d["y2"]], 1).astype(np.float64)
    free = np.ones(len(ul), bool)
    for i in range(len(d)):
        cand = np.flatnonzero(free & (ul[:, 5] == d["class_id"][i]))
        assert len(cand), f"detection {i}: no Ultralytics box of class {d['class_id'][i]} left"
        ious = _iou(np.repeat(kb[i:i + 1], len(cand), 0), ul[cand, :4])
        j = cand[np.argmax(ious)]
        iou = ious.max()
        assert iou >= 0.99, f"detection {i}: best IoU {iou}"
        ds = abs(float(d["score"][i]) - ul[j, 4])
        assert ds <= 1e-3, f"detection {i}: score {d['score'][i]} vs {ul[j, 4]}"
        if anchors is not None:
            assert d["anchor"][i] == anchors[j]
        if kp is not None:
            dk = np.abs(kp[i, :, :2] - ul_kp[j, :, :2]).max()
            assert dk <= 0.5, f"detection {i}: keypoints {dk} px apart"
            assert np.allclose(kp[i, :, 2], ul_kp[j, :, 2], atol=1e-6)
            AGREEMENT["kp_px"] = max(AGREEMENT["kp_px"], float(dk))
        free[j] = False
        AGREEMENT["iou_deficit"] = max(AGREEMENT["iou_deficit"], 1 - float(iou))
        AGREEMENT["score_diff"] = max(AGREEMENT["score_diff"], ds)
        AGREEMENT["compared"] += 1


def run_ultralytics(pred, nc, lbs, conf=0.25, iou=0.7, max_det=300, classes=None, agnostic=False, end2end=False,
                    ratio_pad=False, kpt=0):
    """Ultralytics' post-processing as its predictor runs it: NMS, then
    scale_boxes (and scale_coords for keypoints) per image. Returns per image
    (rows, anchors or None, keypoints or None)."""
    torch, nms, ops = _ultra()
    t = torch.from_numpy(np.asarray(pred).astype(F))
    kw = dict(classes=classes, agnostic=agnostic, max_det=max_det, nc=nc)
    if end2end:
        kw["end2end"] = True
    idx_ok = "return_idxs" in inspect.signature(nms).parameters
    out = nms(t, conf, iou, return_idxs=True, **kw) if idx_ok else (nms(t, conf, iou, **kw), None)
    rows, keep = out
    res = []
    for b, r in enumerate(rows):
        r = r.clone()
        lb = lbs[b]
        shape = (lb.frame_height, lb.frame_width)
        rp = (((lb.scale, lb.scale), (lb.pad_x, lb.pad_y)) if ratio_pad else None)
        r[:, :4] = ops.scale_boxes((NET, NET), r[:, :4], shape, ratio_pad=rp)
        k = None
        if kpt:
            k = ops.scale_coords((NET, NET), r[:, 6:].reshape(len(r), kpt, 3).clone(), shape, ratio_pad=rp).numpy()
        res.append((r.numpy(), None if keep is None else keep[b].numpy().reshape(-1), k))
    return res


# 1920x1080 and 750x1000 letterbox to exactly frame * r; 1366x768 rounds
# (to 640x360), so its axes' factors new_w / w and new_h / h differ from r
FRAMES = [(1920, 1080), (1366, 768), (750, 1000)]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("kw", [{}, dict(agnostic=True), dict(classes=[0, 2, 5, 17, 60]), dict(max_det=12),
                                dict(iou=0.45, conf=0.3)])
def test_ultralytics_v8(dtype, kw):
    rng = np.random.default_rng(11)
    p = make_v8(rng, batch=3, dtype=dtype)
    lbs = [letterbox(w, h) for w, h in FRAMES]
    dets = kv.detect(p, lbs, num_classes=80, **kw)
    for d, (rows, keep, _) in zip(dets, run_ultralytics(p, 80, lbs, **kw)):
        match_ultralytics(d, rows, keep)


def test_ultralytics_hand_made_letterbox():
    """A letterbox without scale_x/scale_y maps both axes by its one scale:
    as Ultralytics' scale_boxes given ratio_pad=((scale, scale), pad)."""
    rng = np.random.default_rng(12)
    p = make_v8(rng, batch=2)
    lbs = [letterbox(1366, 768, axes=False), letterbox(641, 479, axes=False)]
    dets = kv.detect(p, lbs, num_classes=80)
    for d, (rows, keep, _) in zip(dets, run_ultralytics(p, 80, lbs, ratio_pad=True)):
        match_ultralytics(d, rows, keep)


def test_ultralytics_seg_and_pose():
    rng = np.random.default_rng(13)
    lbs = [letterbox(w, h) for w, h in FRAMES[:2]]
    p = make_v8(rng, batch=2, ne=32)
    dets, ext = kv.detect(p, lbs, num_classes=80, num_extra=32, return_extra=True)
    for d, e, (rows, keep, _) in zip(dets, ext, run_ultralytics(p, 80, lbs)):
        match_ultralytics(d, rows, keep)
        np.testing.assert_allclose(e, rows[:, 6:], rtol=0, atol=0)  # same order, so same coefficients
    q = make_pose(rng)
    dets, ext = kv.detect(q, lbs, num_classes=1, num_extra=51, return_extra=True)
    for d, e, lb, (rows, keep, ukp) in zip(dets, ext, lbs, run_ultralytics(q, 1, lbs, kpt=17)):
        match_ultralytics(d, rows, keep, kv.keypoints(e, lb, 17), ukp)


def test_ultralytics_v10():
    rng = np.random.default_rng(14)
    p = make_v10(rng, batch=2, ne=51)
    lbs = [letterbox(w, h) for w, h in FRAMES[:2]]
    for kw in [{}, dict(classes=[1, 2, 3, 50]), dict(max_det=25)]:
        dets = kv.detect(p, lbs, layout="v10", num_extra=51, **kw)
        for d, (rows, keep, _) in zip(dets, run_ultralytics(p, 0, lbs, end2end=True, **kw)):
            match_ultralytics(d, rows, keep)


# ----------------------------------------------- a real network, if offline

NETS = [("yolov8n.yaml", "v8"), ("yolo11n.yaml", "v8"), ("yolov10n.yaml", "v10"), ("yolov8n-pose.yaml", "pose"),
        ("yolov8n-seg.yaml", "seg")]


def _randomize(torch, net):
    """A yaml-built network's head starts with constant outputs (every
    anchor of a stride scores the same); random conv weights give varied
    scores and boxes. The DFL's fixed 0..15 projection stays as it is."""
    import math
    from ultralytics.nn.modules.block import DFL
    fixed = {id(c) for m in net.modules() if isinstance(m, DFL) for c in m.modules()}
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d) and id(m) not in fixed:
            torch.nn.init.normal_(m.weight, 0, math.sqrt(2.0 / m.weight[0].numel()))
            if m.bias is not None:
                torch.nn.init.normal_(m.bias, -1, 0.5)


@pytest.mark.parametrize("name,kind,init", [n + ("random",) for n in NETS] + [("yolov8n.yaml", "v8", "default")])
def test_ultralytics_real_network(name, kind, init):
    """The raw output of a real network (built from its yaml: no download)
    on a letterboxed random frame, post-processed by both. init "default"
    keeps the constant initial head: hundreds of candidates with exactly
    equal scores on a grid of overlapping boxes, where only the tie rule
    decides which survive NMS."""
    torch, _, _ = _ultra()
    from ultralytics import YOLO
    try:
        model = YOLO(name)
    except Exception as e:  # noqa: BLE001 - a yaml this ultralytics lacks, or one that wants the network
        pytest.skip(f"cannot build {name} offline: {e}")
    net = model.model.eval()
    head = net.model[-1]
    torch.manual_seed(0)
    if init == "random":
        _randomize(torch, net)
    if kind == "v10":
        if not hasattr(head, "one2one_cv2"):
            pytest.skip("this ultralytics' v10 head has no one-to-one branch")
        head.end2end = True
    fw, fh = FRAMES[1]
    lb = letterbox(fw, fh)
    x = torch.full((1, 3, NET, NET), 114 / 255)
    y0, x0 = int(lb.pad_y), int(lb.pad_x)
    x[:, :, y0:NET - y0, x0:NET - x0] = torch.rand(1, 3, NET - 2 * y0, NET - 2 * x0)
    with torch.no_grad():
        out = net(x)
    while isinstance(out, (list, tuple)):
        out = out[0]
    pred = out.numpy()
    nc = len(model.names)
    if kind == "v10":
        assert pred.shape[1:] == (300, 6)
        conf = float(np.sort(pred[0, :, 4])[-100])
        dets = kv.detect(pred, [lb], layout="v10", conf=conf)
        rows, keep, _ = run_ultralytics(pred, 0, [lb], conf=conf, end2end=True)[0]
        assert len(dets[0]) > 50
        match_ultralytics(dets[0], rows, keep)
        return
    ne = pred.shape[1] - 4 - nc
    best = pred[0, 4:4 + nc].max(0)
    if init == "default":
        top = np.unique(best)
        assert len(top) <= 3 and (best == top[-1]).sum() >= 400  # one score per stride
        conf = float(top[-2])
    else:
        conf = float(np.sort(best)[-400])  # a few hundred candidates into NMS
    dets, ext = kv.detect(pred, [lb], num_classes=nc, num_extra=ne, conf=conf, return_extra=True)
    kpt = 17 if kind == "pose" else 0
    rows, keep, ukp = run_ultralytics(pred, nc, [lb], conf=conf, kpt=kpt)[0]
    assert len(dets[0]) > 5
    match_ultralytics(dets[0], rows, keep, kv.keypoints(ext[0], lb, 17) if kpt else None, ukp)
    if keep is not None:  # the same candidates in the same order
        np.testing.assert_array_equal(dets[0]["anchor"], keep)
