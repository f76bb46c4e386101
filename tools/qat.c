/* qat.c - the qat command: train, eval, info, plot. Each subcommand lives
 * in its own tools/qat_*.c file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qat_tool.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: qat COMMAND [options]   (qat COMMAND --help for its options)\n"
          "  train   train an MLP (fp32, PTQ, QAT), convert it to int8, save the model\n"
          "  eval    accuracy of a model file: fp32, int8, dynamic, agreement, confusion\n"
          "  info    layers, scales, sizes and metadata of a model file\n"
          "  plot    loss and accuracy per epoch from JSON-lines logs, as a PNG\n"
          "qat %s, kernel %s\n",
          QAT_VERSION, qat_kernel_name());
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (qat_kernel_check() != QAT_OK) { /* a bad QAT_KERNEL: say why, never SIGILL */
    fprintf(stderr, "qat: %s\n", qat_errmsg());
    return 2;
  }
  const char *c = argv[1];
  if (!strcmp(c, "train")) {
    /* OpenBLAS picks its kernels by CPU when the library loads; AVX-512
     * kernels round sums differently from AVX2 ones. Pinning its AVX2
     * (Haswell) kernels makes a seed give the same model on every x86-64
     * machine with AVX2, so re-run once with the choice in the environment.
     * (Set OPENBLAS_CORETYPE yourself to override.) */
    if (!getenv("OPENBLAS_CORETYPE") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma")) {
      setenv("OPENBLAS_CORETYPE", "Haswell", 1);
      execv("/proc/self/exe", argv);
      /* not fatal: train with whatever OpenBLAS chose */
    }
    return cmd_train(argc - 1, argv + 1);
  }
  if (!strcmp(c, "eval")) return cmd_eval(argc - 1, argv + 1);
  if (!strcmp(c, "info")) return cmd_info(argc - 1, argv + 1);
  if (!strcmp(c, "plot")) return cmd_plot(argc - 1, argv + 1);
  if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "qat: unknown command '%s'\n", c);
  usage(stderr);
  return 2;
}
