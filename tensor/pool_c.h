void dp_maxpool_plane(float *out, int *arg, const float *in, long h, long w, long oh, long ow, long k, long s, long pad, int *bk, int *bi);
