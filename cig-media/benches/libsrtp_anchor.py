"""libsrtp 2.7 (+ OpenSSL, from the PyPI wheel pylibsrtp) timed on the packet of the criterion
benches `srtp/protect_172` and `srtp/unprotect_172`: same key, same 12 + 160 byte packet,
AES_CM_128_HMAC_SHA1_80.

Python's own cost is measured and subtracted: the baseline loop does the same buffer copy and
the same cffi call with a length libsrtp rejects at once (4 bytes, before any crypto).
"""

import time

from pylibsrtp import Policy, Session, ffi, lib

KEY = bytes(range(30))
N = 60000


def rtp_172(seq):
    hdr = bytes([0x80, 0]) + seq.to_bytes(2, "big") + (seq * 160).to_bytes(4, "big")
    hdr += (0x11223344).to_bytes(4, "big")
    return hdr + bytes((i * 7) & 0xFF for i in range(160))


def per_call_ns(make_fn, packets, length):
    """Per-call time over `packets` through `make_fn()` (a fresh context per run of three):
    (mean over all calls, best mean over chunks of 100 calls). The best-of figure is the cost
    when the process has a core, comparable to the Rust bench's best-of line."""
    buf = ffi.new("char[]", 1500)
    len_p = ffi.new("int *")
    mean, best = None, None
    for _ in range(3):
        fn = make_fn()
        total = 0
        for start in range(0, len(packets), 100):
            chunk = packets[start : start + 100]
            t0 = time.perf_counter_ns()
            for p in chunk:
                ffi.memmove(buf, p, len(p))
                len_p[0] = length if length is not None else len(p)
                fn(buf, len_p)
            dt = time.perf_counter_ns() - t0
            total += dt
            best = dt / len(chunk) if best is None else min(best, dt / len(chunk))
        run_mean = total / len(packets)
        mean = run_mean if mean is None else min(mean, run_mean)
    return mean, best


def main():
    tx_policy = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    tx_policy.allow_repeat_tx = True
    tx = Session(tx_policy)
    def protector():
        return lambda b, l: lib.srtp_protect(tx._srtp[0], b, l)

    same = [rtp_172(1)] * N
    raw_protect = per_call_ns(protector, same, None)
    base_protect = per_call_ns(protector, same, 4)

    gen = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    protected = [gen.protect(rtp_172(s)) for s in range(N)]

    def unprotector():
        rx = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND))
        assert rx.unprotect(protected[0]) == rtp_172(0)
        return lambda b, l: lib.srtp_unprotect(rx._srtp[0], b, l)

    # The timed path must be the success path: one untimed pass checks every return code.
    unprotect = unprotector()
    buf, len_p = ffi.new("char[]", 1500), ffi.new("int *")
    for p in protected[1:]:
        ffi.memmove(buf, p, len(p))
        len_p[0] = len(p)
        assert unprotect(buf, len_p) == 0

    raw_unprotect = per_call_ns(unprotector, protected[1:], None)
    base_unprotect = per_call_ns(unprotector, protected[1:], 4)

    t0 = time.perf_counter_ns()
    pkt = rtp_172(1)
    for _ in range(N):
        tx.protect(pkt)
    api_protect = (time.perf_counter_ns() - t0) / N

    for name, raw, base in [
        ("protect_172", raw_protect, base_protect),
        ("unprotect_172", raw_unprotect, base_unprotect),
    ]:
        print(
            f"libsrtp/{name:14} mean {raw[0] - base[0]:6.0f} ns (raw {raw[0]:.0f} - python {base[0]:.0f}); "
            f"best-of {raw[1] - base[1]:6.0f} ns (raw {raw[1]:.0f} - python {base[1]:.0f})"
        )
    print(f"pylibsrtp Session.protect() per call {api_protect:.0f} ns")


if __name__ == "__main__":
    main()
