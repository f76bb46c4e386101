/* registry.h - the loaded models, by name, reference-counted.
 *
 * A qs_model is one loaded version of one file. The registry holds one
 * reference to the current version of each name; every request takes its own
 * (qs_registry_get) and drops it when done (qs_model_release). A reload
 * swaps the registry's pointer under the lock and drops the registry's
 * reference to the old version, which is freed when its last request ends:
 * in-flight requests finish on the version they started with.
 *
 * Only one thread changes the registry (start-up, then the control loop);
 * any number read it. */
#ifndef QS_REGISTRY_H
#define QS_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "qat.h"

#define QS_MAX_MODELS 256
#define QS_CTX_POOL 64
#define QS_CTX_ROWS 64 /* rows per qat_ctx chunk */
#define QS_MAX_MODEL_FILE (1024UL * 1024 * 1024)
#define QS_MAX_DIR_FILES 4096 /* *.safetensors files one sync considers */

/* What identifies a file's content without reading it again. */
typedef struct qs_filesig {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
} qs_filesig;

typedef struct qs_model {
  atomic_int refs;
  char name[129];
  char file[300];          /* file name inside the models directory */
  qat_model *model;        /* owned */
  uint64_t version;        /* process-wide load counter, unique per load */
  qs_filesig sig;
  uint64_t file_size;
  uint32_t crc32;          /* zlib crc32 of the file's bytes as loaded */
  time_t loaded_at;        /* wall clock */
  double load_ms;
  int metrics_slot;
  /* Per-model pool of inference contexts: each worker borrows one for one
   * request, so no two threads share scratch and nothing is allocated once
   * the pool is warm. */
  pthread_mutex_t pool_lock;
  qat_ctx *pool[QS_CTX_POOL];
  int npool;
} qs_model;

/* Checks a model name: 1..128 of [A-Za-z0-9._-], no leading dot. */
bool qs_name_valid(const char *name);

void qs_registry_init(void);
/* Unloads everything (drops the registry's references). */
void qs_registry_shutdown(void);

/* A new reference to the model called name, or NULL. */
qs_model *qs_registry_get(const char *name);
/* The only model when exactly one is loaded (new reference), else NULL with
 * *count set to the number loaded. */
qs_model *qs_registry_get_only(size_t *count);
size_t qs_registry_count(void);
/* Up to cap models sorted by name, each a new reference. */
size_t qs_registry_list(qs_model **out, size_t cap);
void qs_model_retain(qs_model *m);
void qs_model_release(qs_model *m);

/* A context for m (from the pool or new); NULL on OOM. */
qat_ctx *qs_model_ctx_get(qs_model *m);
void qs_model_ctx_put(qs_model *m, qat_ctx *c);

/* Brings the registry in line with the directory: loads new files, reloads
 * changed ones (by device, inode, size, mtime), unloads names whose file is
 * gone; a file that fails to load is refused (logged, counted) and any
 * version already serving stays. Files are taken in name order; once
 * QS_MAX_MODELS are loaded, further new files are refused for the cap
 * (logged once per file, without being read) until a slot frees up. An unreadable directory changes nothing.
 * Returns the number of models loaded afterwards, or -1 if the directory
 * could not be read. */
int qs_registry_sync(const char *dir);
/* Set at shutdown: a running sync stops between files. */
extern atomic_bool qs_registry_stop;

/* Loads one file into a new qs_model (not registered). Exposed for tests. */
qat_err qs_model_load_file(const char *dir, const char *file, const char *name,
                           qs_model **out);

#endif
