long dp_wino2_buf_len(long n, long cin, long h, long w, long cout);
int dp_wino2_supported(void);
int dp_wino2_wgrad(float *dw, const float *x, const float *dy, long n, long cin, long h, long w, long cout, float *buf);
