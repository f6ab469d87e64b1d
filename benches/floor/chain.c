/*
 * The C floor for graph-building cost: a chain of N scalar adds on the default stream, made
 * with direct calls to mlx-c and nothing else.
 *
 *   reuse  one scalar array made once and added N times (the least a binding can do)
 *   fresh  a new scalar array for every add, as an operator `y + 1.0` does
 *
 * For every repetition it times the graph build alone (the N calls) and build + eval of the last
 * array, and prints one JSON line. The graph is freed after the clock stops. How to build it:
 * benches/floor/README.md.
 *
 * usage: chain [--n N] [--warmup W] [--reps R] [--variant reuse|fresh|both]
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlx/c/mlx.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char* what) {
  fprintf(stderr, "chain: %s\n", what);
  exit(1);
}

static void on_mlx_error(const char* msg, void* data) {
  (void)data;
  fprintf(stderr, "chain: MLX error: %s\n", msg);
  exit(1);
}

/* Parses a positive integer argument or exits with a message naming the flag. */
static long parse_count(const char* flag, const char* text, long min) {
  char* end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < min || v > 100000000L) {
    fprintf(stderr, "chain: %s wants an integer >= %ld, got '%s'\n", flag, min, text);
    exit(2);
  }
  return v;
}

enum variant { REUSE, FRESH };

static const char* variant_name(enum variant v) { return v == REUSE ? "reuse" : "fresh"; }

/* One chain: returns the build and build + eval times; checks the value after the clock. */
static void run_chain(enum variant v, long n, mlx_stream s, const mlx_array one, uint64_t* build_ns,
                      uint64_t* total_ns) {
  mlx_array y = mlx_array_new_float32(0.0f);
  if (mlx_array_eval(y) != 0) die("eval of the input failed");
  uint64_t t0 = now_ns();
  for (long i = 0; i < n; i++) {
    mlx_array next = mlx_array_new();
    if (v == REUSE) {
      if (mlx_add(&next, y, one, s) != 0) die("mlx_add failed");
    } else {
      mlx_array c = mlx_array_new_float32(1.0f);
      if (mlx_add(&next, y, c, s) != 0) die("mlx_add failed");
      mlx_array_free(c);
    }
    mlx_array_free(y);
    y = next;
  }
  uint64_t t1 = now_ns();
  if (mlx_array_eval(y) != 0) die("eval failed");
  uint64_t t2 = now_ns();
  float value = 0.0f;
  if (mlx_array_item_float32(&value, y) != 0) die("reading the result failed");
  if (value != (float)n) {
    fprintf(stderr, "chain: wrong result %g, expected %ld\n", (double)value, n);
    exit(1);
  }
  mlx_array_free(y);
  *build_ns = t1 - t0;
  *total_ns = t2 - t0;
}

int main(int argc, char** argv) {
  long n = 1000, warmup = 5, reps = 20;
  int variants[2] = {1, 1};
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      printf("usage: %s [--n N] [--warmup W] [--reps R] [--variant reuse|fresh|both]\n", argv[0]);
      return 0;
    }
    if (strcmp(a, "--n") != 0 && strcmp(a, "--warmup") != 0 && strcmp(a, "--reps") != 0 &&
        strcmp(a, "--variant") != 0) {
      fprintf(stderr, "chain: unknown argument '%s'; see --help\n", a);
      return 2;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "chain: %s needs a value; see --help\n", a);
      return 2;
    }
    const char* val = argv[++i];
    if (strcmp(a, "--n") == 0) {
      n = parse_count(a, val, 1);
    } else if (strcmp(a, "--warmup") == 0) {
      warmup = parse_count(a, val, 0);
    } else if (strcmp(a, "--reps") == 0) {
      reps = parse_count(a, val, 1);
    } else if (strcmp(a, "--variant") == 0) {
      if (strcmp(val, "reuse") == 0) {
        variants[0] = 1, variants[1] = 0;
      } else if (strcmp(val, "fresh") == 0) {
        variants[0] = 0, variants[1] = 1;
      } else if (strcmp(val, "both") == 0) {
        variants[0] = 1, variants[1] = 1;
      } else {
        fprintf(stderr, "chain: --variant wants reuse, fresh or both, got '%s'\n", val);
        return 2;
      }
    }
  }
  if (n > 16777216L) die("--n must be at most 2^24 (the float32 result must be exact)");

  mlx_set_error_handler(on_mlx_error, NULL, NULL);
  mlx_string version = mlx_string_new();
  if (mlx_version(&version) != 0) die("mlx_version failed");
  mlx_device dev = mlx_device_new();
  if (mlx_get_default_device(&dev) != 0) die("mlx_get_default_device failed");
  mlx_string dev_name = mlx_string_new();
  if (mlx_device_tostring(&dev_name, dev) != 0) die("mlx_device_tostring failed");
  mlx_stream s = mlx_stream_new();
  if (mlx_get_default_stream(&s, dev) != 0) die("mlx_get_default_stream failed");
  printf("{\"kind\":\"info\",\"lang\":\"c\",\"mlx_version\":\"%s\",\"device\":\"%s\",\"n\":%ld}\n",
         mlx_string_data(version), mlx_string_data(dev_name), n);
  fflush(stdout);

  mlx_array one = mlx_array_new_float32(1.0f);
  if (mlx_array_eval(one) != 0) die("eval of the scalar failed");
  uint64_t build = 0, total = 0;
  for (long w = 0; w < warmup; w++) {
    for (int v = 0; v < 2; v++) {
      if (variants[v]) run_chain((enum variant)v, n, s, one, &build, &total);
    }
  }
  for (long r = 0; r < reps; r++) {
    for (int v = 0; v < 2; v++) {
      if (!variants[v]) continue;
      run_chain((enum variant)v, n, s, one, &build, &total);
      printf("{\"kind\":\"sample\",\"lang\":\"c\",\"variant\":\"%s\",\"rep\":%ld,\"n\":%ld,"
             "\"build_ns\":%llu,\"build_eval_ns\":%llu}\n",
             variant_name((enum variant)v), r, n, (unsigned long long)build,
             (unsigned long long)total);
    }
  }
  fflush(stdout);
  mlx_array_free(one);
  mlx_stream_free(s);
  mlx_string_free(dev_name);
  mlx_device_free(dev);
  mlx_string_free(version);
  return 0;
}
