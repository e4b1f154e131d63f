// Package scatter computes the 2-D Morlet wavelet scattering transform of
// Oyallon & Mallat as Kymatio's Scattering2D does (the ScatterNet features
// of Tramèr & Boneh 2021): a fixed, data-independent feature extractor.
// nn.Scattering is its layer adapter; this package imports no layer code.
//
//   - transform.go: Transform (New, Apply, OutShape), the orders 0–2 and
//     the low-pass, per example in parallel; bit-identical at any thread
//     count.
//   - filters (in transform.go): Kymatio's filter bank: Morlet ψ with
//     σ = 0.8·2^j, ξ = 3π/(4·2^j), slant 4/L, periodised in the Fourier
//     domain; Gaussian φ.
//   - fft.go: a mixed-radix complex 2-D FFT (plane sizes such as 40 =
//     2³·5). Package accounting has an FFT of its own (real, power of two,
//     1-D, for privacy loss distributions): the needs differ, and
//     accounting imports only the standard library.
//   - cache.go: an optional memo of per-example outputs (CacheBytes), keyed
//     by the SHA-256 of the example's bits, stored as float16
//     (internal/float16), shared by transforms of one configuration in a
//     process and freed with the last of them. Memory: at most CacheBytes
//     per configuration; it never evicts.
//
// Misuse of sizes panics with a *tensor.ShapeError.
package scatter
