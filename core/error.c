/* error.c - the error table and the per-thread detail message. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static const char *const err_names[] = {
#define QAT_ERR_NAME(name, msg) "QAT_" #name,
    QAT_ERR_MAP(QAT_ERR_NAME)
#undef QAT_ERR_NAME
};
static const char *const err_msgs[] = {
#define QAT_ERR_MSG(name, msg) msg,
    QAT_ERR_MAP(QAT_ERR_MSG)
#undef QAT_ERR_MSG
};

/* Thread-local so concurrent loads in the server never mix their messages. */
static _Thread_local char last_msg[512];

const char *qat_err_name(qat_err e) {
  return (unsigned)e < QAT_ERR_COUNT ? err_names[e] : "QAT_E?";
}

const char *qat_err_str(qat_err e) {
  return (unsigned)e < QAT_ERR_COUNT ? err_msgs[e] : "unknown error";
}

const char *qat_errmsg(void) { return last_msg; }

qat_err qat__fail(qat_err e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_msg, sizeof last_msg, fmt, ap);
  va_end(ap);
  return e;
}
