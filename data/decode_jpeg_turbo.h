#include <turbojpeg.h>

int dp_tj_header(tjhandle h, const unsigned char *src, unsigned long n,
                 int *width, int *height, int *subsamp, int *colorspace);
int dp_tj_decode_chw(tjhandle h, const unsigned char *src, unsigned long n,
                     unsigned char *hwc, unsigned char *chw, int w, int hgt);
