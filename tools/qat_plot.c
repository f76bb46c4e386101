/* qat_plot.c - `qat plot LOG.jsonl [LOG2.jsonl ...] --out X.png`: loss and
 * validation accuracy per epoch, one line per log (e.g. fp32 against QAT),
 * QAT epochs marked, drawn by gnuplot (Debian gnuplot-nox, png terminal). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qat_tool.h"

static void help(FILE *f) {
  fprintf(f, "usage: qat plot LOG.jsonl [LOG2.jsonl ...] --out PLOT.png [--title T]\n"
             "Plots training and validation loss and validation accuracy per epoch from\n"
             "the --log files of qat train (QAT epochs drawn with filled points).\n");
}

/* Writes "epoch loss val_loss val_acc is_qat" rows for one log. */
static int convert(const char *in, FILE *out, long long *max_epoch) {
  FILE *f = fopen(in, "r");
  if (!f) {
    perror(in);
    return -1;
  }
  char line[4096];
  int n = 0, lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    json_error_t err;
    json_t *j = json_loads(line, 0, &err);
    if (!j || !json_is_object(j)) {
      fprintf(stderr, "qat plot: %s:%d: %s\n", in, lineno, j ? "not an object" : err.text);
      json_decref(j);
      fclose(f);
      return -1;
    }
    json_t *ep = json_object_get(j, "epoch");
    if (!json_is_integer(ep)) {
      json_decref(j);
      continue;
    }
    const char *keys[3] = {"loss", "val_loss", "val_acc"};
    long long e = (long long)json_integer_value(ep);
    if (e > *max_epoch) *max_epoch = e;
    fprintf(out, "%lld", e);
    for (int k = 0; k < 3; k++) {
      json_t *v = json_object_get(j, keys[k]);
      if (json_is_number(v)) fprintf(out, " %.6g", json_number_value(v));
      else fprintf(out, " NaN");
    }
    const char *ph = json_string_value(json_object_get(j, "phase"));
    fprintf(out, " %d\n", ph && !strcmp(ph, "qat"));
    json_decref(j);
    n++;
  }
  fclose(f);
  if (!n) {
    fprintf(stderr, "qat plot: %s: no epochs\n", in);
    return -1;
  }
  fprintf(out, "\n\n"); /* gnuplot data set separator */
  return 0;
}

static void put_quoted(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

int cmd_plot(int argc, char **argv) {
  const char *out = NULL, *title = "qat train";
  const char *logs[32];
  int nlogs = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      help(stdout);
      return 0;
    }
    if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--title")) {
      const char *v = tool_value(argc, argv, &i);
      if (!v) return 2;
      *(argv[i - 1][2] == 'o' ? &out : &title) = v;
    } else if (argv[i][0] != '-' && nlogs < 32) {
      logs[nlogs++] = argv[i];
    } else {
      fprintf(stderr, "qat plot: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (!out || !nlogs) {
    help(stderr);
    return 2;
  }
  char dir[] = "/tmp/qat_plot_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  char data[64], script[64];
  snprintf(data, sizeof data, "%s/data", dir);
  snprintf(script, sizeof script, "%s/plot.gp", dir);
  int rc = 1;
  FILE *d = fopen(data, "w"), *s = fopen(script, "w");
  if (!d || !s) {
    perror(dir);
    goto out;
  }
  long long max_epoch = 1;
  for (int k = 0; k < nlogs; k++)
    if (convert(logs[k], d, &max_epoch)) goto out;
  fclose(d);
  d = NULL;
  fprintf(s, "set terminal pngcairo size 1200,500 noenhanced\nset output ");
  put_quoted(s, out);
  fprintf(s, "\nset multiplot layout 1,2 title ");
  put_quoted(s, title);
  fprintf(s, "\nset xtics %lld\n", max_epoch > 10 ? (max_epoch + 9) / 10 : 1);
  fprintf(s, "set grid\nset key top right\nset xlabel 'epoch'\nset ylabel 'loss'\n"
             "set title 'loss (train solid, validation dashed)'\nplot ");
  for (int k = 0; k < nlogs; k++) {
    fprintf(s, "%s'%s' index %d using 1:2 with lines lw 2 lc %d title ", k ? ", " : "", data, k,
            k + 1);
    put_quoted(s, logs[k]);
    fprintf(s, ", '' index %d using 1:3 with lines dt 2 lc %d notitle", k, k + 1);
  }
  fprintf(s, "\nset key bottom right\nset ylabel 'accuracy'\n"
             "set title 'validation accuracy (filled points: QAT epochs)'\nplot ");
  for (int k = 0; k < nlogs; k++) {
    fprintf(s, "%s'%s' index %d using 1:4 with lines lw 2 lc %d title ", k ? ", " : "", data, k,
            k + 1);
    put_quoted(s, logs[k]);
    fprintf(s, ", '' index %d using 1:($5 > 0 ? $4 : 1/0) with points pt 7 lc %d notitle", k,
            k + 1);
  }
  fprintf(s, "\nunset multiplot\n");
  fclose(s);
  s = NULL;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "gnuplot '%s'", script);
  int st = system(cmd);
  if (st != 0) fprintf(stderr, "qat plot: gnuplot failed (status %d); is gnuplot installed?\n", st);
  else {
    printf("wrote %s\n", out);
    rc = 0;
  }
out:
  if (d) fclose(d);
  if (s) fclose(s);
  unlink(data);
  unlink(script);
  rmdir(dir);
  return rc;
}
