/* internal.h - helpers shared by libqat's files; never installed, never
 * included by server/ or tools/. */
#ifndef QAT_INTERNAL_H
#define QAT_INTERNAL_H

#include "qat.h"

#if defined(__GNUC__)
#define QAT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QAT_PRINTF(a, b)
/* SHA-256 (core/sha256.c): the model file's per-tensor checksums. The hex
 * form is 64 lowercase digits and a NUL, as Python's hexdigest() gives. */
void qat__sha256(const void *data, size_t n, uint8_t out[32]);
void qat__sha256_hex(const void *data, size_t n, char out[65]);

#endif

/* Allocation through the replaceable hook (qat_set_allocator). qat__calloc
 * checks n * size for overflow and zeroes. All return NULL on failure. */
void *qat__malloc(size_t n);
void *qat__calloc(size_t n, size_t size);
/* 64-byte aligned; free with qat__free_aligned. */
void *qat__malloc_aligned(size_t n);
void qat__free(void *p);
void qat__free_aligned(void *p);
char *qat__strdup(const char *s);

/* Records a detail message for code e on this thread and returns e, so
 * callers can write `return qat__fail(QAT_ESHAPE, "tensor %s ...", name);`. */
qat_err qat__fail(qat_err e, const char *fmt, ...) QAT_PRINTF(2, 3);

/* SHA-256 (core/sha256.c): the model file's per-tensor checksums. The hex
 * form is 64 lowercase digits and a NUL, as Python's hexdigest() gives. */
void qat__sha256(const void *data, size_t n, uint8_t out[32]);
void qat__sha256_hex(const void *data, size_t n, char out[65]);

#endif
