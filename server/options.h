/* options.h - qatserve's command-line options and environment variables as
 * one table: the single source for parsing, --help, and the flag tables in
 * README.md and docs/api.md (tools/gendocs.py inserts what
 * `qatserve --help-markdown=readme|api` prints; `make docs-check` fails when
 * a doc is stale). To add an option: add a row to the table in options.c
 * (and a field to qs_config); nothing else. */
#ifndef QS_OPTIONS_H
#define QS_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "base/config.h"

/* What main() does after parsing. */
typedef enum { QS_DO_SERVE, QS_DO_PROBE, QS_DO_EXIT } qs_action;

/* Fills *cfg with the defaults, then the environment, then argv (flags
 * override the environment). Returns 0 and *run; on a bad value or an
 * unknown flag prints a message (and the usage) on stderr and returns 2,
 * the exit status. --help/--version print and set *run = QS_DO_EXIT. */
int qs_options_parse(int argc, char **argv, qs_config *cfg, qs_action *run);

/* Whether the last qs_options_parse got FLAG (without "--") from the
 * command line or its environment variable. */
bool qs_options_given(const char *flag);

/* --help text. */
void qs_options_usage(FILE *f);

/* Markdown flag table for the docs: which = "readme" (short) or "api"
 * (full). Returns 0, or 2 for an unknown table name. */
int qs_options_markdown(FILE *f, const char *which);

#endif
