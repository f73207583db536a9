#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/seed-* from the captured PBX
sessions, the reference's pattern examples, the shipped config and the list
fixtures. Run from the repository root: `python3 fuzz/make_seeds.py`.

Decoder seeds start with one mode byte (read size and limits, see the
targets); each .bin capture is one whole session (every byte the PBX sent),
kept whole and also cut into its frames so that short inputs start close to
real traffic. The .txt transcripts add the sessions that have no .bin.
"""
import json
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TRANSCRIPTS = os.path.join(ROOT, "tests", "fixtures", "transcripts")
# The capture the FreeSWITCH simulator builds on lives in its crate (the service builds it).
CAPTURES = os.path.join(ROOT, "callguard-sim", "captures")
REFERENCE = os.environ.get("CALLGUARD_REFERENCE", os.path.join(ROOT, "..", "shared", "reference"))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def unescape(s):
    """The transcripts' escaped wire line (`\\n`, `\\\\`, `\\xNN`, `\\r`, `\\t`)."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x":
                out.append(int(s[i + 2 : i + 4], 16))
                i += 4
                continue
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\", '"': b'"', "'": b"'", "0": b"\0"}.get(n, ("\\" + n).encode())
            i += 2
            continue
        out += c.encode()
        i += 1
    return bytes(out)


def transcript_sent(path):
    """Every `< ` line of a transcript, concatenated: what the PBX sent."""
    out = bytearray()
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^<\s(?:\[[^\]]*\]\s)?(.*)$", line.rstrip("\n"))
            if m:
                out += unescape(m.group(1))
    return bytes(out)


def esl_frames(data):
    """Cuts an ESL byte stream into frames: header block, then Content-Length bytes."""
    frames = []
    i = 0
    while i < len(data):
        while data[i : i + 1] == b"\n":
            i += 1
        end = data.find(b"\n\n", i)
        if end < 0:
            break
        head = data[i : end + 2]
        m = re.search(rb"^Content-Length: (\d+)", head, re.M)
        n = int(m.group(1)) if m else 0
        frames.append(data[i : end + 2 + n])
        i = end + 2 + n
    return frames


def agi_frames(data):
    """The environment block, then each reply line."""
    end = data.find(b"\n\n")
    if end < 0:
        return [data]
    frames = [data[: end + 2]]
    frames += [l + b"\n" for l in data[end + 2 :].split(b"\n") if l]
    return frames


def main():
    if os.path.isdir(CORPUS):
        for d in os.listdir(CORPUS):
            for f in os.listdir(os.path.join(CORPUS, d)):
                if f.startswith("seed-"):
                    os.remove(os.path.join(CORPUS, d, f))
    files = [(n, os.path.join(TRANSCRIPTS, n)) for n in os.listdir(TRANSCRIPTS)]
    files += [(n, os.path.join(CAPTURES, n)) for n in os.listdir(CAPTURES)]
    for name, path in sorted(files):
        stem = name.rsplit(".", 1)[0]
        target = "agi_decoder" if name.startswith("asterisk") else "esl_decoder" if name.startswith("freeswitch") else None
        if target is None:
            continue
        if name.endswith(".bin"):
            data = open(path, "rb").read()
        elif os.path.exists(path[:-4] + ".bin") or os.path.exists(os.path.join(CAPTURES, stem + ".bin")):
            continue
        else:
            data = transcript_sent(path)
        # Whole session in 64-byte reads (mode 0x3f); AGI also in byte-sized
        # reads under the small limits (0x80).
        write(target, stem + "-session", bytes([0x3F]) + data)
        if target == "agi_decoder":
            # Under the small limits an ESL session stops at its first block.
            write(target, stem + "-session-small", bytes([0x80]) + data)
        cut = esl_frames(data) if target == "esl_decoder" else agi_frames(data)
        for i, frame in enumerate(cut):
            write(target, "%s-frame%02d" % (stem, i), bytes([0x07]) + frame)

    # Wildcards: the reference's examples, the grammar's corners, and caller IDs.
    callers = ["+15551234567", "15551234567", "5551234", "+442071234567", "Anonymous", "+1900555", "0044207"]
    patterns = [
        "+1555123____", "+44207_______", "*1234*", "+1900*", "^+1555", "4567$", "+1555*123",
        "[0-5]", "+1[2-9]__555____", "[^09]*", "^+44[12]*$", "_*_", "+[1-9]*", "+1555[0-9a-z+]__",
        "]", "[", "[5-0]", "12$3", "^", "$", "*", "[^]", "+1555\\$",
    ]
    for i, p in enumerate(patterns):
        write("wildcard", "%02d" % i, bytes([i & 1]) + "\n".join([p] + callers).encode())
    ref_text = ""
    for f in ("call-filtering.txt", "vip-whitelist.txt"):
        p = os.path.join(REFERENCE, f)
        if os.path.exists(p):
            ref_text += open(p, encoding="utf-8").read()
    for i, p in enumerate(sorted(set(re.findall(r"[+^]?[0-9+][0-9_*+\[\]^$-]{3,}\$?", ref_text)))):
        write("wildcard", "ref%02d" % i, b"\0" + "\n".join([p] + callers).encode())

    # Lists: the shipped lists, the reference's three export examples.
    lists = os.path.join(ROOT, "config", "lists")
    for name in sorted(os.listdir(lists)):
        write("list_csv", name, open(os.path.join(lists, name), "rb").read())
    m = re.search(r"(rule_name,pattern,match_type,action,enabled,notes\n(?:.*\n){3})", ref_text)
    if m:
        write("list_csv", "reference", m.group(1).replace("CorpJSON Format:", "Corp"))
    write("list_csv", "quoted", 'rule_name,pattern,match_type,action,enabled,notes\n"A, b","+1""5",wildcard,reject,no,"multi\nline"\n')
    write("list_json", "reference", json.dumps([
        {"rule_name": "Block-International", "pattern": "^(?!\\+1)[+][0-9]+$", "match_type": "regex",
         "action": "reject", "enabled": True, "notes": "Block all except US/Canada"},
        {"rule_name": "Premium", "pattern": "+1900*", "match_type": "starts_with", "enabled": "yes"},
    ], indent=1))
    write("list_json", "wrapped", '{"rules":[{"rule_name":"A","pattern":"+1555_"}]}')
    write("list_xml", "reference", "<rules>\n<rule>\n<name>Block-International</name>\n<pattern>^(?!\\+1)[+][0-9]+$</pattern>\n<type>regex</type>\n<action>reject</action>\n</rule>\n</rules>\n")
    write("list_xml", "full", '<?xml version="1.0"?>\n<rules><rule enabled="false"><name>A &amp; B</name><pattern><![CDATA[+1<555>*]]></pattern><type>wildcard</type><action/><enabled>no</enabled><notes>n</notes></rule></rules>\n')

    # Config: the shipped config and the test harness's YAML documents.
    write("config_load", "callguard-yaml", open(os.path.join(ROOT, "config", "callguard.yaml"), "rb").read())
    server = open(os.path.join(ROOT, "tests", "support", "server.rs"), encoding="utf-8").read()
    for i, doc in enumerate(re.findall(r'r#"\n(.*?)"#', server, re.S)):
        write("config_load", "harness%02d" % i, doc)
    write("config_load", "lists", "lists:\n  - { path: l.csv, as: blacklist }\n  - { path: l.json }\n  - { path: l.xml }\ntrunks:\n  t: { lists: [ { path: l.csv, as: whitelist } ] }\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
