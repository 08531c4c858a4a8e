"""kiln.vision.masks on the ref backend (issue #15: masks IoU >= 0.98 against
Ultralytics' own mask code, checked in CI without a GPU).

Two oracles:
  * an independent numpy reference of the semantics src/vision/ref_mask.c
    documents (float64, vectorised, explicit sigmoid), for random
    prototypes, frames of several aspect ratios, f16 protos, boxes on the
    frame's edge and tiny boxes, both size modes: per-instance mask IoU
    >= 0.98 and pixel agreement >= 99.5%;
  * where torch and ultralytics import, Ultralytics' own functions on the
    same tensors, called as its SegmentationPredictor does
    (process_mask_native for retina masks, process_mask(upsample=True)
    otherwise): per-instance mask IoU >= 0.98 (or at most one pixel apart,
    for masks of a few pixels). Where the letterbox padding is whole proto
    pixels the masks are identical; where it is not, Ultralytics 8.4
    upsamples the logits 2x or 4x before cropping, a second bilinear pass
    the kernel's single continuous map does not make: IoU 0.985-0.996 on
    ordinary frames, down to 0.977 on a 37-pixel-wide one (seed sweeps).

The letterboxes are built from Ultralytics' LetterBox numbers (ratio r,
left = round(dw - 0.1), top = round(dh - 0.1)) rather than through
kv.preprocess, so that these tests depend on the mask kernel alone.
"""
import numpy as np
import pytest

import kiln.vision as kv
from kiln import KilnError

P = 32
IOU_MIN = 0.98
AGREE_MIN = 0.995

# (frame_w, frame_h, net_w, net_h): padding top/bottom, left/right, none,
# padding that is not a whole proto pixel (213 network pixels), a
# rectangular network input (Ultralytics' rect letterbox of 1280x720), a
# frame smaller than the network (scaled up), a thin frame.
FRAMES = [
    (1280, 720, 640, 640),
    (480, 640, 640, 640),
    (640, 640, 640, 640),
    (1000, 333, 640, 640),
    (333, 1000, 640, 640),
    (1280, 720, 640, 384),
    (200, 150, 320, 320),
    (37, 500, 640, 640),
]


# ----------------------------------------------------------------- inputs

def letterbox(fw, fh, nw, nh):
    """Ultralytics' LetterBox(center=True, scaleup=True) numbers as a kv.Letterbox."""
    r = min(nh / fh, nw / fw)
    new_w, new_h = max(round(fw * r), 1), max(round(fh * r), 1)
    dw, dh = (nw - new_w) / 2, (nh - new_h) / 2
    return kv.Letterbox(r, round(dw - 0.1), round(dh - 0.1), fw, fh), (new_w, new_h)


def _upsample(a, h, w):
    """Bilinear (half-pixel centers) of the last two axes to h x w: smooth fields."""
    def axis(n_in, n_out):
        u = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        i0 = np.floor(u).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), u - i0
    y0, y1, wy = axis(a.shape[-2], h)
    x0, x1, wx = axis(a.shape[-1], w)
    rows = a[..., y0, :] * (1 - wy)[:, None] + a[..., y1, :] * wy[:, None]
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


def protos_for(rng, nw, nh, smooth=True):
    """P x (nh/4) x (nw/4) prototypes: smooth fields (as a real head's) plus
    some noise, or plain noise (edges everywhere: the hardest case for
    agreeing on every pixel)."""
    mh, mw = nh // 4, nw // 4
    if not smooth:
        return rng.standard_normal((P, mh, mw)).astype(np.float32)
    low = rng.standard_normal((P, max(mh // 8, 2), max(mw // 8, 2)))
    return np.ascontiguousarray(_upsample(low, mh, mw) + 0.1 * rng.standard_normal((P, mh, mw)), np.float32)


def net_boxes(rng, lb, content):
    """Boxes in network pixels inside the letterbox's content: ordinary ones,
    one on each edge of the frame, tiny ones (1-3 network pixels), the
    whole frame."""
    x0, y0 = lb.pad_x, lb.pad_y
    x1, y1 = x0 + content[0], y0 + content[1]
    out = []
    for _ in range(6):
        w = rng.uniform(0.1, 0.6) * (x1 - x0)
        h = rng.uniform(0.1, 0.6) * (y1 - y0)
        bx, by = rng.uniform(x0, x1 - w), rng.uniform(y0, y1 - h)
        out.append((bx, by, bx + w, by + h))
    w, h = 0.4 * (x1 - x0), 0.4 * (y1 - y0)
    out += [(x0, y0 + h / 2, x0 + w, y0 + 1.5 * h),      # left edge
            (x1 - w, y0 + h / 3, x1, y0 + 1.3 * h),      # right edge
            (x0 + w / 2, y0, x0 + 1.5 * w, y0 + h),      # top edge
            (x0 + w / 3, y1 - h, x0 + 1.2 * w, y1),      # bottom edge
            (x0, y0, x1, y1)]                            # the whole frame
    for _ in range(3):
        s = rng.uniform(1, 3)
        bx, by = rng.uniform(x0, x1 - s), rng.uniform(y0, y1 - s)
        out.append((bx, by, bx + s, by + s))
    return np.array(out, np.float32)


def to_frame(bn, lb):
    """Network-pixel boxes to frame pixels through lb, clipped (as kiln_vision_detect returns them)."""
    b = bn.astype(np.float64).copy()
    b[:, [0, 2]] = np.clip((b[:, [0, 2]] - lb.pad_x) / lb.scale, 0, lb.frame_width)
    b[:, [1, 3]] = np.clip((b[:, [1, 3]] - lb.pad_y) / lb.scale, 0, lb.frame_height)
    return b.astype(np.float32)


def dets_of(boxes):
    d = np.zeros(len(boxes), kv.DETECTION_DTYPE)
    for k, name in enumerate(("x1", "y1", "x2", "y2")):
        d[name] = boxes[:, k]
    d["score"] = 0.9
    return d


def coeffs_for(rng, n):
    # logits of a few units: masks with both inside and outside in most boxes
    return (rng.standard_normal((n, P)) * 0.6).astype(np.float32)


# -------------------------------------------------------- numpy reference

def _samples(n_out, n_proto, a, b, lo, hi):
    """Bilinear taps of an affine map u = a * k + b, clamped to [lo, hi] and the proto."""
    lo, hi = max(lo, 0.0), min(hi, n_proto - 1.0)
    lo = min(lo, n_proto - 1.0)
    hi = max(hi, lo)
    u = np.clip(a * np.arange(n_out, dtype=np.float64) + b, lo, hi)
    i0 = np.floor(u).astype(np.int64)
    return i0, np.minimum(i0 + 1, n_proto - 1), u - i0


def reference_masks(coeffs, dets, protos, lb, net, out_size=None, threshold=0.5):
    """The masks as ref_mask.c's comment defines them, in float64."""
    protos = np.asarray(protos, np.float64)
    protos = protos.reshape(protos.shape[-3:])
    _, mh, mw = protos.shape
    nw, nh = net
    logits = np.einsum("np,phw->nhw", np.asarray(coeffs, np.float64), protos)
    box = np.stack([dets[k].astype(np.float64) for k in ("x1", "y1", "x2", "y2")], 1)
    if out_size is None:
        W, H = lb.frame_width, lb.frame_height
        px, py = lb.pad_x, lb.pad_y
        # the content as LetterBox resized it, whole network pixels: a factor per axis
        cw, ch = max(round(W * float(lb.scale)), 1), max(round(H * float(lb.scale)), 1)
        sx, sy = cw / W, ch / H
        kx, ky = mw / nw, mh / nh
        # frame pixel center -> network pixel -> proto pixel center, inside the content
        cx = _samples(W, mw, sx * kx, (0.5 * sx + px) * kx - 0.5, px * kx, (px + cw) * kx - 1)
        cy = _samples(H, mh, sy * ky, (0.5 * sy + py) * ky - 0.5, py * ky, (py + ch) * ky - 1)
    else:
        W, H = out_size
        cx = _samples(W, mw, mw / W, 0.5 * mw / W - 0.5, 0, mw - 1)
        cy = _samples(H, mh, mh / H, 0.5 * mh / H - 0.5, 0, mh - 1)
        if lb is not None:  # frame -> network -> output pixels
            box = box * float(lb.scale) + np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], np.float64)
            box = box * np.array([W / nw, H / nh, W / nw, H / nh])
            # edges a float rounding away from a whole pixel are that pixel
            whole = np.floor(box + 0.5)
            box = np.where(np.abs(box - whole) <= np.maximum(np.abs(box), 1) * 2.0 ** -21, whole, box)
        else:
            box = box * np.array([W / nw, H / nh, W / nw, H / nh])
    out = np.zeros((len(coeffs), H, W), np.uint8)
    cols, rows = np.arange(W), np.arange(H)
    for i, lg in enumerate(logits):
        top = lg[cy[0]] * (1 - cy[2])[:, None] + lg[cy[1]] * cy[2][:, None]
        up = top[:, cx[0]] * (1 - cx[2]) + top[:, cx[1]] * cx[2]
        with np.errstate(over="ignore"):
            prob = 1 / (1 + np.exp(-up))
        inside = ((rows >= box[i, 1]) & (rows < box[i, 3]))[:, None] & ((cols >= box[i, 0]) & (cols < box[i, 2]))
        out[i] = (prob > threshold) & inside
    return out


def ious(a, b):
    a, b = a.astype(bool), b.astype(bool)
    inter = (a & b).sum((1, 2))
    union = (a | b).sum((1, 2))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def summary(got, want):
    """The IoU numbers a comparison reports: all instances, and masks of 100 pixels or more."""
    iou = ious(got, want)
    big = (got.astype(bool) | want.astype(bool)).sum((1, 2)) >= 100
    return (f"IoU min {iou.min():.4f} (of masks >= 100 px: {iou[big].min() if big.any() else 1:.4f}) "
            f"mean {iou.mean():.4f}, pixels agreeing {(got == want).mean():.5f}")


def assert_close(got, want, what, spare_pixels=0):
    """Per-instance IoU >= IOU_MIN (an instance differing in at most
    spare_pixels pixels also passes: on a mask of a few pixels one pixel is
    more than 2%) and AGREE_MIN of all pixels equal."""
    assert got.shape == want.shape, (what, got.shape, want.shape)
    iou = ious(got, want)
    agree = (got == want).mean()
    diff = (got != want).sum((1, 2))
    bad = np.nonzero((iou < IOU_MIN) & (diff > spare_pixels))[0]
    assert len(bad) == 0, f"{what}: instances {bad.tolist()} have IoU {iou[bad].round(4).tolist()}"
    assert agree >= AGREE_MIN, f"{what}: {agree:.5f} of the pixels agree"
    return iou, agree


def case(seed, fw, fh, nw, nh, smooth=True):
    rng = np.random.default_rng(seed)
    lb, content = letterbox(fw, fh, nw, nh)
    protos = protos_for(rng, nw, nh, smooth)
    bn = net_boxes(rng, lb, content)
    return lb, protos, bn, coeffs_for(rng, len(bn))


# ------------------------------------------------- against numpy reference

@pytest.mark.parametrize("fw,fh,nw,nh", FRAMES)
@pytest.mark.parametrize("smooth", [True, False], ids=["smooth", "noise"])
def test_frame_size_masks_match_reference(fw, fh, nw, nh, smooth):
    lb, protos, bn, coeffs = case(fw * 7 + fh, fw, fh, nw, nh, smooth)
    dets = dets_of(to_frame(bn, lb))
    got = kv.masks(coeffs, dets, protos, lb, net_size=(nw, nh))
    assert got.dtype == np.uint8 and set(np.unique(got)) <= {0, 1}
    want = reference_masks(coeffs, dets, protos, lb, (nw, nh))
    assert_close(got, want, f"frame {fw}x{fh} net {nw}x{nh}")
    # not vacuous: the masks have insides, and the box crop bites
    assert want[:6].sum() > 0 and (want.sum((1, 2)) < fw * fh).all()


@pytest.mark.parametrize("fw,fh,nw,nh", FRAMES)
def test_sized_masks_match_reference(fw, fh, nw, nh):
    lb, protos, bn, coeffs = case(fw * 5 + fh, fw, fh, nw, nh)
    dets = dets_of(to_frame(bn, lb))
    mh, mw = protos.shape[1:]
    # the network input (Ultralytics' default), the protos' own size, another size
    for size in [(nw, nh), (mw, mh), (nw // 2 + 3, nh + 17)]:
        got = kv.masks(coeffs, dets, protos, lb, net_size=(nw, nh), out_size=size)
        want = reference_masks(coeffs, dets, protos, lb, (nw, nh), out_size=size)
        assert_close(got, want, f"frame {fw}x{fh} net {nw}x{nh} out {size}")


def test_f16_and_rank4_protos():
    fw, fh, nw, nh = 1000, 333, 640, 640
    lb, protos, bn, coeffs = case(3, fw, fh, nw, nh)
    dets = dets_of(to_frame(bn, lb))
    p16 = protos.astype(np.float16)
    want = reference_masks(coeffs, dets, p16.astype(np.float32), lb, (nw, nh))
    assert_close(kv.masks(coeffs, dets, p16, lb, net_size=(nw, nh)), want, "f16 protos")
    assert_close(kv.masks(coeffs, dets, p16[None], lb, net_size=(nw, nh)), want, "f16 [1,P,mh,mw]")
    assert_close(kv.masks(coeffs, dets, protos[None], lb, net_size=(nw, nh)),
                 reference_masks(coeffs, dets, protos, lb, (nw, nh)), "f32 [1,P,mh,mw]")
    want = reference_masks(coeffs, dets, p16.astype(np.float32), lb, (nw, nh), out_size=(nw, nh))
    assert_close(kv.masks(coeffs, dets, p16, lb, net_size=(nw, nh), out_size=(nw, nh)), want, "f16 sized")
    # a cut away from 0.5 sees the logits' scale, which > 0 does not
    want = reference_masks(coeffs, dets, p16.astype(np.float32), lb, (nw, nh), threshold=0.25)
    assert_close(kv.masks(coeffs, dets, p16, lb, net_size=(nw, nh), threshold=0.25), want, "f16 t=0.25")


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_threshold_is_a_probability(threshold):
    fw, fh, nw, nh = 1280, 720, 640, 640
    lb, protos, bn, coeffs = case(11, fw, fh, nw, nh)
    dets = dets_of(to_frame(bn, lb))
    got = kv.masks(coeffs, dets, protos, lb, net_size=(nw, nh), threshold=threshold)
    assert_close(got, reference_masks(coeffs, dets, protos, lb, (nw, nh), threshold=threshold), f"t={threshold}")
    if threshold != 0.5:  # and it matters: the other cut gives other masks
        other = reference_masks(coeffs, dets, protos, lb, (nw, nh), threshold=0.5)
        assert (got != other).sum() > 1000


def test_threshold_extremes_and_boxes_outside():
    fw, fh, nw, nh = 480, 640, 640, 640
    lb, protos, bn, coeffs = case(5, fw, fh, nw, nh)
    fb = to_frame(bn, lb)
    dets = dets_of(fb)
    everything = kv.masks(coeffs, dets, protos, lb, net_size=(nw, nh), threshold=0.0)
    for i, (x1, y1, x2, y2) in enumerate(fb):  # the whole box: crop_mask's x1 <= c < x2
        cols, rows = np.arange(fw), np.arange(fh)
        box = ((rows >= y1) & (rows < y2))[:, None] & ((cols >= x1) & (cols < x2))
        assert (everything[i] == box).all(), i
    assert not kv.masks(coeffs, dets, protos, lb, net_size=(nw, nh), threshold=1.0).any()
    # boxes wholly outside, inverted, NaN: empty masks, not errors
    odd = dets_of(np.array([[-50, -50, -10, -10], [fw + 5, 0, fw + 50, 10], [30, 30, 10, 10],
                            [np.nan, 0, 10, 10]], np.float32))
    assert not kv.masks(coeffs[:4], odd, protos, lb, net_size=(nw, nh), threshold=0.0).any()
    # no detections: an empty stack
    assert kv.masks(coeffs[:0], dets[:0], protos, lb, net_size=(nw, nh)).shape == (0, fh, fw)


def test_sized_masks_without_letterbox_take_network_boxes():
    fw, fh, nw, nh = 1280, 720, 640, 640
    lb, protos, bn, coeffs = case(9, fw, fh, nw, nh)
    got = kv.masks(coeffs, dets_of(bn), protos, None, net_size=(nw, nh), out_size=(nw, nh))
    ident = kv.Letterbox(1.0, 0.0, 0.0, nw, nh)
    assert_close(got, reference_masks(coeffs, dets_of(bn), protos, ident, (nw, nh), out_size=(nw, nh)), "no box")
    # the same masks as with the letterbox and frame boxes
    via_frame = kv.masks(coeffs, dets_of(to_frame(bn, lb)), protos, lb, net_size=(nw, nh), out_size=(nw, nh))
    assert_close(got, via_frame, "frame boxes through the letterbox")


def test_bad_arguments_fail_with_a_message():
    fw, fh, nw, nh = 640, 640, 640, 640
    lb, protos, bn, coeffs = case(1, fw, fh, nw, nh)
    dets = dets_of(bn)
    with pytest.raises(KilnError, match="threshold"):
        kv.masks(coeffs, dets, protos, lb, net_size=(nw, nh), threshold=float("nan"))
    with pytest.raises(KilnError, match="scale"):
        kv.masks(coeffs, dets, protos, kv.Letterbox(0.0, 0, 0, fw, fh), net_size=(nw, nh))
    with pytest.raises(KilnError, match="protos"):
        kv.masks(coeffs, dets, protos[:, :0], lb, net_size=(nw, nh))


def test_reference_is_not_vacuous():
    """The comparison can fail: half a proto pixel of shift, or thresholding
    the sigmoid at the logit's cut, is caught."""
    fw, fh, nw, nh = 1280, 720, 640, 640
    lb, protos, bn, coeffs = case(2, fw, fh, nw, nh)
    dets = dets_of(to_frame(bn, lb))
    got = kv.masks(coeffs, dets, protos, lb, net_size=(nw, nh))
    shifted = kv.Letterbox(lb.scale, lb.pad_x + 2.0, lb.pad_y + 2.0, fw, fh)
    with pytest.raises(AssertionError):
        assert_close(got, reference_masks(coeffs, dets, protos, shifted, (nw, nh)), "shifted")
    with pytest.raises(AssertionError):
        assert_close(got, reference_masks(coeffs, dets, protos, lb, (nw, nh), threshold=0.3), "t")


# --------------------------------------------------- against Ultralytics

def _ultralytics():
    torch = pytest.importorskip("torch")
    ops = pytest.importorskip("ultralytics.utils.ops")
    return torch, ops


# Ultralytics' native path assumes the network input is 4x the protos, as
# every YOLO-seg head has it; all FRAMES are.
@pytest.mark.parametrize("fw,fh,nw,nh", FRAMES)
def test_retina_masks_match_ultralytics(fw, fh, nw, nh):
    torch, ops = _ultralytics()
    lb, protos, bn, coeffs = case(fw * 3 + fh, fw, fh, nw, nh)
    # as SegmentationPredictor.construct_result with retina_masks=True
    fb = ops.scale_boxes((nh, nw), torch.from_numpy(bn.copy()), (fh, fw))
    want = ops.process_mask_native(torch.from_numpy(protos), torch.from_numpy(coeffs), fb, (fh, fw)).numpy()
    got = kv.masks(coeffs, dets_of(fb.numpy()), protos, lb, net_size=(nw, nh))
    assert_close(got, want, f"retina frame {fw}x{fh} net {nw}x{nh}", spare_pixels=1)
    print(f"retina {fw}x{fh} net {nw}x{nh}: {summary(got, want)}")


@pytest.mark.parametrize("fw,fh,nw,nh", FRAMES)
def test_default_masks_match_ultralytics(fw, fh, nw, nh):
    torch, ops = _ultralytics()
    lb, protos, bn, coeffs = case(fw * 2 + fh, fw, fh, nw, nh)
    # as SegmentationPredictor.construct_result by default: masks of the
    # network input, cropped with the network-pixel boxes
    want = ops.process_mask(torch.from_numpy(protos), torch.from_numpy(coeffs), torch.from_numpy(bn.copy()),
                            (nh, nw), upsample=True).numpy()
    # kiln given the network-pixel boxes (no letterbox) ...
    got = kv.masks(coeffs, dets_of(bn), protos, None, net_size=(nw, nh), out_size=(nw, nh))
    assert_close(got, want, f"default frame {fw}x{fh} net {nw}x{nh}", spare_pixels=1)
    print(f"default {fw}x{fh} net {nw}x{nh}: {summary(got, want)}")
    # ... and given frame boxes as kiln_vision_detect maps them ((x - pad) / scale),
    # which the kernel maps back through the letterbox. (Not Ultralytics' own
    # scale_boxes: it divides by new_w / w rather than r on the padded axis, a
    # difference of detect's, not of the masks, that moves tiny boxes a column.)
    got = kv.masks(coeffs, dets_of(to_frame(bn, lb)), protos, lb, net_size=(nw, nh), out_size=(nw, nh))
    assert_close(got, want, f"default via frame boxes {fw}x{fh} net {nw}x{nh}", spare_pixels=1)
    print(f"  via frame boxes: {summary(got, want)}")


def test_proto_size_masks_match_ultralytics():
    torch, ops = _ultralytics()
    fw, fh, nw, nh = 1280, 720, 640, 640
    lb, protos, bn, coeffs = case(4, fw, fh, nw, nh)
    mh, mw = protos.shape[1:]
    want = ops.process_mask(torch.from_numpy(protos), torch.from_numpy(coeffs), torch.from_numpy(bn.copy()),
                            (nh, nw), upsample=False).numpy()
    got = kv.masks(coeffs, dets_of(bn), protos, None, net_size=(nw, nh), out_size=(mw, mh))
    assert_close(got, want, "process_mask(upsample=False)")


def test_ultralytics_comparison_is_not_vacuous():
    torch, ops = _ultralytics()
    fw, fh, nw, nh = 1280, 720, 640, 640
    lb, protos, bn, coeffs = case(8, fw, fh, nw, nh)
    fb = ops.scale_boxes((nh, nw), torch.from_numpy(bn.copy()), (fh, fw))
    want = ops.process_mask_native(torch.from_numpy(protos), torch.from_numpy(coeffs), fb, (fh, fw)).numpy()
    assert want[:6].sum() > 0
    # the default (network-size) masks are not the retina ones
    got = kv.masks(coeffs, dets_of(fb.numpy()), protos, lb, net_size=(nw, nh), out_size=(fw, fh))
    with pytest.raises(AssertionError):
        assert_close(got, want, "sized masks against retina masks")
