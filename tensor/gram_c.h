int dp_gram64(double *dst, long ldd, const float *x, long rows, long n, long ldx, const float *scale, double *buf);
void dp_gather_gram(double *dst, long n, const double *p, long m, const int *idx, long kk, int skip);
int dp_gram64_supported(void);
