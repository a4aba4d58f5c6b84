/* y = x W^T (+ b) in fp32 for a few rows of x (a decode step's batch), one pass over W; loaded by
 * agentgym.native (few_rows). x is [M, K], W is [N, K], b is [N] or NULL, y is [M, N], all
 * contiguous; 1 <= M <= AGL_MAX_ROWS.
 *
 * At M = 2-8, MKL's sgemm reads SmolLM2-135M's weights at about half the machine's bandwidth; a
 * matrix-vector loop that reads each row of W once, multiplies it with every row of x and
 * prefetches the rows ahead is bandwidth-bound. Each output is summed in 16 fp32 lanes, then
 * across them (a different order from MKL's: the results agree to float rounding). Rows of W are
 * split across the calling thread's OpenMP team, which is torch's own (agentgym.native checks). */
#include <omp.h>
#include <stdint.h>

#define AGL_MAX_ROWS 8
#define PREFETCH 2048 /* floats ahead (8 KB): measured best of 256-4096 on a Xeon with AVX-512 */

#ifdef __AVX512F__
#include <immintrin.h>

int agl_lanes(void) { return 16; }

/* The OpenMP runtime this library calls into (agentgym.native compares it with torch's). */
void *agl_omp_symbol(void) { return (void *)&omp_get_num_threads; }

/* Rows [n0, n1) of y, two rows of W at a time; M is a constant where this is inlined. */
static inline __attribute__((always_inline)) void rows_m(const float *restrict x, const float *restrict w,
                                                         const float *restrict b, float *restrict y,
                                                         const int64_t M, int64_t K, int64_t N, int64_t n0,
                                                         int64_t n1) {
    const int64_t K16 = K - K % 16;
    const __mmask16 tail = (__mmask16)((1u << (K % 16)) - 1u);
    int64_t n = n0;
    for (; n + 2 <= n1; n += 2) {
        const float *w0 = w + n * K, *w1 = w0 + K;
        __m512 a0[AGL_MAX_ROWS], a1[AGL_MAX_ROWS];
        for (int64_t m = 0; m < M; m++) a0[m] = a1[m] = _mm512_setzero_ps();
        for (int64_t k = 0; k < K16; k += 16) {
            _mm_prefetch((const char *)(w0 + k + PREFETCH), _MM_HINT_T0);
            _mm_prefetch((const char *)(w1 + k + PREFETCH), _MM_HINT_T0);
            const __m512 v0 = _mm512_loadu_ps(w0 + k), v1 = _mm512_loadu_ps(w1 + k);
            for (int64_t m = 0; m < M; m++) {
                const __m512 xv = _mm512_loadu_ps(x + m * K + k);
                a0[m] = _mm512_fmadd_ps(xv, v0, a0[m]);
                a1[m] = _mm512_fmadd_ps(xv, v1, a1[m]);
            }
        }
        if (tail) {
            const __m512 v0 = _mm512_maskz_loadu_ps(tail, w0 + K16), v1 = _mm512_maskz_loadu_ps(tail, w1 + K16);
            for (int64_t m = 0; m < M; m++) {
                const __m512 xv = _mm512_maskz_loadu_ps(tail, x + m * K + K16);
                a0[m] = _mm512_fmadd_ps(xv, v0, a0[m]);
                a1[m] = _mm512_fmadd_ps(xv, v1, a1[m]);
            }
        }
        for (int64_t m = 0; m < M; m++) {
            y[m * N + n] = _mm512_reduce_add_ps(a0[m]) + (b ? b[n] : 0.0f);
            y[m * N + n + 1] = _mm512_reduce_add_ps(a1[m]) + (b ? b[n + 1] : 0.0f);
        }
    }
    for (; n < n1; n++) {
        const float *w0 = w + n * K;
        __m512 a0[AGL_MAX_ROWS];
        for (int64_t m = 0; m < M; m++) a0[m] = _mm512_setzero_ps();
        for (int64_t k = 0; k < K16; k += 16) {
            _mm_prefetch((const char *)(w0 + k + PREFETCH), _MM_HINT_T0);
            const __m512 v0 = _mm512_loadu_ps(w0 + k);
            for (int64_t m = 0; m < M; m++) a0[m] = _mm512_fmadd_ps(_mm512_loadu_ps(x + m * K + k), v0, a0[m]);
        }
        if (tail) {
            const __m512 v0 = _mm512_maskz_loadu_ps(tail, w0 + K16);
            for (int64_t m = 0; m < M; m++)
                a0[m] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, x + m * K + K16), v0, a0[m]);
        }
        for (int64_t m = 0; m < M; m++) y[m * N + n] = _mm512_reduce_add_ps(a0[m]) + (b ? b[n] : 0.0f);
    }
}

static void rows(const float *x, const float *w, const float *b, float *y, int64_t M, int64_t K, int64_t N,
                 int64_t n0, int64_t n1) {
    switch (M) {
    case 1: rows_m(x, w, b, y, 1, K, N, n0, n1); break;
    case 2: rows_m(x, w, b, y, 2, K, N, n0, n1); break;
    case 3: rows_m(x, w, b, y, 3, K, N, n0, n1); break;
    case 4: rows_m(x, w, b, y, 4, K, N, n0, n1); break;
    case 5: rows_m(x, w, b, y, 5, K, N, n0, n1); break;
    case 6: rows_m(x, w, b, y, 6, K, N, n0, n1); break;
    case 7: rows_m(x, w, b, y, 7, K, N, n0, n1); break;
    default: rows_m(x, w, b, y, 8, K, N, n0, n1); break;
    }
}

/* The whole product; `threads` > 1 splits W's rows across an OpenMP team of that size. */
void agl_linear(const float *x, const float *w, const float *b, float *y, int64_t M, int64_t K, int64_t N,
                int64_t threads) {
    if (M < 1 || M > AGL_MAX_ROWS) return;
    if (threads < 2 || N < 64) {
        rows(x, w, b, y, M, K, N, 0, N);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        const int64_t i = omp_get_thread_num(), p = omp_get_num_threads();
        rows(x, w, b, y, M, K, N, N * i / p, N * (i + 1) / p);
    }
}

#else

int agl_lanes(void) { return 0; } /* not used without AVX-512 (agentgym.native) */

void *agl_omp_symbol(void) { return (void *)&omp_get_num_threads; }

void agl_linear(const float *x, const float *w, const float *b, float *y, int64_t M, int64_t K, int64_t N,
                int64_t threads) {
    (void)threads;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float s = b ? b[n] : 0.0f;
            for (int64_t k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
            y[m * N + n] = s;
        }
}

#endif
