/* qat_tool.h - what the qat command's subcommands share: data loading from
 * command-line options, small parsing helpers, batch inference. */
#ifndef QAT_TOOL_H
#define QAT_TOOL_H

#include <stdio.h>

#include "qat.h"
#include "qat_train.h"

#define QAT_FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* Where the data comes from: --data NAME|DIR, or --train-csv/--test-csv. */
typedef struct tool_data_opts {
  const char *data;       /* "fashion-mnist" or a directory of IDX files */
  const char *train_csv, *test_csv;
  qat_csv_opts csv;
} tool_data_opts;

void tool_data_defaults(tool_data_opts *o);
/* Handles --data/--train-csv/--test-csv/--csv-label-col/--csv-divide at
 * argv[*i] (advancing *i past its value): 1 handled, 0 not ours, -1 error. */
int tool_data_arg(tool_data_opts *o, int argc, char **argv, int *i);
/* Loads the training and/or test set (either pointer may be NULL). */
int tool_data_load(const tool_data_opts *o, qat_dataset **train, qat_dataset **test);
const char *tool_data_name(const tool_data_opts *o);
extern const char *const tool_fashion_labels[10];
extern const char tool_data_help[];

/* Strict numbers: the whole string, in range; 0 on success. */
int tool_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out);
int tool_parse_float(const char *s, float *out);
/* The value after a flag, or NULL (with a message) when it is missing. */
const char *tool_value(int argc, char **argv, int *i);

/* Runs rows through a model path in chunks; out: argmax per row. */
typedef enum tool_path { TOOL_FP32, TOOL_INT8, TOOL_DYNAMIC } tool_path;
int tool_predict(const qat_model *m, tool_path p, const qat_dataset *d, uint32_t *argmax);

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_plot(int argc, char **argv);

#endif
