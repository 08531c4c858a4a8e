"""One engine, many Python threads: every result equal to the
single-threaded one, and the GIL released while kiln runs."""
import threading
import time

import numpy as np

import kiln

N_THREADS = 16
N_ITER = 6


def test_16_threads_match_single_threaded(engine, images):
    xs = [images(1 + (i % 3), seed=100 + i) for i in range(8)]
    expect = [engine(x) for x in xs]
    errors, mismatches = [], []
    start = threading.Barrier(N_THREADS)

    def client(t):
        try:
            start.wait()
            for i in range(N_ITER):
                v = (t * 5 + i) % len(xs)
                y = engine(xs[v]) if i % 2 else engine.infer({"images": xs[v]})["probs"]
                if not np.array_equal(y, expect[v]):
                    mismatches.append((t, i, v))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert not mismatches, mismatches


def test_errors_on_some_threads_leave_the_others_alone(engine, images):
    x = images(1, seed=1)
    expect = engine(x)
    bad = np.zeros((1, 3, 64, 64), np.float64)
    results = [None] * 8

    def client(t):
        try:
            results[t] = engine(bad if t % 2 else x)
        except TypeError as e:
            results[t] = e

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t, r in enumerate(results):
        if t % 2:
            assert isinstance(r, TypeError)
        else:
            assert np.array_equal(r, expect)


def test_gil_is_released_during_inference(tinynet_path, images):
    """While one thread is inside a long kiln call, another Python thread
    keeps running: the longest pause it sees is far shorter than the call.
    (With the GIL held it would be the whole call, every time; a loaded
    machine may preempt the watcher, so three tries.)"""
    e, _ = kiln.build(tinynet_path, backend="ref", cache=False)
    x = images(32, seed=2)
    e(x)  # warm: shapes checked, output shapes learned
    tries = []
    for _ in range(3):
        inside, done, call = threading.Event(), threading.Event(), []

        def worker():
            inside.set()
            t0 = time.perf_counter()
            e(x)
            call.append(time.perf_counter() - t0)
            done.set()

        th = threading.Thread(target=worker)
        th.start()
        inside.wait()
        last, gap = time.perf_counter(), 0.0
        while not done.is_set():
            now = time.perf_counter()
            gap, last = max(gap, now - last), now
        th.join()
        tries.append((gap, call[0]))
        if gap < 0.5 * call[0]:
            break
    e.close()
    gap, call_s = tries[-1]
    assert gap < 0.5 * call_s, tries
