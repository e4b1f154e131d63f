void dp_resample_h(const unsigned char *rows, int nrows, int sw, const int *start,
                   const int *n, const float *w, int taps, int dw, float *tmp);
void dp_resample_v(const float *tmp, int dw, int ylo, const int *start, const int *n,
                   const float *w, int taps, int dh, float *out);
