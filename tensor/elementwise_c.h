// Vectorised elementwise kernels (elementwise_c.c, elementwise_c.go).
void dp_relu(float *dst, const float *x, long n);
void dp_relu_mask(float *dst, const float *dy, const float *y, long n);
void dp_add(float *dst, const float *a, const float *b, long n);
void dp_add_relu(float *dst, const float *a, const float *b, long n);
void dp_affine(float *dst, const float *x, float m, float a, float b, long n);
void dp_combine(float *dst, const float *dy, const float *x, float m, float a, float b, float c, long n);
double dp_sum(const float *x, long n);
typedef struct { double a, b; } dp_pair; // two sums, returned by value (no Go pointer escapes)
dp_pair dp_centered_moments(const float *x, float m, long n);
dp_pair dp_centered_dots(const float *dy, const float *x, float m, long n);
double dp_sum_squares(const float *x, long n);
void dp_axpy(float *dst, float a, const float *x, long n);
void dp_tanh(float *dst, const float *x, long n);
void dp_tanh_backward(float *dst, const float *dy, const float *y, long n);
void dp_ws_row(float *dst, const float *g, const float *w, long n, double inv, int add);
typedef struct { double sq, sum, abs, dot, dotabs; } dp_ws_stats;
dp_ws_stats dp_ws_row_stats(const float *g, const float *w, long n);
void dp_ws_ghost_sums(double *dst, const float *dy, long ldy, const float *z, long zseg, long p, long k, long t,
                      const double *colsum, const double *colabs, const double *alpha, const double *scale,
                      const float *bias, double zabs, double cy, double cz);
void dp_ws_blocked_stats(dp_ws_stats *dst, const float *g, const float *w, long rows, long block, long chunk);
