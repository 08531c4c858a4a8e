"""infer_async and schedulers: futures resolve to the same results as
synchronous calls, errors land where they belong, the dynamic batcher
batches, shutdown and close complete every future."""
import gc
import threading
import time
from concurrent.futures import Future, wait

import numpy as np
import pytest

import kiln


def test_infer_async_matches_sync(engine, images):
    xs = [images(1 + i % 2, seed=200 + i) for i in range(12)]
    expect = [engine(x) for x in xs]
    futures = [engine.infer_async({"images": x}) for x in xs]
    assert all(isinstance(f, Future) for f in futures)
    for f, e in zip(futures, expect):
        res = f.result(timeout=60)
        assert list(res) == ["probs"] and np.array_equal(res["probs"], e)


def test_call_forms_and_callbacks(engine, images):
    x = images(1, seed=3)
    expect = engine(x)
    seen = threading.Event()
    got = []
    f = engine.infer_async(images=x)
    f.add_done_callback(lambda fut: (got.append(fut.result()["probs"]), seen.set()))
    assert seen.wait(60) and np.array_equal(got[0], expect)
    assert np.array_equal(engine.infer_async(x).result(60)["probs"], expect)
    assert np.array_equal(engine.infer_async([x]).result(60)["probs"], expect)
    assert not f.cancel()  # already queued in C: not cancellable from Python


def test_bad_requests_raise_at_submit(engine):
    with pytest.raises(TypeError, match="'images' must be f32"):
        engine.infer_async(np.zeros((1, 3, 64, 64)))
    with pytest.raises(ValueError, match="unknown input 'x'"):
        engine.infer_async({"x": np.zeros((1, 3, 64, 64), np.float32)})


def test_many_threads_submitting(engine, images):
    xs = [images(1, seed=300 + i) for i in range(4)]
    expect = [engine(x) for x in xs]
    with engine.scheduler(workers=2) as s:
        futures = {}
        lock = threading.Lock()

        def client(t):
            for i in range(6):
                v = (t + i) % 4
                f = s.infer_async({"images": xs[v]})
                with lock:
                    futures[(t, i)] = (f, v)

        threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for f, v in futures.values():
            assert np.array_equal(f.result(60)["probs"], expect[v])
        st = s.stats()
        assert st["submitted"] == st["completed"] == 48 and st["failed"] == 0


def _settled_stats(s, rows, timeout=10):
    """Stats once `rows` rows are counted: a batch's runs/rows counters are
    updated just after its futures complete."""
    end = time.monotonic() + timeout
    st = s.stats()
    while st["rows"] < rows and time.monotonic() < end:
        time.sleep(0.001)
        st = s.stats()
    return st


def test_dynamic_batching(engine, images):
    xs = [images(1, seed=400 + i) for i in range(16)]
    expect = [engine(x) for x in xs]
    with engine.scheduler(workers=1, max_batch=4, max_delay_us=200000) as s:
        assert s.options["max_batch"] == 4
        futures = [s.infer_async({"images": x}) for x in xs]
        for f, e in zip(futures, expect):
            # a row of a batched run equals the batch-1 run up to rounding
            np.testing.assert_allclose(f.result(60)["probs"], e, rtol=1e-5, atol=1e-6)
        st = _settled_stats(s, rows=16)
    assert st["completed"] == 16 and st["rows"] == 16
    assert st["runs"] < 16  # some requests were batched
    with engine.scheduler(max_batch=2) as s:
        with pytest.raises(kiln.KilnError, match="KILN_ERR_"):
            s.infer_async({"images": images(3)})  # more rows than max_batch: refused at submit


def test_batching_needs_symbolic_dim0(fixed_batch_path):
    e, _ = kiln.build(fixed_batch_path, backend="ref", cache=False)
    with e:
        with pytest.raises(kiln.KilnError) as ei:
            e.scheduler(max_batch=4)
        assert ei.value.status_name == "KILN_ERR_INVALID_ARGUMENT" and "'x'" in ei.value.message
        x = np.array([[-1, 2, -3, 4], [5, -6, 7, -8]], np.float32)
        assert np.array_equal(e.infer_async(x).result(60)["y"], np.maximum(x, 0))


def test_shutdown_and_close(engine, images):
    x = images(2, seed=5)
    s = engine.scheduler(workers=1)
    futures = [s.infer_async(x) for _ in range(20)]
    s.shutdown(cancel=True)
    with pytest.raises(kiln.KilnError) as ei:
        s.infer_async(x)
    assert ei.value.status_name == "KILN_ERR_CANCELLED"
    s.close()
    assert all(f.done() for f in futures)  # close returns with every request complete
    cancelled = [f for f in futures if f.exception() is not None]
    for f in cancelled:
        assert f.exception().status_name == "KILN_ERR_CANCELLED"
    for f in futures:
        if f.exception() is None:
            assert f.result()["probs"].shape == (2, 10)
    with pytest.raises(kiln.KilnError, match="closed"):
        s.infer_async(x)


def test_close_drains(engine, images):
    x = images(1, seed=6)
    expect = engine(x)
    s = engine.scheduler(workers=1)
    futures = [s.infer_async(x) for _ in range(10)]
    s.close()  # drains: every queued request still runs
    assert all(np.array_equal(f.result(0)["probs"], expect) for f in futures)


def test_dropping_the_engine_completes_its_futures(tinynet_path, images):
    e, _ = kiln.build(tinynet_path, backend="ref", cache=False)
    x = images(1, seed=8)
    expect = e(x)
    futures = [e.infer_async(x) for _ in range(6)]
    del e
    gc.collect()
    done, not_done = wait(futures, timeout=60)
    assert not not_done
    assert all(np.array_equal(f.result()["probs"], expect) for f in futures)


def test_engine_close_closes_schedulers(tinynet_path, images):
    e, _ = kiln.build(tinynet_path, backend="ref", cache=False)
    s = e.scheduler(workers=2)
    f = s.infer_async(images(1))
    e.close()
    assert f.done() and f.result()["probs"].shape == (1, 10)
    with pytest.raises(kiln.KilnError, match="closed"):
        s.infer_async(images(1))


def test_outputs_outlive_everything(tinynet_path, images):
    """Output arrays own kiln's buffers: they stay valid after the scheduler
    and the engine are gone."""
    e, _ = kiln.build(tinynet_path, backend="ref", cache=False)
    x = images(2, seed=9)
    expect = e(x).copy()
    with e.scheduler() as s:
        y = s.infer_async(x).result(60)["probs"]
    e.close()
    del e, s
    gc.collect()
    assert np.array_equal(y, expect)


def test_infer_async_other_host_inputs(engine, images):
    x = images(1, seed=12)
    expect = engine(x)

    class HostDLPack:
        def __dlpack__(self, **kw):
            return x.__dlpack__(**kw)

        def __dlpack_device__(self):
            return x.__dlpack_device__()

    assert np.array_equal(engine.infer_async(HostDLPack()).result(60)["probs"], expect)
    torch = pytest.importorskip("torch")
    y = engine.infer_async(torch.from_numpy(x)).result(60)["probs"]
    assert isinstance(y, torch.Tensor) and np.array_equal(y.numpy(), expect)
