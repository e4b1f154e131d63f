int dp_gram64(double *dst, long ldd, const float *x, long rows, long n, long ldx, const float *scale, double *buf);
