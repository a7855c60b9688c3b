"""libsrtp 2.7 (PyPI wheel pylibsrtp) as the outside SRTP peer of tests/libsrtp_interop.rs.

Reads one command per line on stdin and answers one line on stdout:
  session NAME PROFILE in|out KEYHEX   -> ok            (PROFILE: 80, 32 or gcm)
  OP NAME HEX                          -> ok HEX | err MESSAGE
with OP one of protect, unprotect, protect_rtcp, unprotect_rtcp.
"""

import sys

from pylibsrtp import Error, Policy, Session

PROFILES = {
    "80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "gcm": Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
}


def main():
    sessions = {}
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "session":
                name, profile, direction, key = words[1:]
                ssrc_type = Policy.SSRC_ANY_INBOUND if direction == "in" else Policy.SSRC_ANY_OUTBOUND
                policy = Policy(
                    key=bytes.fromhex(key), ssrc_type=ssrc_type, srtp_profile=PROFILES[profile]
                )
                sessions[name] = Session(policy)
                answer = "ok"
            else:
                op, name, data = words
                out = getattr(sessions[name], op)(bytes.fromhex(data))
                answer = "ok " + out.hex()
        except Error as e:
            answer = "err " + str(e).replace("\n", " ")
        print(answer, flush=True)


if __name__ == "__main__":
    main()
