#!/usr/bin/python3
"""Regenerate the seed corpora in tests/fuzz/corpus/ from real data.

Usage: make_corpus.py DATADIR [ZOOCFG]
DATADIR is a dataDir a real ./zkd wrote (version-2/log.* and snapshot.*), e.g. after a few
kazoo writes; requests and ConnectRequests are built with tests/integration/zkwire.py, the
same encoder the integration tests send to the server. Files are cut small (< 64 KiB each
harness)."""
import glob
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from zkwire import p_acl, p_bool, p_buf, p_int, p_long, p_str, p_vec_str, connect_request  # noqa
import zkwire  # noqa

OPEN = [(31, "world", "anyone")]


def put(name, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:12]), "wb") as f:
        f.write(data)


def log_records(raw):
    """(offset, entry) of every record of a ZKLG file, up to the preallocated zeros."""
    off, out = 16, []
    while off + 12 <= len(raw):
        n = struct.unpack(">i", raw[off + 8:off + 12])[0]
        if n <= 0 or off + 13 + n > len(raw):
            break
        out.append((off, raw[off + 12:off + 12 + n]))
        off += 13 + n
    return out, off


# request: [sel][len u16][xid][type][body]; sel & 15 picks the op (see fuzz_request.c).
SEL = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 8: 5, 9: 6, 12: 7, 15: 8, 101: 9, -11: 10, -10: 11}


def req(op, body, xid=1, flags=0, raw_type=None):
    sel = (SEL[op] if raw_type is None else 12) | flags
    return struct.pack(">BHii", sel, len(body), xid, op if raw_type is None else raw_type) + body


def create(path, data=b"", flags=0):
    return p_str(path) + p_buf(data) + p_acl(OPEN) + p_int(flags)


def requests():
    put("request", req(1, create("/app", b"v1")) + req(4, p_str("/app") + p_bool(True)))
    put("request", req(15, create("/a/q-", b"x", 3), flags=32) + req(15, create("/a/q-", b"y", 2))
        + req(8, p_str("/a") + p_bool(True)) + req(12, p_str("/a") + p_bool(False)))
    put("request", req(5, p_str("/a") + p_buf(b"new") + p_int(0)) + req(3, p_str("/a") + p_bool(True))
        + req(2, p_str("/a/b") + p_int(-1), flags=32) + req(2, p_str("/a") + p_int(-1)))
    put("request", req(101, p_long(3) + p_vec_str(["/a", "/gone"]) + p_vec_str(["/e"])
                       + p_vec_str(["/a"])) + req(9, p_str("/a")))
    put("request", req(-11, b"", flags=16) + req(-11, b"") + req(-10, b"", xid=7))
    put("request", req(14, b"\x00" * 8, raw_type=14) + req(6, p_str("/a"), raw_type=6)
        + req(11, b"", raw_type=11))
    # multi and multiRead (zkwire builds MultiOperationRecords): ops that see each other, a
    # failed one (rolled back) left outstanding, a malformed one, a null path, reads.
    put("request", req(14, b"".join([
        zkwire.mop_create("/m", b"x"), zkwire.mop_create("/m/s-", flags=2),
        zkwire.mop_set_data("/m", b"y", 0), zkwire.mop_check("/m", 1),
        zkwire.mop_delete("/a/b"), zkwire.mop_create("/a/b", flags=1)]) + zkwire.MULTI_END,
        raw_type=14)
        + req(14, zkwire.mop_create("/n") + zkwire.mop_check("/a", 5) + zkwire.MULTI_END,
              raw_type=14, flags=32)
        + req(14, zkwire.mop_create("/n") + zkwire.mop_read("/a") + zkwire.MULTI_END, raw_type=14)
        + req(14, zkwire.multi_header(2) + p_int(-1) + p_int(-1) + zkwire.MULTI_END, raw_type=14)
        + req(22, zkwire.mop_read("/a") + zkwire.mop_read("/nope")
              + zkwire.mop_read("/a", zkwire.OP_GET_CHILDREN) + zkwire.MULTI_END, raw_type=22))
    new_kinds()
    watch_ops()


def new_kinds():
    """Containers and TTL nodes: their requests, and their txns built by hand (TxnHeader,
    then CreateContainerTxn / CreateTTLTxn / DeleteTxn) so no dataDir needs to hold them."""
    put("request", req(19, create("/c", b"x", 4), raw_type=19)
        + req(15, create("/c/k", b""), flags=32) + req(2, p_str("/c/k") + p_int(-1))
        + req(20, p_str("/c"), raw_type=20))
    put("request", req(21, create("/t-", b"x", 6) + p_long(1000), raw_type=21)
        + req(21, create("/t", b"x", 5) + p_long(0), raw_type=21)
        + req(21, create("/u", b"x", 0) + p_long(-1), raw_type=21)
        + req(1, create("/t-0000000000/e", b"", 1), flags=16))

    q = "/zookeeper/quota/q"
    put("request", req(1, create("/q", b"ab")) + req(1, create(q, b""))
        + req(1, create(q + "/zookeeper_limits", b"count=-1,bytes=-1=;countHardLimit=3;byteHardLimit=9"))
        + req(1, create(q + "/zookeeper_stats", b"count=0,bytes=0"))
        + req(1, create("/q/a", b"xyz"), flags=32) + req(5, p_str("/q/a") + p_buf(b"123456789") + p_int(-1))
        + req(5, p_str(q + "/zookeeper_stats") + p_buf(b"count=1;;bytes=x,k=") + p_int(-1))
        + req(2, p_str("/q/a") + p_int(-1)) + req(2, p_str(q + "/zookeeper_limits") + p_int(-1)))

    def hdr(t, zxid):
        return p_long(0x100000001) + p_int(1) + p_long(zxid) + p_long(1700000000000) + p_int(t)
    put("txn", hdr(19, 5) + p_str("/c") + p_buf(b"x") + p_acl(OPEN) + p_int(1))
    put("txn", hdr(21, 6) + p_str("/t") + p_buf(b"") + p_acl(OPEN) + p_int(2) + p_long(1000))
    put("txn", hdr(20, 7) + p_str("/c"))


def watch_ops():
    """addWatch (both modes) then writes that fire them, checkWatches, removeWatches,
    setWatches2, getEphemerals, getAllChildrenNumber: served by ops_ext."""
    put("request", req(106, p_str("/a") + p_int(1), raw_type=106) + req(106, p_str("/e") + p_int(0), raw_type=106)
        + req(1, create("/a/w", b"x")) + req(5, p_str("/a/w") + p_buf(b"y") + p_int(-1))
        + req(17, p_str("/a") + p_int(3), raw_type=17) + req(18, p_str("/a") + p_int(2), raw_type=18)
        + req(2, p_str("/a/w") + p_int(-1)))
    put("request", req(105, p_long(3) + p_vec_str(["/a"]) + p_vec_str(["/x"]) + p_vec_str(["/a"])
                       + p_vec_str(["/a/b"]) + p_vec_str(["/"]), raw_type=105)
        + req(103, p_str("/"), raw_type=103) + req(103, p_str("/e"), raw_type=103, flags=16)
        + req(104, p_str("/a"), raw_type=104) + req(104, p_str("/"), raw_type=104))


def acl_seeds():
    """setACL requests (raw type 7: not in fuzz_request's op table) from both sessions (session 2
    has a digest id), creates with the auth scheme and invalid ids, and a SetACLTxn."""
    auth = [(31, "auth", "")]
    bad = [(31, "ip", "1.2.3.4/33"), (31, "digest", "a:b:c")]
    put("request", req(7, p_str("/a") + p_acl([(1, "world", "anyone")]) + p_int(-1), raw_type=7)
        + req(1, create("/a/x")) + req(4, p_str("/a") + p_bool(False))
        + req(7, p_str("/a") + p_acl(auth) + p_int(1), raw_type=7, flags=16 | 32)
        + req(5, p_str("/a") + p_buf(b"w") + p_int(-1)))
    put("request", req(1, p_str("/m") + p_buf(b"") + p_acl(auth) + p_int(0), flags=16)
        + req(1, p_str("/n") + p_buf(b"") + p_acl(auth) + p_int(0))
        + req(1, p_str("/o") + p_buf(b"") + p_acl(bad) + p_int(0))
        + req(6, p_str("/m"), raw_type=6) + req(2, p_str("/m") + p_int(-1)))
    nulls = [(31, "auth", None), (31, "auth", ""), (1, "world", None), (1, None, "x")]
    put("request", req(1, p_str("/p") + p_buf(b"") + p_acl(nulls[:2]) + p_int(0), flags=16)
        + req(1, p_str("/q") + p_buf(b"") + p_acl(nulls) + p_int(0), flags=16)
        + req(7, p_str("/a") + p_acl(nulls[:1]) + p_int(-1), raw_type=7, flags=16))
    hdr = p_long(0x1000000001) + p_int(3) + p_long(0x100000007) + p_long(1700000000000) + p_int(7)
    put("txn", hdr + p_str("/a") + p_acl([(1, "world", "anyone"), (31, "ip", "10.0.0.0/8")]) + p_int(3))


def snapstreams(raw):
    """The SNAP stream of a snapshot file: its body, then ustring "BenWasHere"."""
    body = raw[16:-13]
    put("snapstream", b"\x00" + body + p_str("BenWasHere"))  # scanned in 1-byte pieces
    put("snapstream", b"\x0f" + body)            # the harness adds the signature; 8-byte pieces


def main():
    data = sys.argv[1]
    cfg = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "..", "zoo.cfg.sample")
    logs = sorted(glob.glob(os.path.join(data, "version-2", "log.*")))
    snaps = sorted(glob.glob(os.path.join(data, "version-2", "snapshot.*")))
    entries = []
    for path in logs:
        raw = open(path, "rb").read()
        recs, end = log_records(raw)
        entries += [e for _, e in recs]
        cut = raw[:end + 4]                      # the records and a few of the zeros
        put("txnlog", b"\x01" + cut)             # the whole file
        put("txnlog", b"\x00" + cut[16:])        # records after the harness's own header
        if recs:
            put("txnlog", b"\x01" + cut[:recs[-1][0] + 20])  # torn last record
    seen = set()
    for e in entries:                            # one txn of each type
        t = struct.unpack(">i", e[28:32])[0]
        if t not in seen:
            seen.add(t)
            put("txn", e)
    for path in snaps[-2:]:
        raw = open(path, "rb").read()
        put("snapshot", b"\x00" + raw)           # the whole file
        put("snapshot", b"\x02" + raw[16:-13])   # body; the harness adds header and seal
        snapstreams(raw)
    c = connect_request
    put("connect", c())
    put("connect", c(timeout_ms=30000, session_id=0x100000001, passwd=bytes(range(16)),
                     last_zxid=0x1000000a5, read_only=True))
    put("connect", c()[:-1])                     # old clients: no readOnly byte
    requests()
    acl_seeds()
    put("config", open(cfg, "rb").read())
    put("config", b"tickTime=2000\ndataDir=/var/lib/zk\ndataLogDir=/var/log/zk\nclientPort=2181\n"
        b"clientPortAddress=127.0.0.1\nmaxClientCnxns=60\nminSessionTimeout=4000\n"
        b"maxSessionTimeout=40000\nautopurge.snapRetainCount=3\nautopurge.purgeInterval=1\n"
        b"zookeeper.jute.maxbuffer=1048575\nglobalOutstandingLimit=1000\nforceSync=no\n"
        b"preAllocSize=65536\nsnapCount=100000\n4lw.commands.whitelist=*\n"
        b"server.1=localhost:2888:3888\ninitLimit=10\nsyncLimit=5\n")
    put("config", b"# comment\n  tickTime = 100 \r\nsecureClientPort=2281\nmaxCnxns=0\n")
    # An ensemble; the harness reads the last line as the text of dataDir/myid.
    put("config", b"tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/d\ncnxTimeout=900\n"
        b"server.1=127.0.0.1:2888:3888\nserver.2=[::1]:2889:3889:participant;127.0.0.1:2182\n"
        b"server.3=h3:2890:3890:observer;2183\npeerType=observer\nelectionAlg=3\n"
        b"quorumListenOnAllIPs=true\n3")
    put("fourlw", b"ruok")
    put("fourlw", b"srvr, stat , mntr,conf\tenvi")
    put("fourlw", b"*")
    put("fourlw", b"dump,wchs,wchc,wchp,dirs,isro,srst,crst,gtmk,stmk,hash,cons")


if __name__ == "__main__":
    main()
