"""Proves skipACL=yes turns every permission check off as in Apache ZooKeeper 3.8 (a digest-only
node is readable, writable and deletable by anyone, and getACL shows its hash), while ACLs are
still validated (InvalidACL) and stored. Also passes with ZK_TARGET=apache."""

import base64
import hashlib

import zkwire as w

SERVER_EXTRA_CFG = {"skipACL": "yes"}


def digest(cred):
    user = cred.split(":", 1)[0]
    return user + ":" + base64.b64encode(hashlib.sha1(cred.encode()).digest()).decode()


def test_skip_acl_allows_everything(server, base):
    c = w.RawClient(server.port)
    try:
        acl = [(31, "digest", digest("alice:pw"))]
        assert c.create(base, b"d", acl=acl)[0] == 0
        assert c.create(base + "/none", acl=[(0, "world", "anyone")])[0] == 0
        assert c.get_data(base)[:2] == (0, b"d")
        assert c.get_acl(base)[:2] == (0, acl), "the hash is shown: the ADMIN check passes"
        assert c.create(base + "/none/x")[0] == 0
        assert c.set_data(base + "/none", b"v")[0] == 0
        assert c.delete(base + "/none/x") == 0
        assert c.set_acl(base + "/none", [(1, "world", "anyone")])[0] == 0
        assert c.get_acl(base + "/none")[1] == [(1, "world", "anyone")]
        assert c.create(base + "/bad", acl=[(31, "world", "x")])[0] == w.ERR_INVALID_ACL
        assert c.create(base + "/bad", acl=[(31, "auth", "")])[0] == w.ERR_INVALID_ACL
        assert c.who_am_i() == (0, [("ip", "127.0.0.1")])
    finally:
        c.close()
