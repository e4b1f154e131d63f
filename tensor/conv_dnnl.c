//go:build cgo && !noblas && !nodnnl

// oneDNN convolutions for tensor.ConvPlan (conv_dnnl.go). Every call runs
// on the calling thread alone (the OpenMP thread count of the thread is set
// to 1 before oneDNN is asked anything), so the result of a call depends
// only on its shape and inputs, never on how many goroutines run beside it.
//
// User tensors are plain NCHW (activations) and OIHW (weights); the
// primitives are created with format "any", so oneDNN picks its blocked
// layouts (nChw16c, OIhw16i16o, …) and JIT kernels for this CPU, and every
// call reorders its operands in and out through a caller-owned workspace.
// Scratchpads are user-managed (dnnl_scratchpad_mode_user) and live in the
// same workspace, which makes concurrent executions of one primitive on
// different workspaces safe. A product is direct unless the plan asks for
// Winograd's algorithm (ConvShape.WinogradOps) and oneDNN has it.

#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "conv_dnnl.h"

// One thread per call rests on oneDNN's OpenMP runtime honouring
// omp_set_num_threads on the calling thread (Debian's libdnnl2 is built so);
// a TBB or thread-pool build would run every call on all cores and make
// backward-weights depend on their number.
#if DNNL_CPU_RUNTIME != DNNL_RUNTIME_OMP
#error "dptrain needs oneDNN built with the OpenMP CPU runtime (or build with -tags nodnnl)"
#endif

enum { OP_FWD, OP_BWD_DATA, OP_BWD_WEIGHTS, NOPS };

struct dp_conv {
	dnnl_engine_t eng;
	dnnl_memory_desc_t user_src, user_wei, user_dst;
	dnnl_primitive_desc_t pd[NOPS];
	dnnl_primitive_t prim[NOPS];
	// the layouts oneDNN chose, per op: src/diff_src, weights/diff_weights,
	// dst/diff_dst
	dnnl_memory_desc_t src[NOPS], wei[NOPS], dst[NOPS];
	size_t scratch[NOPS]; // scratchpad bytes
	// reorders between the user layouts and the chosen ones (NULL: same)
	dnnl_primitive_t src_in[NOPS], dst_in[NOPS], wei_in[NOPS];
	dnnl_primitive_t src_out[NOPS], wei_out[NOPS];
	dnnl_primitive_t wgrad_in; // plain OIHW to the backward-weights layout (dp_conv_wgrad_reorder)
	size_t ws_bytes;
};

static dnnl_engine_t engine;

static void one_thread(void) { omp_set_num_threads(1); }

#define CHK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { snprintf(err, errlen, "%s: status %d", #x, (int)s_); goto fail; } } while (0)

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

// reorder returns a reorder primitive from a to b, or NULL when a and b are
// the same layout.
static dnnl_status_t reorder(dnnl_primitive_t *out, const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) {
	*out = NULL;
	if (dnnl_memory_desc_equal(a, b)) return dnnl_success;
	dnnl_primitive_desc_t pd;
	dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, a, engine, b, engine, NULL);
	if (s != dnnl_success) return s;
	s = dnnl_primitive_create(out, pd);
	dnnl_primitive_desc_destroy(pd);
	return s;
}

// link makes the reorder from a to b (NULL when they agree) and, when there
// is one, adds the size of the copy in layout md to *ws.
static dnnl_status_t link(dnnl_primitive_t *r, const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *md, size_t *ws) {
	dnnl_status_t s = reorder(r, a, b);
	if (s == dnnl_success && *r) *ws += align64(dnnl_memory_desc_get_size(md));
	return s;
}

int dp_conv_init(char *err, int errlen) {
	one_thread();
	if (engine) return 0;
	CHK(dnnl_engine_create(&engine, dnnl_cpu, 0));
	return 0;
fail:
	return -1;
}

const char *dp_conv_impl(dp_conv *c, int op) {
	const char *s = "";
	dnnl_primitive_desc_query(c->pd[op], dnnl_query_impl_info_str, 0, &s);
	return s;
}

// dp_conv_new makes the primitives of one shape. The output (and output
// gradient) tensor has co_total ≥ co channels, of which the plan computes
// co consecutive ones: its user layout is NCHW with channel stride oh·ow and
// example stride co_total·oh·ow. Bit op of wino (forward 1, backward-data 2,
// backward-weights 4) asks for Winograd's algorithm for that product; where
// oneDNN has no such kernel for the shape or CPU, the product is direct.
dp_conv *dp_conv_new(int n, int ci, int h, int w, int co, int co_total, int k, int stride, int pad, int wino, char *err, int errlen) {
	one_thread();
	dp_conv *c = calloc(1, sizeof *c);
	if (!c) { snprintf(err, errlen, "out of memory"); return NULL; }
	int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
	dnnl_dims_t sd = {n, ci, h, w}, wd = {co, ci, k, k}, dd = {n, co, oh, ow};
	dnnl_dims_t str = {stride, stride}, pl = {pad, pad};
	dnnl_memory_desc_t sa, wa, da;
	dnnl_primitive_attr_t attr = NULL;
	CHK(dnnl_memory_desc_init_by_tag(&c->user_src, 4, sd, dnnl_f32, dnnl_nchw));
	CHK(dnnl_memory_desc_init_by_tag(&c->user_wei, 4, wd, dnnl_f32, dnnl_oihw));
	dnnl_dims_t dstr = {(dnnl_dim_t)co_total * oh * ow, (dnnl_dim_t)oh * ow, ow, 1};
	CHK(dnnl_memory_desc_init_by_strides(&c->user_dst, 4, dd, dnnl_f32, dstr));
	CHK(dnnl_memory_desc_init_by_tag(&sa, 4, sd, dnnl_f32, dnnl_format_tag_any));
	CHK(dnnl_memory_desc_init_by_tag(&wa, 4, wd, dnnl_f32, dnnl_format_tag_any));
	CHK(dnnl_memory_desc_init_by_tag(&da, 4, dd, dnnl_f32, dnnl_format_tag_any));
	CHK(dnnl_primitive_attr_create(&attr));
	CHK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
	// float32 arithmetic whatever ONEDNN_DEFAULT_FPMATH_MODE says: the
	// weight-standardised ghost norm bounds the rounding error of the
	// forward output (nn/conv_ws.go) assuming float32, and bf16/tf32 would
	// also change the bits between machines.
	CHK(dnnl_primitive_attr_set_fpmath_mode(attr, dnnl_fpmath_mode_strict));
	dnnl_convolution_desc_t fd, bd, wdsc;
	// Each product: Winograd first when asked for, else (or when refused)
	// direct.
	for (int pass = (wino & 1) ? 0 : 1; pass < 2; pass++) {
		CHK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, pass ? dnnl_convolution_direct : dnnl_convolution_winograd, &sa, &wa, NULL, &da, str, pl, pl));
		dnnl_status_t s = dnnl_primitive_desc_create(&c->pd[OP_FWD], &fd, attr, engine, NULL);
		if (s == dnnl_success) break;
		if (pass) CHK(s);
	}
	for (int pass = (wino & 2) ? 0 : 1; pass < 2; pass++) {
		CHK(dnnl_convolution_backward_data_desc_init(&bd, pass ? dnnl_convolution_direct : dnnl_convolution_winograd, &sa, &wa, &da, str, pl, pl));
		dnnl_status_t s = dnnl_primitive_desc_create(&c->pd[OP_BWD_DATA], &bd, attr, engine, c->pd[OP_FWD]);
		if (s == dnnl_success) break;
		if (pass) CHK(s);
	}
	for (int pass = (wino & 4) ? 0 : 1; pass < 2; pass++) {
		CHK(dnnl_convolution_backward_weights_desc_init(&wdsc, pass ? dnnl_convolution_direct : dnnl_convolution_winograd, &sa, &wa, NULL, &da, str, pl, pl));
		dnnl_status_t s = dnnl_primitive_desc_create(&c->pd[OP_BWD_WEIGHTS], &wdsc, attr, engine, c->pd[OP_FWD]);
		if (s == dnnl_success) break;
		if (pass) CHK(s);
	}
	static const dnnl_query_t qs[NOPS] = {dnnl_query_src_md, dnnl_query_diff_src_md, dnnl_query_src_md};
	static const dnnl_query_t qw[NOPS] = {dnnl_query_weights_md, dnnl_query_weights_md, dnnl_query_diff_weights_md};
	static const dnnl_query_t qd[NOPS] = {dnnl_query_dst_md, dnnl_query_diff_dst_md, dnnl_query_diff_dst_md};
	for (int op = 0; op < NOPS; op++) {
		c->src[op] = *dnnl_primitive_desc_query_md(c->pd[op], qs[op], 0);
		c->wei[op] = *dnnl_primitive_desc_query_md(c->pd[op], qw[op], 0);
		c->dst[op] = *dnnl_primitive_desc_query_md(c->pd[op], qd[op], 0);
		c->scratch[op] = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(c->pd[op], dnnl_query_scratchpad_md, 0));
		CHK(dnnl_primitive_create(&c->prim[op], c->pd[op]));
		size_t ws = align64(c->scratch[op]);
		// Each operand in a layout other than the user's needs a reorder
		// and room for its copy in the workspace.
		switch (op) {
		case OP_FWD:
			CHK(link(&c->src_in[op], &c->user_src, &c->src[op], &c->src[op], &ws));
			CHK(link(&c->wei_in[op], &c->user_wei, &c->wei[op], &c->wei[op], &ws));
			CHK(link(&c->dst_in[op], &c->dst[op], &c->user_dst, &c->dst[op], &ws)); // out
			break;
		case OP_BWD_DATA:
			CHK(link(&c->dst_in[op], &c->user_dst, &c->dst[op], &c->dst[op], &ws));
			CHK(link(&c->wei_in[op], &c->user_wei, &c->wei[op], &c->wei[op], &ws));
			CHK(link(&c->src_out[op], &c->src[op], &c->user_src, &c->src[op], &ws));
			break;
		case OP_BWD_WEIGHTS:
			CHK(link(&c->src_in[op], &c->user_src, &c->src[op], &c->src[op], &ws));
			CHK(link(&c->dst_in[op], &c->user_dst, &c->dst[op], &c->dst[op], &ws));
			CHK(link(&c->wei_out[op], &c->wei[op], &c->user_wei, &c->wei[op], &ws));
			break;
		}
		if (ws > c->ws_bytes) c->ws_bytes = ws;
	}
	CHK(reorder(&c->wgrad_in, &c->user_wei, &c->wei[OP_BWD_WEIGHTS]));
	dnnl_primitive_attr_destroy(attr);
	return c;
fail:
	if (attr) dnnl_primitive_attr_destroy(attr);
	dp_conv_free(c);
	return NULL;
}

void dp_conv_free(dp_conv *c) {
	if (!c) return;
	for (int op = 0; op < NOPS; op++) {
		if (c->prim[op]) dnnl_primitive_destroy(c->prim[op]);
		if (c->pd[op]) dnnl_primitive_desc_destroy(c->pd[op]);
		dnnl_primitive_t *rs[] = {&c->src_in[op], &c->dst_in[op], &c->wei_in[op], &c->src_out[op], &c->wei_out[op]};
		for (int i = 0; i < 5; i++)
			if (*rs[i]) dnnl_primitive_destroy(*rs[i]);
	}
	if (c->wgrad_in) dnnl_primitive_destroy(c->wgrad_in);
	free(c);
}

size_t dp_conv_ws_bytes(dp_conv *c) { return c->ws_bytes; }

// A tiny arena over the caller's workspace.
typedef struct {
	char *p;
	size_t off;
} arena;

static void *take(arena *a, const dnnl_memory_desc_t *md) {
	void *p = a->p + a->off;
	a->off += align64(dnnl_memory_desc_get_size(md));
	return p;
}

typedef struct {
	dnnl_memory_t m[8];
	int n;
} mems;

static dnnl_status_t mk(mems *ms, dnnl_memory_t *out, const dnnl_memory_desc_t *md, void *ptr) {
	dnnl_status_t s = dnnl_memory_create(out, md, engine, ptr);
	if (s == dnnl_success) ms->m[ms->n++] = *out;
	return s;
}

static void release(mems *ms) {
	for (int i = 0; i < ms->n; i++) dnnl_memory_destroy(ms->m[i]);
	ms->n = 0;
}

static dnnl_status_t run_reorder(dnnl_stream_t st, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
	dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
	return dnnl_primitive_execute(r, st, 2, args);
}

// input returns a memory in layout md holding the user's data at ptr
// (layout umd): ptr itself when the layouts agree, else a reordered copy in
// the arena.
static dnnl_status_t input(dnnl_stream_t st, mems *ms, arena *a, dnnl_primitive_t r, const dnnl_memory_desc_t *umd, const dnnl_memory_desc_t *md, const float *ptr, dnnl_memory_t *out) {
	dnnl_status_t s;
	if (!r) return mk(ms, out, umd, (void *)ptr);
	dnnl_memory_t um;
	if ((s = mk(ms, &um, umd, (void *)ptr)) != dnnl_success) return s;
	if ((s = mk(ms, out, md, take(a, md))) != dnnl_success) return s;
	return run_reorder(st, r, um, *out);
}

// dp_conv_wei_bytes returns the size of the weights in the layout of op
// (forward or backward-data), or 0 when that layout is plain OIHW.
size_t dp_conv_wei_bytes(dp_conv *c, int op) {
	return c->wei_in[op] ? dnnl_memory_desc_get_size(&c->wei[op]) : 0;
}

// dp_conv_prepare writes the OIHW weights w into dst in the layout of op
// (forward or backward-data), for dp_conv_run with b_ready.
int dp_conv_prepare(dp_conv *c, int op, const float *w, void *dst, char *err, int errlen) {
	one_thread();
	dnnl_stream_t st = NULL;
	mems ms = {.n = 0};
	dnnl_memory_t um, m;
	CHK(dnnl_stream_create(&st, engine, dnnl_stream_default_flags));
	CHK(mk(&ms, &um, &c->user_wei, (void *)w));
	CHK(mk(&ms, &m, &c->wei[op], dst));
	CHK(run_reorder(st, c->wei_in[op], um, m));
	CHK(dnnl_stream_wait(st));
	release(&ms);
	dnnl_stream_destroy(st);
	return 0;
fail:
	release(&ms);
	if (st) dnnl_stream_destroy(st);
	return -1;
}

// dp_conv_same_weights reports whether c and d keep op's weights in the same
// layout (so one prepared copy serves both).
int dp_conv_same_weights(dp_conv *c, dp_conv *d, int op1, int op2) {
	return dnnl_memory_desc_equal(&c->wei[op1], &d->wei[op2]);
}

// dp_conv_run runs op with the user buffers a, b (inputs) and out (output):
// forward (x, w → y), backward-data (dy, w → dx), backward-weights
// (x, dy → dw).
//
// With keep, backward-weights leaves dw in its own layout
// (dp_conv_wgrad_layout) instead of reordering it to OIHW.
int dp_conv_run(dp_conv *c, int op, const float *a, const float *b, int b_ready, float *out, int keep, void *ws, char *err, int errlen) {
	one_thread();
	dnnl_stream_t st = NULL;
	mems ms = {.n = 0};
	arena ar = {ws, 0};
	dnnl_memory_t ma, mb, mo, uo = NULL, mscr = NULL;
	const dnnl_memory_desc_t *ua, *ub, *uout, *da, *db, *dout;
	dnnl_primitive_t ra, rb, rout;
	int aa, ab, aout;
	switch (op) {
	case OP_FWD:
		ua = &c->user_src, ub = &c->user_wei, uout = &c->user_dst;
		da = &c->src[op], db = &c->wei[op], dout = &c->dst[op];
		ra = c->src_in[op], rb = c->wei_in[op], rout = c->dst_in[op];
		aa = DNNL_ARG_SRC, ab = DNNL_ARG_WEIGHTS, aout = DNNL_ARG_DST;
		break;
	case OP_BWD_DATA:
		ua = &c->user_dst, ub = &c->user_wei, uout = &c->user_src;
		da = &c->dst[op], db = &c->wei[op], dout = &c->src[op];
		ra = c->dst_in[op], rb = c->wei_in[op], rout = c->src_out[op];
		aa = DNNL_ARG_DIFF_DST, ab = DNNL_ARG_WEIGHTS, aout = DNNL_ARG_DIFF_SRC;
		break;
	default:
		ua = &c->user_src, ub = &c->user_dst, uout = &c->user_wei;
		da = &c->src[op], db = &c->dst[op], dout = &c->wei[op];
		ra = c->src_in[op], rb = c->dst_in[op], rout = c->wei_out[op];
		aa = DNNL_ARG_SRC, ab = DNNL_ARG_DIFF_DST, aout = DNNL_ARG_DIFF_WEIGHTS;
		if (keep) rout = NULL, uout = dout;
		break;
	}
	CHK(dnnl_stream_create(&st, engine, dnnl_stream_default_flags));
	CHK(input(st, &ms, &ar, ra, ua, da, a, &ma));
	if (b_ready) CHK(mk(&ms, &mb, db, (void *)b));
	else CHK(input(st, &ms, &ar, rb, ub, db, b, &mb));
	if (rout) {
		CHK(mk(&ms, &mo, dout, take(&ar, dout)));
		CHK(mk(&ms, &uo, uout, out));
	} else {
		CHK(mk(&ms, &mo, uout, out));
	}
	dnnl_exec_arg_t args[4] = {{aa, ma}, {ab, mb}, {aout, mo}, {DNNL_ARG_SCRATCHPAD, NULL}};
	int nargs = 3;
	if (c->scratch[op]) {
		CHK(mk(&ms, &mscr, dnnl_primitive_desc_query_md(c->pd[op], dnnl_query_scratchpad_md, 0), ar.p + ar.off));
		args[3].memory = mscr;
		nargs = 4;
	}
	CHK(dnnl_primitive_execute(c->prim[op], st, nargs, args));
	if (rout) CHK(run_reorder(st, rout, mo, uo));
	CHK(dnnl_stream_wait(st));
	release(&ms);
	dnnl_stream_destroy(st);
	return 0;
fail:
	release(&ms);
	if (st) dnnl_stream_destroy(st);
	return -1;
}

// dp_conv_wgrad_layout reports whether backward-weights' own layout of dw
// is row-blocked: output channels in blocks of *block (the innermost index,
// lane o mod block), each block one contiguous run of *chunk floats (the
// block's weights, zero-padded), *total floats in all. It returns 0 (and
// sets nothing) for any other layout.
int dp_conv_wgrad_layout(dp_conv *c, long *block, long *chunk, long *total) {
	const dnnl_memory_desc_t *md = &c->wei[OP_BWD_WEIGHTS];
	if (md->format_kind != dnnl_blocked || md->ndims != 4 || md->offset0 != 0) return 0;
	const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
	int nb = b->inner_nblks;
	if (nb < 1 || b->inner_idxs[nb - 1] != 0) return 0;
	for (int i = 0; i < nb - 1; i++)
		if (b->inner_idxs[i] == 0) return 0;
	for (int d = 0; d < 4; d++)
		if (md->padded_offsets[d] != 0) return 0;
	long blk = b->inner_blks[nb - 1];
	long n = (long)(dnnl_memory_desc_get_size(md) / sizeof(float));
	long s0 = b->strides[0];
	if (blk < 1 || md->padded_dims[0] % blk != 0 || s0 * (md->padded_dims[0] / blk) != n) return 0;
	for (int d = 1; d < 4; d++)
		if (b->strides[d] > s0) return 0;
	*block = blk, *chunk = s0, *total = n;
	return 1;
}

// dp_conv_wgrad_reorder copies weights between plain OIHW and
// backward-weights' own layout: to_plain 1 from that layout to OIHW, 0 the
// other way (padding set to zero).
int dp_conv_wgrad_reorder(dp_conv *c, int to_plain, const float *src, float *dst, char *err, int errlen) {
	one_thread();
	dnnl_stream_t st = NULL;
	mems ms = {.n = 0};
	dnnl_memory_t ms_, md_;
	const dnnl_memory_desc_t *blk = &c->wei[OP_BWD_WEIGHTS];
	dnnl_primitive_t r = c->wei_out[OP_BWD_WEIGHTS];
	if (!to_plain) r = c->wgrad_in;
	if (!r) {
		memcpy(dst, src, dnnl_memory_desc_get_size(&c->user_wei));
		return 0;
	}
	CHK(dnnl_stream_create(&st, engine, dnnl_stream_default_flags));
	CHK(mk(&ms, &ms_, to_plain ? blk : &c->user_wei, (void *)src));
	CHK(mk(&ms, &md_, to_plain ? &c->user_wei : blk, dst));
	CHK(run_reorder(st, r, ms_, md_));
	CHK(dnnl_stream_wait(st));
	release(&ms);
	dnnl_stream_destroy(st);
	return 0;
fail:
	release(&ms);
	if (st) dnnl_stream_destroy(st);
	return -1;
}
