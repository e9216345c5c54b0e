/* A thin C face for test_fle_interop.py (loaded with ctypes): zkd's election machine and
 * peer wire codecs, with actions rendered as text lines so Python needs no struct layouts.
 * Built by the test itself with the library sources it names; not part of zkd. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/peerwire.h"
#include "zab/fle.h"

void *shim_new(int64_t my_sid, int n, const int64_t *sids, const int *voters);
int shim_start(void *h, int64_t zxid, int64_t epoch, char *out, int cap);
int shim_note(void *h, int64_t from, const uint8_t *p, int len, char *out, int cap);
int shim_timer(void *h, uint64_t gen, char *out, int cap);
int shim_encode_note(int state, int64_t leader, int64_t zxid, int64_t ee, int64_t pe,
		     const uint8_t *cfg, int cfg_len, uint8_t *out, int cap);
int shim_encode_initial(int64_t sid, const char *addr, uint8_t *out, int cap);
int shim_decode_note(const uint8_t *p, int len, int64_t *f);
int shim_decode_initial(const uint8_t *p, int len, int64_t *f);

void *shim_new(int64_t my_sid, int n, const int64_t *sids, const int *voters)
{
	struct fle_member m[FLE_SERVERS_MAX];
	struct fle *f = calloc(1, sizeof *f);
	if (!f || n < 1 || n > FLE_SERVERS_MAX)
		return NULL;
	for (int i = 0; i < n; i++)
		m[i] = (struct fle_member){ .sid = sids[i], .voter = voters[i] != 0 };
	if (fle_init(f, my_sid, m, n) != 0) {
		free(f);
		return NULL;
	}
	return f;
}

static int render(const struct fle_actions *acts, char *out, int cap)
{
	int len = 0;
	out[0] = 0;
	for (int i = 0; i < acts->n; i++) {
		const struct fle_action *a = &acts->a[i];
		const struct peer_note *n = &a->note;
		const struct fle_vote *v = &a->vote;
		int k = 0;
		switch (a->type) {
		case FLE_ACT_SEND:
			k = snprintf(out + len, (size_t)(cap - len),
				     "send %s %" PRId64 " %d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n",
				     a->to_voters ? "voters" : "one", a->to, n->state, n->leader, n->zxid,
				     n->election_epoch, n->peer_epoch);
			break;
		case FLE_ACT_ARM_TIMER:
			k = snprintf(out + len, (size_t)(cap - len), "arm %d %" PRIu64 "\n", a->timer_ms,
				     a->timer_gen);
			break;
		case FLE_ACT_CANCEL_TIMER:
			k = snprintf(out + len, (size_t)(cap - len), "cancel\n");
			break;
		case FLE_ACT_DECIDED:
			k = snprintf(out + len, (size_t)(cap - len),
				     "decided %d %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n", a->state,
				     v->leader, v->zxid, v->election_epoch, v->peer_epoch);
			break;
		}
		if (k < 0 || k >= cap - len)
			return -ENOBUFS;
		len += k;
	}
	return len;
}

int shim_start(void *h, int64_t zxid, int64_t epoch, char *out, int cap)
{
	struct fle_actions acts = { 0 };
	fle_step(h, &(struct fle_event){ .type = FLE_EV_START, .last_zxid = zxid, .current_epoch = epoch },
		 &acts);
	return render(&acts, out, cap);
}

/* A notification payload as it came off the wire: decoded here with zkd's decoder. */
int shim_note(void *h, int64_t from, const uint8_t *p, int len, char *out, int cap)
{
	struct fle_event ev = { .type = FLE_EV_NOTE, .from = from };
	if (peer_note_decode(p, (size_t)len, &ev.note) != 0)
		return -EBADMSG;
	struct fle_actions acts = { 0 };
	fle_step(h, &ev, &acts);
	return render(&acts, out, cap);
}

int shim_timer(void *h, uint64_t gen, char *out, int cap)
{
	struct fle_actions acts = { 0 };
	fle_step(h, &(struct fle_event){ .type = FLE_EV_TIMER, .timer_gen = gen }, &acts);
	return render(&acts, out, cap);
}

static int copy_out(struct zbuf *z, int rc, uint8_t *out, int cap)
{
	int n = (int)zbuf_len(z);
	if (rc == 0 && n <= cap)
		memcpy(out, zbuf_head(z), (size_t)n);
	else
		n = rc ? rc : -ENOBUFS;
	zbuf_free(z);
	return n;
}

int shim_encode_note(int state, int64_t leader, int64_t zxid, int64_t ee, int64_t pe,
		     const uint8_t *cfg, int cfg_len, uint8_t *out, int cap)
{
	struct zbuf z;
	struct jute_out o;
	zbuf_init(&z, (size_t)cap);
	jout_init(&o, &z);
	struct peer_note n = { .state = state, .leader = leader, .zxid = zxid, .election_epoch = ee,
			       .peer_epoch = pe, .config = cfg, .config_len = cfg_len };
	return copy_out(&z, peer_note_encode(&o, &n), out, cap);
}

int shim_encode_initial(int64_t sid, const char *addr, uint8_t *out, int cap)
{
	struct zbuf z;
	struct jute_out o;
	zbuf_init(&z, (size_t)cap);
	jout_init(&o, &z);
	return copy_out(&z, peer_initial_encode(&o, PEER_PROTOCOL_V2, sid, addr), out, cap);
}

/* f: state, leader, zxid, election epoch, peer epoch, version, form, config length. */
int shim_decode_note(const uint8_t *p, int len, int64_t *f)
{
	struct peer_note n;
	int rc = peer_note_decode(p, (size_t)len, &n);
	if (rc == 0) {
		int64_t v[8] = { n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.version,
				 n.form, n.config_len };
		memcpy(f, v, sizeof v);
	}
	return rc;
}

/* f: protocol version, sid, address count, bytes used. 0, -EAGAIN or -EBADMSG. */
int shim_decode_initial(const uint8_t *p, int len, int64_t *f)
{
	struct peer_initial m;
	size_t used = 0;
	int rc = peer_initial_decode(p, (size_t)len, &m, &used);
	if (rc == 0) {
		f[0] = m.protocol_version;
		f[1] = m.sid;
		f[2] = m.naddr;
		f[3] = (int64_t)used;
	}
	return rc;
}
