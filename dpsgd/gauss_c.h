#include <stdint.h>

int dp_gauss_supported(void);
long dp_gauss_pairs_f32(float *d, const uint64_t *words, long np, long count, double std, double g, double invg);
long dp_gauss_pairs_f64(double *d, const uint64_t *words, long np, long count, double std, double g, double invg);
