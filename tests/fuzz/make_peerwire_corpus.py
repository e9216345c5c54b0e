#!/usr/bin/python3
"""Seeds for fuzz_peerwire: one file per record form, byte 0 the harness's selector
(0 initial message, 1 notification, 2 QuorumPacket stream, 3 election frame), written from
the layouts in net/peerwire.h. Usage: make_peerwire_corpus.py [DIR]"""
import os
import struct
import sys

d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus', 'peerwire')
os.makedirs(d, exist_ok=True)


def w(name, sel, b):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(bytes([sel]) + b)


def buf(b):
    return struct.pack('>i', -1) if b is None else struct.pack('>i', len(b)) + b


def qp(t, zxid, data, auth=None):
    ids = struct.pack('>i', -1) if auth is None else struct.pack('>i', len(auth)) + b''.join(
        buf(s) + buf(i) for s, i in auth)
    return struct.pack('>iq', t, zxid) + buf(data) + ids


w('initial-v2', 0, struct.pack('>qqi', -65535, 3, 14) + b'127.0.0.1:3888')
w('initial-v1-multi', 0, struct.pack('>qqi', -65536, 2, 21) + b'a:1|[::1]:3888|b:2888')
w('initial-old', 0, struct.pack('>q', 7))
cfg = (b'server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n'
       b'server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\nversion=0')
note = struct.pack('>iqqqqii', 0, 1, 0x100000003, 1, 1, 2, len(cfg)) + cfg
w('note-44', 1, note)
w('note-40', 1, struct.pack('>iqqqqi', 2, 3, 5, 2, 0, 1))
w('note-28', 1, struct.pack('>iqqq', 1, 3, 0x200000001, 4))
w('note-leading', 1, struct.pack('>iqqqqii', 2, 2, 7, 3, 1, 2, 0))
w('frame-note', 3, struct.pack('>i', len(note)) + note)
w('qp-followerinfo', 2, qp(11, 1 << 32, struct.pack('>qiq', 2, 0x10000, 0x100000000)))
w('qp-leaderinfo', 2, qp(17, 2 << 32, struct.pack('>i', 0x10000)))
w('qp-ackepoch', 2, qp(18, 0x100000005, struct.pack('>i', -1)))
w('qp-ping', 2, qp(5, 9, None))
w('qp-request-auth', 2, qp(1, 0, b'\0\0\0\1abc', [(b'digest', b'u:x'), (b'ip', b'127.0.0.1')]))
w('qp-two', 2, qp(4, 0x100000001, None) + qp(3, 0x100000001, None))
