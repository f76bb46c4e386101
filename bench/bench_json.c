/* bench_json.c - the request number scanner and the reply float printer,
 * nanoseconds per number, against strtof / snprintf("%.9g") as peers, side
 * by side in one run: median of interleaved repeats, this thread's CPU time.
 *
 *   build/bench_json [--out DIR] [--quick]      (make bench-json)
 *
 * Parsing: a 64-row x 784-number body through qs_json_parse_matrix (what
 * /predict runs), for three number shapes: 5 digits ("0.12345", pixel
 * values), 17 significant digits ("0.30196078431372547": how Python's
 * json.dumps writes a numpy float), and short floats as the server itself
 * prints them. The peer parses the same tokens with strtof (no grammar
 * check, so it is a floor the scanner must beat, not a like-for-like).
 * Printing: qs_buf_float_array over the same floats vs snprintf "%.9g".
 * Writes DIR/json.txt (default build/bench). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "bench_util.h"

#define ROWS 64
#define COLS 784
#define NUMS (ROWS * COLS)

static int repeats = 15;
static double min_ms = 20.0;
static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}

typedef struct body {
  const char *name;
  char *text;
  size_t len;
  size_t tok_off[NUMS]; /* where each number starts, for the strtof peer */
} body;

/* One body of ROWS rows; fmt writes number i into buf. */
static void make_body(body *b, const char *name, int shape) {
  size_t cap = (size_t)NUMS * 32 + 16, n = 0;
  b->name = name;
  b->text = malloc(cap);
  if (!b->text) abort();
  b->text[n++] = '[';
  for (int r = 0; r < ROWS; r++) {
    if (r) b->text[n++] = ',';
    b->text[n++] = '[';
    for (int c = 0; c < COLS; c++) {
      if (c) {
        b->text[n++] = ',';
        b->text[n++] = ' ';
      }
      b->tok_off[r * COLS + c] = n;
      uint64_t x = rng();
      int k;
      if (shape == 0) {
        k = snprintf(b->text + n, 32, "0.%05u", (unsigned)(x % 100000));
      } else if (shape == 1) {
        /* a double in [0.1, 1) with 17 significant digits, as repr writes it */
        double d = 0.1 + 0.9 * (double)(x >> 11) / (double)(1ull << 53);
        k = snprintf(b->text + n, 32, "%.17g", d);
      } else {
        float f = (float)((double)(x >> 11) / (double)(1ull << 53));
        qs_buf tmp;
        qs_buf_init(&tmp, 32, 64);
        qs_buf_float(&tmp, f);
        k = (int)tmp.len;
        memcpy(b->text + n, tmp.data, tmp.len);
        qs_buf_free(&tmp);
      }
      n += (size_t)k;
    }
    b->text[n++] = ']';
  }
  b->text[n++] = ']';
  b->text[n] = '\0';
  b->len = n;
}

static float xs[NUMS];
static volatile float sink;

static double run_parse(const body *b) {
  size_t rows, cols, errpos;
  if (qs_json_parse_matrix(b->text, b->len, COLS, ROWS, xs, NUMS, &rows, &cols, &errpos) != QS_JOK)
    abort();
  sink = xs[NUMS - 1];
  return NUMS;
}

static double run_strtof(const body *b) {
  float acc = 0;
  for (size_t i = 0; i < NUMS; i++) acc += strtof(b->text + b->tok_off[i], NULL);
  sink = acc;
  return NUMS;
}

static qs_buf pb;
static double run_print(const body *b) {
  (void)b;
  pb.len = 0;
  qs_buf_float_array(&pb, xs, NUMS);
  if (pb.failed) abort();
  return NUMS;
}

static char sbuf[NUMS * 20];
static double run_snprintf(const body *b) {
  (void)b;
  size_t n = 0;
  for (size_t i = 0; i < NUMS; i++) {
    n += (size_t)snprintf(sbuf + n, 20, "%.9g", (double)xs[i]);
    sbuf[n++] = ',';
  }
  sink = (float)n;
  return NUMS;
}

typedef double (*fn)(const body *);

/* ns per number of each contender: median of `repeats` rounds, each round
 * running every contender for >= min_ms in turn. */
static void measure(const body *b, fn *f, int nf, double *ns) {
  double med[8][64];
  for (int r = 0; r < repeats; r++) {
    for (int i = 0; i < nf; i++) {
      double items = 0, t0 = bench_now_s(), t;
      do {
        items += f[i](b);
        t = bench_now_s();
      } while (t - t0 < min_ms * 1e-3);
      med[i][r] = (t - t0) * 1e9 / items;
    }
  }
  for (int i = 0; i < nf; i++) {
    for (int a = 1; a < repeats; a++)
      for (int c = a; c > 0 && med[i][c] < med[i][c - 1]; c--) {
        double t = med[i][c];
        med[i][c] = med[i][c - 1];
        med[i][c - 1] = t;
      }
    ns[i] = med[i][repeats / 2];
  }
}

int main(int argc, char **argv) {
  const char *dir = "build/bench";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--out") && i + 1 < argc) {
      dir = argv[++i];
    } else if (!strcmp(argv[i], "--quick")) {
      repeats = 5;
      min_ms = 5;
    } else {
      fprintf(stderr, "usage: bench_json [--out DIR] [--quick]\n");
      return 2;
    }
  }
  char path[512];
  bench_report_open(dir, "json.txt", path, sizeof path);
  qs_buf_init(&pb, 1 << 20, 1 << 26);
  static body bodies[3];
  make_body(&bodies[0], "5 digits (0.12345)", 0);
  make_body(&bodies[1], "17 digits (0.30196078431372547)", 1);
  make_body(&bodies[2], "shortest floats (server output)", 2);
  bench_out("# bench_json: ns per number, %d x %d body, median of %d interleaved repeats of >= %.0f ms;\n"
      "# clock: this thread's CPU time (CLOCK_THREAD_CPUTIME_ID)\n",
      ROWS, COLS, repeats, min_ms);
  bench_out("%-34s %12s %12s %8s %12s %12s %8s\n", "numbers", "parse ns", "strtof ns", "ratio", "print ns",
      "%.9g ns", "ratio");
  for (int i = 0; i < 3; i++) {
    fn f[4] = {run_parse, run_strtof, run_print, run_snprintf};
    double ns[4];
    run_parse(&bodies[i]); /* xs holds this body's floats for the printers */
    measure(&bodies[i], f, 4, ns);
    bench_out("%-34s %12.2f %12.2f %8.2f %12.2f %12.2f %8.2f\n", bodies[i].name, ns[0], ns[1],
        ns[1] / ns[0], ns[2], ns[3], ns[3] / ns[2]);
  }
  bench_out("# ratio = peer / ours (above 1: ours is faster)\n");
  bench_report_close();
  printf("wrote %s\n", path);
  for (int i = 0; i < 3; i++) free(bodies[i].text);
  qs_buf_free(&pb);
  return 0;
}
