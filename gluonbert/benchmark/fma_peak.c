/* This CPU's arithmetic peak: every thread runs 12 independent multiply-add chains (enough to
 * hide the instruction latency on every port), so the rate is what the vector units can do with
 * no memory traffic at all. Prints "fp32 G bf16 G int8 G" in GFLOP/s (one multiply-add = 2
 * operations), "none" for a precision the CPU has no instruction for. argv[1]: seconds each
 * timed run lasts at least (default 0.2). AMX tiles, where present, are not measured. Built and
 * run by gluonbert/benchmark/peak.py. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

__attribute__((target("avx2,fma"))) static float fp32_avx2(long n) {
    __m256 acc[CHAINS], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
    float out[8], sum = 0;
    for (int i = 1; i < CHAINS; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(out, acc[0]);
    for (int i = 0; i < 8; i++) sum += out[i];
    return sum;
}

__attribute__((target("avx512f"))) static float fp32_avx512(long n) {
    __m512 acc[CHAINS], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
    for (int i = 1; i < CHAINS; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx512f,avx512bf16"))) static float bf16_avx512(long n) {
    /* 32 bf16 pairs multiplied and added into 16 float32 lanes per instruction */
    __m512 acc[CHAINS];
    __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3380);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    for (int i = 1; i < CHAINS; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

__attribute__((target("avx512f,avx512vnni"))) static float int8_avx512(long n) {
    /* 64 u8 x s8 products summed into 16 int32 lanes per instruction */
    __m512i acc[CHAINS], x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(1);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_epi32(i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
    for (int i = 1; i < CHAINS; i++) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
    return (float)_mm512_reduce_add_epi32(acc[0]);
}

__attribute__((target("avx2,avxvnni"))) static float int8_avxvnni(long n) {
    /* 32 u8 x s8 products summed into 8 int32 lanes per instruction (256-bit AVX-VNNI) */
    __m256i acc[CHAINS], x = _mm256_set1_epi8(1), y = _mm256_set1_epi8(1);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_epi32(i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], x, y);
    int out[8], sum = 0;
    for (int i = 1; i < CHAINS; i++) acc[0] = _mm256_add_epi32(acc[0], acc[i]);
    _mm256_storeu_si256((__m256i *)out, acc[0]);
    for (int i = 0; i < 8; i++) sum += out[i];
    return (float)sum;
}

typedef float (*kernel_fn)(long);

/* One run of `n` iterations on every OpenMP thread at once -> GFLOP/s. */
static double run_once(kernel_fn kernel, double macs_per_instruction, long n, double *seconds) {
    static volatile float sink = 0;
    float total = 0;
    int threads = 0;
    double start = now();
#pragma omp parallel reduction(+ : total, threads)
    {
        total += kernel(n);
        threads += 1;
    }
    *seconds = now() - start;
    sink += total;
    return 2.0 * macs_per_instruction * CHAINS * n * threads / *seconds / 1e9;
}

/* Iterations grown until a run lasts `min_seconds`, then the best of 3 runs -> GFLOP/s. */
static double rate(kernel_fn kernel, double macs_per_instruction, double min_seconds) {
    long n = 1 << 16;
    double seconds = 0, best = 0;
    run_once(kernel, macs_per_instruction, n, &seconds);
    while (seconds < min_seconds) {
        n *= seconds > 0 && min_seconds / seconds < 8 ? 2 : 8;
        run_once(kernel, macs_per_instruction, n, &seconds);
    }
    for (int run = 0; run < 3; run++) {
        double gflops = run_once(kernel, macs_per_instruction, n, &seconds);
        if (gflops > best) best = gflops;
    }
    return best;
}

static void report(const char *name, int supported, kernel_fn kernel, double macs,
                   double min_seconds) {
    if (supported)
        printf("%s %.1f ", name, rate(kernel, macs, min_seconds));
    else
        printf("%s none ", name);
}

int main(int argc, char **argv) {
    double min_seconds = argc > 1 ? atof(argv[1]) : 0.2;
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f");
    if (avx512)
        report("fp32", 1, fp32_avx512, 16, min_seconds);
    else
        report("fp32", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
               fp32_avx2, 8, min_seconds);
    report("bf16", avx512 && __builtin_cpu_supports("avx512bf16"), bf16_avx512, 32, min_seconds);
    if (avx512 && __builtin_cpu_supports("avx512vnni"))
        report("int8", 1, int8_avx512, 64, min_seconds);
    else
        report("int8", __builtin_cpu_supports("avxvnni"), int8_avxvnni, 32, min_seconds);
    printf("\n");
    return 0;
}
