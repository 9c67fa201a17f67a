/*
 * echo-server: the WebSocket (RFC 6455) side of /ws.
 *
 * Frames are echoed as they arrive, header first and then the payload
 * unmasked piece by piece, so a fragmented message comes back with the same
 * fragments and no message is ever buffered whole. Control frames (at most
 * 125 bytes) are collected before they are answered. Text payloads are not
 * checked for valid UTF-8; a test peer has no use for the 1007 close.
 */
#include <string.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "echo-server.h"

#define OP_CONTINUATION 0x0
#define OP_TEXT         0x1
#define OP_BINARY       0x2
#define OP_CLOSE        0x8
#define OP_PING         0x9
#define OP_PONG         0xa

#define CLOSE_NORMAL   1000
#define CLOSE_PROTOCOL 1002
/* How long we wait for the peer's close frame after sending ours. */
#define CLOSE_WAIT_MS 5000

void echo_ws_accept(const char *key, size_t key_len, char accept[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	uint8_t digest[SHA1_DIGEST_SIZE];
	struct sha1_ctx ctx;

	sha1_init(&ctx);
	sha1_update(&ctx, key_len, (const uint8_t *)key);
	sha1_update(&ctx, sizeof(guid) - 1, (const uint8_t *)guid);
	sha1_digest(&ctx, sizeof(digest), digest);
	base64_encode_raw(accept, sizeof(digest), digest);
	accept[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
}

/* Server frames are never masked. */
static void frame_head(struct echo_conn *c, bool fin, uint8_t opcode, uint64_t len)
{
	uint8_t h[10];
	size_t n = 2;
	int i;

	h[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		h[1] = (uint8_t)len;
	} else if (len <= 0xffff) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		n = 4;
	} else {
		h[1] = 127;
		for (i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	echo_buf_append(&c->out, h, n);
}

static void send_close(struct echo_conn *c, unsigned code)
{
	uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	frame_head(c, true, OP_CLOSE, sizeof(payload));
	echo_buf_append(&c->out, payload, sizeof(payload));
	c->ws.close_sent = true;
	echo_conn_set_timer(c, CLOSE_WAIT_MS);
}

/* Fails the connection (RFC 6455 7.1.7): our close frame, then TCP close. */
static int fail(struct echo_conn *c)
{
	if (!c->ws.close_sent)
		send_close(c, CLOSE_PROTOCOL);
	echo_conn_set_timer(c, 0);
	c->state = ECHO_DRAIN;
	return 1;
}

static bool valid_close_code(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

void echo_ws_start(struct echo_conn *c, bool has_close_after, uint64_t close_after)
{
	c->ws = (struct echo_ws){.has_close_after = has_close_after, .close_after = close_after};
	if (has_close_after && close_after == 0)
		send_close(c, CLOSE_NORMAL);
}

/* A whole frame has been read. */
static int frame_done(struct echo_conn *c)
{
	struct echo_ws *w = &c->ws;
	unsigned code;

	switch (w->opcode) {
	case OP_PING:
		if (!w->close_sent) {
			frame_head(c, true, OP_PONG, w->ctrl_len);
			echo_buf_append(&c->out, w->ctrl, w->ctrl_len);
		}
		return 1;
	case OP_PONG:
		return 1;
	case OP_CLOSE:
		if (w->close_sent) {
			/* The peer answered our close: the handshake is done. */
			echo_conn_set_timer(c, 0);
			c->state = ECHO_DRAIN;
			return 1;
		}
		if (w->ctrl_len == 1)
			return fail(c);
		if (w->ctrl_len == 0) {
			frame_head(c, true, OP_CLOSE, 0);
		} else {
			code = (unsigned)w->ctrl[0] << 8 | w->ctrl[1];
			if (!valid_close_code(code))
				return fail(c);
			/* Answer with the code the peer sent, as most servers do. */
			frame_head(c, true, OP_CLOSE, 2);
			echo_buf_append(&c->out, w->ctrl, 2);
		}
		w->close_sent = true;
		c->state = ECHO_DRAIN;
		return 1;
	default:
		if (!w->fin)
			return 1;
		w->messages++;
		if (w->has_close_after && w->messages >= w->close_after && !w->close_sent)
			send_close(c, CLOSE_NORMAL);
		return 1;
	}
}

/* Parses a frame header if one is complete. Returns 1 if parsed, 0 if more
 * input is needed, -1 on a protocol error. */
static int parse_frame_head(struct echo_conn *c)
{
	struct echo_ws *w = &c->ws;
	const uint8_t *p = (const uint8_t *)c->in.data + c->in.off;
	size_t avail = echo_buf_pending(&c->in), need = 2, i;
	uint64_t len;

	if (avail < 2)
		return 0;
	/* No extension was negotiated, so no reserved bit may be set; clients
	 * must mask every frame. */
	if ((p[0] & 0x70) || !(p[1] & 0x80))
		return -1;
	len = p[1] & 0x7f;
	need += len == 126 ? 2 : len == 127 ? 8 : 0;
	need += 4;
	if (avail < need)
		return 0;
	w->fin = p[0] & 0x80;
	w->opcode = p[0] & 0x0f;
	if (len == 126) {
		len = (uint64_t)p[2] << 8 | p[3];
	} else if (len == 127) {
		len = 0;
		for (i = 0; i < 8; i++)
			len = len << 8 | p[2 + i];
		if (len >> 63)
			return -1;
	}
	memcpy(w->mask, p + need - 4, 4);
	if (w->opcode & 0x8) {
		if (w->opcode > OP_PONG || !w->fin || len > 125)
			return -1;
	} else if (w->opcode == OP_CONTINUATION) {
		if (!w->in_message)
			return -1;
		w->in_message = !w->fin;
	} else if (w->opcode == OP_TEXT || w->opcode == OP_BINARY) {
		if (w->in_message)
			return -1;
		w->in_message = !w->fin;
	} else {
		return -1;
	}
	echo_buf_consume(&c->in, need);
	w->remaining = len;
	w->pos = 0;
	w->ctrl_len = 0;
	w->in_payload = true;
	/* After our close frame, data is read and dropped, not echoed. */
	if (!(w->opcode & 0x8) && !w->close_sent)
		frame_head(c, w->fin, w->opcode, len);
	return 1;
}

int echo_ws_advance(struct echo_conn *c)
{
	struct echo_ws *w = &c->ws;
	int progress = 0, r;

	while (c->state == ECHO_WS && echo_buf_pending(&c->out) < ECHO_OUT_HIGH) {
		const uint8_t *p;
		size_t avail, n, i;
		uint8_t *dst = NULL;

		if (!w->in_payload) {
			r = parse_frame_head(c);
			if (r < 0)
				return fail(c);
			if (r == 0)
				break;
			progress = 1;
		}
		p = (const uint8_t *)c->in.data + c->in.off;
		avail = echo_buf_pending(&c->in);
		n = avail < w->remaining ? avail : (size_t)w->remaining;
		if (w->remaining > 0 && n == 0)
			break;
		if (w->opcode & 0x8)
			dst = w->ctrl + w->ctrl_len;
		else if (!w->close_sent)
			dst = (uint8_t *)echo_buf_reserve(&c->out, n);
		for (i = 0; dst && i < n; i++)
			dst[i] = p[i] ^ w->mask[(w->pos + i) & 3];
		if (w->opcode & 0x8)
			w->ctrl_len += n;
		else if (!w->close_sent)
			c->out.len += n;
		echo_buf_consume(&c->in, n);
		w->pos += n;
		w->remaining -= n;
		progress = 1;
		if (w->remaining == 0) {
			w->in_payload = false;
			frame_done(c);
		}
	}
	/* A peer that closes TCP without a close frame gets no more echoes. */
	if (c->state == ECHO_WS && c->eof)
		return -1;
	return progress;
}
