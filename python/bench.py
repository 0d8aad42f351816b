#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench.py — round trips between two Python processes, printed as the CSV of
`ferry bench --csv` (mechanism,pattern,size,rtt_p50_ns,rtt_p99_ns,rtt_p999_ns,
msgs_per_s,bytes_per_s; msgs_per_s = round trips per second), all rows in one run:

  64 B, copying: py-ferry-shm (the package, both ends), py-ferry-ctypes-bare (the C
  calls through ctypes with no wrapper; the parent takes the bytes out with buf[:n], as
  any receive into Python must), py-mp-pipe (multiprocessing.Pipe send_bytes /
  recv_bytes), py-mp-queue (multiprocessing.Queue, one each way), py-zmq (pyzmq PAIR
  over ipc://, Debian python3-zmq; left out, saying so, without it).
  1 MiB: py-ferry-shm-zc (zero copy both ways: the message is made in a loan and read
  in a peek, in place; only an 8-byte sequence number is written and checked, as a
  producer that builds its data in the ring would), py-ferry-shm-copy (send / recv of
  the bytes), py-mp-pipe (the same bytes each way).

Then, on stderr, the issue's targets as ratios of p50 within this run. Same machine,
same run: compare rows with each other, not across runs or machines.

    FERRY_LIBRARY=build/libferry.so /usr/bin/python3 python/bench.py [-n N] [-r REPEAT]

With -r R every row is measured R times, interleaved, and the run whose p50 is the
median of the R is printed (a loaded machine then disturbs every row alike). The two
sides are pinned to two cpus, as `ferry bench` does. py-ferry-shm and
py-ferry-ctypes-bare are measured in the same two processes, alternating blocks of 500
round trips, so that their ratio (what the wrapper costs) sees one load. Pinned, the
threads a side starts (multiprocessing.Queue's feeder, pyzmq's I/O thread) share its
cpu, as in `ferry bench`'s own rows; --no-pin leaves placement to the scheduler.
"""

import argparse
import ctypes
import multiprocessing as mp
import os
import shutil
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferry  # noqa: E402
from ferry._lib import lib as C  # noqa: E402

SMALL = 64
BIG = 1 << 20
HEADER = "mechanism,pattern,size,rtt_p50_ns,rtt_p99_ns,rtt_p999_ns,msgs_per_s,bytes_per_s"
_clock = time.perf_counter_ns


class Row:
    def __init__(self, name, size, ts, wall_ns):
        ts.sort()
        n = len(ts)
        self.name, self.size, self.n = name, size, n
        self.p50 = ts[n // 2]
        self.p99 = ts[min(n - 1, int(n * 0.99))]
        self.p999 = ts[min(n - 1, int(n * 0.999))]
        self.rate = n * 1e9 / wall_ns

    def csv(self):
        return "%s,pingpong,%d,%d,%d,%d,%.0f," % (self.name, self.size, self.p50, self.p99,
                                                 self.p999, self.rate)


CPUS = sorted(os.sched_getaffinity(0))[:2]


def pin(side):
    """Pin this process to one cpu (side 0: the measuring side, 1: the echo side), as
    `ferry bench` pins its two sides to two cpus, so that both sides can run at once and
    the scheduler does not move them during a row. Nothing with fewer than two cpus."""
    if len(CPUS) == 2:
        os.sched_setaffinity(0, {CPUS[side]})


def spawn(child):
    """Fork child() as the echo side, pinned to the other cpu; its pid (the child exits
    0 when child() returned, 1 when it raised)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            pin(1)
            child()
            code = 0
        finally:
            os._exit(code)
    return pid


def measure(name, size, n, warm, child, one):
    """Fork child() as the echo side, then time n round trips of one() (after warm)."""
    pid = spawn(child)
    ts = []
    for _ in range(warm):
        one()
    t_start = _clock()
    for _ in range(n):
        t0 = _clock()
        one()
        ts.append(_clock() - t0)
    wall = _clock() - t_start
    return Row(name, size, ts, wall), pid


def finish(pid):
    _, st = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(st) != 0:
        raise SystemExit("bench: an echo child failed")


def round_trip(send, recv, data):
    """one() for measure(): send(data), then recv() the echo."""
    def one():
        send(data)
        recv()

    return one


def measure_ends(name, size, n, warm, a, b, echo, one):
    """measure() over two ends: the child closes a and runs echo() (one round trip's
    echo on b) n + warm times; then the parent closes b, waits for the child and
    closes a."""
    total = n + warm

    def child():
        a.close()
        for _ in range(total):
            echo()

    row, pid = measure(name, size, n, warm, child, one)
    b.close()
    finish(pid)
    a.close()
    return row


# ---------------------------------------------------------------- rows

BLOCK = 500  # round trips per block: py-ferry-shm and py-ferry-ctypes-bare alternate


def rows_ferry_and_bare(n, warm):
    """py-ferry-shm and py-ferry-ctypes-bare in the same two processes, alternating
    blocks of BLOCK round trips on two channels, so that both see the same load (the
    ratio of the two is what the wrapper costs)."""
    a, b = ferry.pair()
    ba, bb = ctypes.c_void_p(), ctypes.c_void_p()
    assert C.ferry_pair(None, ctypes.byref(ba), ctypes.byref(bb)) == 0
    send, recvmsg = C.ferry_send, C.ferry_recvmsg
    buf = ctypes.create_string_buffer(4096)
    m = ferry._lib.Msg()
    m.data, m.cap = ctypes.addressof(buf), 4096
    mref = ctypes.byref(m)
    data = b"x" * SMALL
    blocks = (n + warm + BLOCK - 1) // BLOCK

    def child():
        a.close()
        C.ferry_chan_close(ba)
        wsend, wrecv = b.send, b.recv
        for _ in range(blocks):
            for _ in range(BLOCK):  # the package
                wsend(wrecv().data)
            for _ in range(BLOCK):  # bare ctypes
                k = recvmsg(bb, mref, 0, -1)
                send(bb, buf, k, -1)

    pid = spawn(child)
    b.close()
    C.ferry_chan_close(bb)
    wsend, wrecv = a.send, a.recv
    tw, tb = [], []
    wall_w = wall_b = 0
    for _ in range(blocks):
        t_start = _clock()
        for _ in range(BLOCK):
            t0 = _clock()
            wsend(data)
            wrecv()
            tw.append(_clock() - t0)
        t_mid = _clock()
        for _ in range(BLOCK):
            t0 = _clock()
            send(ba, data, SMALL, -1)
            buf[:recvmsg(ba, mref, 0, -1)]  # the bytes out, as any receive into Python
            tb.append(_clock() - t0)
        wall_w += t_mid - t_start
        wall_b += _clock() - t_mid
    finish(pid)
    a.close()
    C.ferry_chan_close(ba)
    k = len(tw) - n  # the first samples are the warm-up
    return (Row("py-ferry-shm", SMALL, tw[k:], wall_w * n // len(tw)),
            Row("py-ferry-ctypes-bare", SMALL, tb[k:], wall_b * n // len(tb)))


def row_pipe(n, warm, size=SMALL):
    a, b = mp.Pipe()
    data = os.urandom(size)

    def echo():
        b.send_bytes(b.recv_bytes())

    one = round_trip(a.send_bytes, a.recv_bytes, data)
    return measure_ends("py-mp-pipe", size, n, warm, a, b, echo, one)


def row_queue(n, warm):
    q1, q2 = mp.Queue(), mp.Queue()
    data = b"x" * SMALL
    total = n + warm

    def child():
        for _ in range(total):
            q2.put(q1.get())
        q2.close()
        q2.join_thread()  # the feeder thread flushes the last put before os._exit

    one = round_trip(q1.put, q2.get, data)
    row, pid = measure("py-mp-queue", SMALL, n, warm, child, one)
    finish(pid)
    for q in (q1, q2):
        q.close()
        q.join_thread()
    return row


def row_zmq(n, warm):
    try:
        import zmq
    except ImportError:
        print("bench: py-zmq left out: no pyzmq for %s (Debian python3-zmq)" % sys.executable,
              file=sys.stderr)
        return None
    d = tempfile.mkdtemp(prefix="ferry-bench-")
    os.chmod(d, 0o700)
    url = "ipc://%s/pair" % d
    data = b"x" * SMALL
    total = n + warm
    try:
        def child():
            ctx = zmq.Context()  # a context of its own: zmq contexts do not survive fork
            s = ctx.socket(zmq.PAIR)
            s.connect(url)
            for _ in range(total):
                s.send(s.recv())
            s.close(linger=1000)
            ctx.term()

        ctx = zmq.Context()
        s = ctx.socket(zmq.PAIR)
        s.bind(url)
        one = round_trip(s.send, s.recv, data)
        row, pid = measure("py-zmq", SMALL, n, warm, child, one)
        finish(pid)
        s.close(linger=0)
        ctx.term()
        return row
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _big_pair():
    return ferry.pair(ring_bytes=4 * BIG, max_msg=BIG)


def row_ferry_zc(n, warm):
    a, b = _big_pair()
    pack, unpack = struct.Struct("<Q").pack_into, struct.Struct("<Q").unpack_from

    def echo():
        with b.peek() as m:
            seq, = unpack(m.data)
        with b.loan(BIG) as buf:
            pack(buf, 0, seq)

    seq = [0]

    def one():
        seq[0] += 1
        with a.loan(BIG) as buf:
            pack(buf, 0, seq[0])
        with a.peek() as m:
            if unpack(m.data)[0] != seq[0]:
                raise SystemExit("bench: wrong echo")

    return measure_ends("py-ferry-shm-zc", BIG, n, warm, a, b, echo, one)


def row_ferry_copy_big(n, warm):
    a, b = _big_pair()
    data = os.urandom(BIG)

    def echo():
        b.send(b.recv().data)

    return measure_ends("py-ferry-shm-copy", BIG, n, warm, a, b, echo,
                        round_trip(a.send, a.recv, data))


def ratio(rows, slow, fast):
    s, f = rows.get(slow), rows.get(fast)
    return None if s is None or f is None else s.p50 / f.p50


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=20000, help="64 B round trips per row")
    ap.add_argument("--big-n", type=int, default=500, help="1 MiB round trips per row")
    ap.add_argument("-r", "--repeat", type=int, default=1, help="runs per row (median p50)")
    ap.add_argument("--only", help="comma-separated mechanisms to run")
    ap.add_argument("--no-pin", action="store_true", help="let the scheduler place both sides")
    args = ap.parse_args()
    if args.no_pin:
        CPUS.clear()
    pin(0)
    warm, bwarm = max(args.n // 20, 100), max(args.big_n // 10, 10)
    plan = [
        ((("py-ferry-shm", SMALL), ("py-ferry-ctypes-bare", SMALL)),
         lambda: rows_ferry_and_bare(args.n, warm)),
        (("py-mp-pipe", SMALL), lambda: row_pipe(args.n, warm)),
        (("py-mp-queue", SMALL), lambda: row_queue(args.n, warm)),
        (("py-zmq", SMALL), lambda: row_zmq(args.n, warm)),
        (("py-ferry-shm-zc", BIG), lambda: row_ferry_zc(args.big_n, bwarm)),
        (("py-ferry-shm-copy", BIG), lambda: row_ferry_copy_big(args.big_n, bwarm)),
        (("py-mp-pipe", BIG), lambda: row_pipe(args.big_n, bwarm, BIG)),
    ]
    plan = [(k if isinstance(k[0], tuple) else (k,), fn) for k, fn in plan]
    runs = {key: [] for keys, _ in plan for key in keys}
    for _ in range(args.repeat):
        for keys, fn in plan:
            if args.only and not any(k[0] in args.only.split(",") for k in keys):
                continue
            print("bench: %s ..." % ", ".join("%s %d B" % k for k in keys), file=sys.stderr,
                  flush=True)
            r = fn()
            for key, row in zip(keys, r if isinstance(r, tuple) else (r,)):
                if row is not None:
                    runs[key].append(row)
    print(HEADER)
    rows = {}
    for keys, _ in plan:
        for key in keys:
            rs = sorted(runs[key], key=lambda r: r.p50)
            if rs:
                rows[key] = rs[len(rs) // 2]
                print(rows[key].csv(), flush=True)
    targets = [
        ("py-mp-pipe / py-ferry-shm, 64 B", (("py-mp-pipe", SMALL), ("py-ferry-shm", SMALL)), 15),
        ("py-mp-queue / py-ferry-shm, 64 B", (("py-mp-queue", SMALL), ("py-ferry-shm", SMALL)),
         30),
        ("py-zmq / py-ferry-shm, 64 B", (("py-zmq", SMALL), ("py-ferry-shm", SMALL)), 40),
        ("py-mp-pipe / py-ferry-shm-zc, 1 MiB", (("py-mp-pipe", BIG), ("py-ferry-shm-zc", BIG)),
         20),
    ]
    print("\ntargets (p50 ratios within this run):", file=sys.stderr)
    for label, (slow, fast), want in targets:
        r = ratio(rows, slow, fast)
        if r is not None:
            print("  %-42s %7.2f  >= %-4g %s" % (label, r, want, "PASS" if r >= want else "MISS"),
                  file=sys.stderr)
    r = ratio(rows, ("py-ferry-shm", SMALL), ("py-ferry-ctypes-bare", SMALL))
    if r is not None:
        print("  %-42s %7.2f  <= %-4g %s" % ("py-ferry-shm / py-ferry-ctypes-bare, 64 B", r,
                                             1.5, "PASS" if r <= 1.5 else "MISS"),
              file=sys.stderr)


if __name__ == "__main__":
    main()
