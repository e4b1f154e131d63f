void dp_maxpool_plane(float *out, int *arg, const float *in, long h, long w, long oh, long ow, long k, long s, long pad, int *bk, int *bi);
long dp_maxpool_rows_phase(long w, long ow, long k, long s, long pad);
long dp_maxpool_rows_scratch(long h, long w, long ow, long k, long s, long pad);
void dp_maxpool_plane_rows(float *out, int *arg, const float *in, long h, long w, long oh, long ow, long k, long s, long pad, int *scratch);
