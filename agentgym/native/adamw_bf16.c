/* adamw_bf16's CPU loops (agentgym.train.optim), one pass over memory each; loaded by
 * agentgym.train.native. bf16 values are uint16_t (the top half of an fp32). Stochastic rounding
 * adds noise[off + j] (uniform in [0, 2^16)) below bf16's last bit and keeps the top half, exactly as
 * optim.round_stochastic does, with the offset rule of the torch path: for the chunk of `chunk`
 * elements starting at a, off = (seed + a) % chunk. Every function works on [begin, end), so callers
 * split the work across threads. */
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float widen(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t round_stochastic(float f, int32_t noise) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + (uint32_t)noise) >> 16);
}

static inline uint16_t round_nearest(float f) { /* as torch's float -> bfloat16 */
    uint32_t u;
    memcpy(&u, &f, 4);
    if (f != f) return 0x7FC0;
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

static inline int64_t chunk_end(int64_t i, int64_t end, int64_t chunk) {
    int64_t stop = i - i % chunk + chunk;
    return stop < end ? stop : end;
}

/* One AdamW step: p (fp32) updated in place, g (bf16, scaled by coef: the clip), moments m and v
 * (bf16) read, updated in fp32 and stored stochastically rounded. */
void agb_step(float *p, const uint16_t *g, uint16_t *m, uint16_t *v, int64_t begin, int64_t end,
              float lr, float beta1, float beta2, float eps, float weight_decay, float step_size,
              float bias2_sqrt, float coef, const int32_t *noise, int64_t chunk, int64_t seed_m,
              int64_t seed_v) {
    const float decay = 1.0f - lr * weight_decay, c1 = 1.0f - beta1, c2 = 1.0f - beta2;
    for (int64_t i = begin; i < end;) {
        const int64_t stop = chunk_end(i, end, chunk), a = i - i % chunk;
        const int32_t *nm = noise + (seed_m + a) % chunk - a, *nv = noise + (seed_v + a) % chunk - a;
        for (int64_t k = i; k < stop; k++) {
            const float gk = widen(g[k]) * coef;
            const float mk = widen(m[k]) + c1 * (gk - widen(m[k]));
            const float vk = widen(v[k]) * beta2 + c2 * gk * gk;
            p[k] = p[k] * decay - step_size * mk / (sqrtf(vk) / bias2_sqrt + eps);
            m[k] = round_stochastic(mk, nm[k]);
            v[k] = round_stochastic(vk, nv[k]);
        }
        i = stop;
    }
}

/* buf (bf16) := g (fp32) rounded to nearest when fresh, else buf + g rounded stochastically. */
void agb_accumulate(uint16_t *buf, const float *g, int64_t begin, int64_t end, int32_t fresh,
                    const int32_t *noise, int64_t chunk, int64_t seed) {
    if (fresh) {
        for (int64_t k = begin; k < end; k++) buf[k] = round_nearest(g[k]);
        return;
    }
    for (int64_t i = begin; i < end;) {
        const int64_t stop = chunk_end(i, end, chunk), a = i - i % chunk;
        const int32_t *n = noise + (seed + a) % chunk - a;
        for (int64_t k = i; k < stop; k++) buf[k] = round_stochastic(widen(buf[k]) + g[k], n[k]);
        i = stop;
    }
}

/* The sum of squares of bf16 values (fp32 lanes over blocks of 4,096, summed in double). */
double agb_sumsq(const uint16_t *g, int64_t begin, int64_t end) {
    double total = 0.0;
    int64_t k = begin;
    for (; k + 4096 <= end; k += 4096) {
        float lane[16] = {0};
        for (int64_t s = 0; s < 4096; s += 16)
            for (int l = 0; l < 16; l++) {
                const float x = widen(g[k + s + l]);
                lane[l] += x * x;
            }
        for (int l = 0; l < 16; l++) total += lane[l];
    }
    for (; k < end; k++) total += (double)widen(g[k]) * widen(g[k]);
    return total;
}
