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
    """Best of three runs of `make_fn()` (a fresh context each run) over `packets`."""
    buf = ffi.new("char[]", 1500)
    len_p = ffi.new("int *")
    best = None
    for _ in range(3):
        fn = make_fn()
        t0 = time.perf_counter_ns()
        for p in packets:
            ffi.memmove(buf, p, len(p))
            len_p[0] = length if length is not None else len(p)
            fn(buf, len_p)
        dt = (time.perf_counter_ns() - t0) / len(packets)
        best = dt if best is None else min(best, dt)
    return best


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

    p = raw_protect - base_protect
    u = raw_unprotect - base_unprotect
    print(f"libsrtp/protect_172    {p:7.0f} ns  (raw {raw_protect:.0f} - python {base_protect:.0f})")
    print(f"libsrtp/unprotect_172  {u:7.0f} ns  (raw {raw_unprotect:.0f} - python {base_unprotect:.0f})")
    print(f"pylibsrtp Session.protect() per call {api_protect:.0f} ns")


if __name__ == "__main__":
    main()
