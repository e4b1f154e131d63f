void dp_resample_h(const unsigned char *rows, int nrows, int sw, const int *start,
                   const int *n, const float *w, int taps, int dw, float *tmp);
void dp_resample_v(const float *tmp, int dw, int ylo, const int *start, const int *n,
                   const float *w, int taps, int dh, float *out);
void dp_clamp_u8(const float *v, unsigned char *dst, long n);
void dp_resample_vu8(const unsigned char *plane, int sw, int xlo, int cols, const int *start,
                     const int *n, const float *w, int taps, int dh, float *tmp);
void dp_resample_hf(const float *tmp, int cols, int xlo, const int *start, const int *n,
                    const float *w, int taps, int dw, int dh, float *out);
