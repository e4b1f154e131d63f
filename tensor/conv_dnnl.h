// oneDNN convolutions for tensor.ConvPlan (conv_dnnl.c, conv_dnnl.go).
#include <stddef.h>

typedef struct dp_conv dp_conv;

int dp_conv_init(char *err, int errlen);
dp_conv *dp_conv_new(int n, int ci, int h, int w, int co, int co_total, int k, int stride, int pad, int wino, char *err, int errlen);
void dp_conv_free(dp_conv *c);
size_t dp_conv_ws_bytes(dp_conv *c);
size_t dp_conv_wei_bytes(dp_conv *c, int op);
int dp_conv_prepare(dp_conv *c, int op, const float *w, void *dst, char *err, int errlen);
int dp_conv_same_weights(dp_conv *c, dp_conv *d, int op1, int op2);
int dp_conv_run(dp_conv *c, int op, const float *a, const float *b, int b_ready, float *out, int keep, void *ws, char *err, int errlen);
int dp_conv_wgrad_layout(dp_conv *c, long *block, long *chunk, long *total);
int dp_conv_wgrad_reorder(dp_conv *c, int to_plain, const float *src, float *dst, char *err, int errlen);
const char *dp_conv_impl(dp_conv *c, int op);
