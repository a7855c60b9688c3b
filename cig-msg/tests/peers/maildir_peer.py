#!/usr/bin/env python3
"""An external Maildir peer built only on Python's standard `mailbox` and `email` packages.

put MAILBOX SPEC.json  -- adds every message of SPEC (a JSON list) to MAILBOX with
                          mailbox.Maildir.add; attachments make it multipart/mixed.
take MAILBOX           -- prints every message of MAILBOX's new/ as one JSON list (fields
                          decoded with the email package) and removes them.
"""
import base64
import email
import email.header
import email.utils
import json
import mailbox
import sys
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText


def build(spec):
    text = MIMEText(spec["text"], "plain", "utf-8")
    if spec["attachments"]:
        msg = MIMEMultipart("mixed")
        msg.attach(text)
        for a in spec["attachments"]:
            maintype, subtype = a["content_type"].split("/", 1)
            part = MIMEApplication(base64.b64decode(a["data"]), subtype)
            part.replace_header("Content-Type", a["content_type"])
            part.add_header("Content-Disposition", "attachment", filename=a["filename"])
            msg.attach(part)
    else:
        msg = text
    msg["To"] = "<%s>" % spec["to"]
    msg["From"] = "<%s>" % spec["from"]
    msg["Date"] = email.utils.formatdate(spec["date"], usegmt=False)
    for name, value in spec["headers"]:
        msg[name] = email.header.Header(value, "utf-8").encode()
    return msg


def decode(value):
    return str(email.header.make_header(email.header.decode_header(value)))


def dump(msg):
    out = {"to": msg["To"], "from": msg["From"], "headers": [], "attachments": []}
    out["date"] = int(email.utils.parsedate_to_datetime(msg["Date"]).timestamp())
    for name, value in msg.items():
        if name.lower().startswith("x-") or name.lower() == "auto-submitted":
            out["headers"].append([name, decode(value)])
    parts = list(msg.walk()) if msg.is_multipart() else [msg]
    parts = [p for p in parts if not p.is_multipart()]
    first = parts[0]
    assert first.get_content_type() == "text/plain", first.get_content_type()
    out["text"] = first.get_payload(decode=True).decode(first.get_content_charset() or "utf-8")
    for p in parts[1:]:
        assert p.get_content_disposition() == "attachment"
        out["attachments"].append({
            "filename": p.get_filename(),
            "content_type": p.get_content_type(),
            "data": base64.b64encode(p.get_payload(decode=True)).decode(),
        })
    return out


def main():
    mode, path = sys.argv[1], sys.argv[2]
    box = mailbox.Maildir(path, factory=None, create=False)
    if mode == "put":
        with open(sys.argv[3]) as f:
            for spec in json.load(f):
                box.add(build(spec))
    elif mode == "take":
        out = []
        for key in sorted(box.keys()):
            out.append(dump(email.message_from_bytes(box.get_bytes(key))))
            box.remove(key)
        json.dump(out, sys.stdout)
    else:
        raise SystemExit("usage: maildir_peer.py put|take MAILBOX [SPEC]")


if __name__ == "__main__":
    main()
