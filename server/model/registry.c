/* registry.c - loaded models by name, reference counts, directory sync.
 *
 * Locking: one rwlock guards the name -> model table; readers hold it only
 * to find a name and bump a reference count. Loading a file (the slow part)
 * happens outside the lock; the swap itself is a pointer store under the
 * write lock. The refused table remembers files that failed, so an
 * unchanged bad file is not retried (and re-counted) on every sync. */
#include "model/registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/config.h"
#include "base/jansson_alloc.h"
#include "base/log.h"
#include "base/metrics.h"

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static qs_model *table[QS_MAX_MODELS]; /* sorted by name, n entries */
static size_t n_models;
static _Atomic uint64_t next_version = 1;

typedef struct refused {
  char name[129];
  qs_filesig sig;
} refused;
static refused refused_tab[QS_MAX_MODELS];
static size_t n_refused;

void qs_registry_init(void) {}

bool qs_name_valid(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > 128 || name[0] == '.') return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return false;
  }
  return true;
}

/* The batcher's lock and condition (infer/batch.c uses them; the registry
 * only owns their lifetime, so it calls nothing above it). */
static void batch_state_init(qs_model *m) {
  pthread_mutex_init(&m->batch_lock, NULL);
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&m->batch_cond, &a);
  pthread_condattr_destroy(&a);
  m->batch_open = NULL;
}

static void model_free(qs_model *m) {
  for (int i = 0; i < m->npool; i++) qat_ctx_destroy(m->pool[i]);
  pthread_mutex_destroy(&m->pool_lock);
  pthread_cond_destroy(&m->batch_cond);
  pthread_mutex_destroy(&m->batch_lock);
  qat_model_destroy(m->model);
  free(m);
}

void qs_model_retain(qs_model *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }

void qs_model_release(qs_model *m) {
  if (!m) return;
  if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) model_free(m);
}

qat_ctx *qs_model_ctx_get(qs_model *m) {
  qat_ctx *c = NULL;
  pthread_mutex_lock(&m->pool_lock);
  if (m->npool > 0) c = m->pool[--m->npool];
  pthread_mutex_unlock(&m->pool_lock);
  if (c) return c;
  if (qat_ctx_create(m->model, QS_CTX_ROWS, &c) != QAT_OK) return NULL;
  return c;
}

void qs_model_ctx_put(qs_model *m, qat_ctx *c) {
  if (!c) return;
  pthread_mutex_lock(&m->pool_lock);
  if (m->npool < QS_CTX_POOL) {
    m->pool[m->npool++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&m->pool_lock);
  qat_ctx_destroy(c);
}

/* Binary search; caller holds the lock. */
static size_t find_index(const char *name, bool *found) {
  size_t lo = 0, hi = n_models;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(table[mid]->name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

qs_model *qs_registry_get(const char *name) {
  qs_model *m = NULL;
  bool found;
  pthread_rwlock_rdlock(&lock);
  size_t i = find_index(name, &found);
  if (found) {
    m = table[i];
    qs_model_retain(m);
  }
  pthread_rwlock_unlock(&lock);
  return m;
}

qs_model *qs_registry_get_only(size_t *count) {
  qs_model *m = NULL;
  pthread_rwlock_rdlock(&lock);
  *count = n_models;
  if (n_models == 1) {
    m = table[0];
    qs_model_retain(m);
  }
  pthread_rwlock_unlock(&lock);
  return m;
}

size_t qs_registry_count(void) {
  pthread_rwlock_rdlock(&lock);
  size_t n = n_models;
  pthread_rwlock_unlock(&lock);
  return n;
}

size_t qs_registry_list(qs_model **out, size_t cap) {
  pthread_rwlock_rdlock(&lock);
  size_t n = n_models < cap ? n_models : cap;
  for (size_t i = 0; i < n; i++) {
    out[i] = table[i];
    qs_model_retain(out[i]);
  }
  pthread_rwlock_unlock(&lock);
  return n;
}

/* Installs m under its name (taking over the caller's reference) and returns
 * the version it replaced (the registry's reference, for the caller to
 * release), or NULL. */
static qs_model *install(qs_model *m) {
  qs_model *old = NULL;
  bool found;
  pthread_rwlock_wrlock(&lock);
  size_t i = find_index(m->name, &found);
  if (found) {
    old = table[i];
    table[i] = m;
  } else if (n_models < QS_MAX_MODELS) {
    memmove(&table[i + 1], &table[i], (n_models - i) * sizeof *table);
    table[i] = m;
    n_models++;
    qs_metrics_models_loaded(n_models);
  } else {
    old = m; /* table full: refuse by handing it straight back */
  }
  pthread_rwlock_unlock(&lock);
  return old;
}

static qs_model *uninstall(const char *name) {
  qs_model *old = NULL;
  bool found;
  pthread_rwlock_wrlock(&lock);
  size_t i = find_index(name, &found);
  if (found) {
    old = table[i];
    memmove(&table[i], &table[i + 1], (n_models - i - 1) * sizeof *table);
    n_models--;
    qs_metrics_models_loaded(n_models);
  }
  pthread_rwlock_unlock(&lock);
  return old;
}

void qs_registry_shutdown(void) {
  pthread_rwlock_wrlock(&lock);
  size_t n = n_models;
  qs_model *all[QS_MAX_MODELS];
  memcpy(all, table, n * sizeof *table);
  n_models = 0;
  qs_metrics_models_loaded(0);
  pthread_rwlock_unlock(&lock);
  for (size_t i = 0; i < n; i++) qs_model_release(all[i]);
  n_refused = 0;
}

static bool sig_equal(const qs_filesig *a, const qs_filesig *b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static qs_filesig sig_of(const struct stat *st) {
  qs_filesig s = {st->st_dev, st->st_ino, st->st_size, st->st_mtim};
  return s;
}

qat_err qs_model_load_file(const char *dir, const char *file, const char *name,
                           qs_model **out) {
  char path[PATH_MAX];
  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path) {
    qs_log("model %s: path too long", name);
    return QAT_EINVAL;
  }
  uint64_t t0 = qs_now_ns();
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    qs_log("model %s: cannot open %s: %s", name, path, strerror(errno));
    return QAT_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    qs_log("model %s: %s is not a regular file", name, path);
    return QAT_EIO;
  }
  if ((uint64_t)st.st_size > QS_MAX_MODEL_FILE) {
    close(fd);
    qs_log("model %s: %s is larger than %lu bytes", name, path, QS_MAX_MODEL_FILE);
    return QAT_ERANGE;
  }
  size_t size = (size_t)st.st_size;
  unsigned char *buf = malloc(size ? size : 1);
  if (!buf) {
    close(fd);
    return QAT_ENOMEM;
  }
  /* Read what fstat promised; a file that shrinks underneath us (being
   * rewritten in place) is refused as truncated and retried on the next
   * change event. */
  size_t got = 0;
  while (got < size) {
    ssize_t k = read(fd, buf + got, size - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += (size_t)k;
  }
  close(fd);
  if (got != size) {
    free(buf);
    qs_log("model %s: short read of %s (%zu of %zu bytes)", name, path, got, size);
    return QAT_ETRUNC;
  }
  qat_model *qm = NULL;
  qs_json_alloc_failed();
  qat_err e = qat_model_load_mem(buf, size, &qm);
  if (e != QAT_OK && qs_json_alloc_failed()) e = QAT_ENOMEM; /* not the file's fault */
  uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
  size_t off = 0;
  while (e == QAT_OK && off < size) {
    uInt chunk = size - off > (1u << 30) ? (1u << 30) : (uInt)(size - off);
    crc = (uint32_t)crc32(crc, buf + off, chunk);
    off += chunk;
  }
  free(buf);
  if (e != QAT_OK) {
    qs_log("model %s: refused %s: %s (%s)", name, path, qat_errmsg(), qat_err_name(e));
    return e;
  }
  qs_model *m = calloc(1, sizeof *m);
  if (!m) {
    qat_model_destroy(qm);
    return QAT_ENOMEM;
  }
  atomic_init(&m->refs, 1);
  snprintf(m->name, sizeof m->name, "%s", name);
  snprintf(m->file, sizeof m->file, "%s", file);
  m->model = qm;
  m->version = atomic_fetch_add(&next_version, 1);
  m->sig = sig_of(&st);
  m->file_size = (uint64_t)size;
  m->crc32 = crc;
  m->loaded_at = time(NULL);
  m->load_ms = (double)(qs_now_ns() - t0) * 1e-6;
  m->metrics_slot = qs_metrics_slot(name);
  pthread_mutex_init(&m->pool_lock, NULL);
  batch_state_init(m);
  *out = m;
  return QAT_OK;
}

static const char SUFFIX[] = ".safetensors";

/* Names seen in one sync pass. */
typedef struct seen_set {
  char names[QS_MAX_MODELS][129];
  size_t n;
} seen_set;

static bool refused_unchanged(const char *name, const qs_filesig *sig) {
  for (size_t i = 0; i < n_refused; i++)
    if (strcmp(refused_tab[i].name, name) == 0) return sig_equal(&refused_tab[i].sig, sig);
  return false;
}

static void refused_set(const char *name, const qs_filesig *sig) {
  for (size_t i = 0; i < n_refused; i++)
    if (strcmp(refused_tab[i].name, name) == 0) {
      refused_tab[i].sig = *sig;
      return;
    }
  if (n_refused < QS_MAX_MODELS) {
    snprintf(refused_tab[n_refused].name, sizeof refused_tab[n_refused].name, "%s", name);
    refused_tab[n_refused++].sig = *sig;
  }
}

static void refused_clear(const char *name) {
  for (size_t i = 0; i < n_refused; i++)
    if (strcmp(refused_tab[i].name, name) == 0) {
      refused_tab[i] = refused_tab[--n_refused];
      return;
    }
}

static void sync_one(const char *dir, const char *file, const char *name,
                     const struct stat *st) {
  qs_filesig sig = sig_of(st);
  qs_model *cur = qs_registry_get(name);
  bool unchanged = cur && sig_equal(&cur->sig, &sig);
  unsigned long long cur_version = cur ? (unsigned long long)cur->version : 0;
  qs_model_release(cur);
  if (unchanged || refused_unchanged(name, &sig)) return;
  qs_model *m = NULL;
  qat_err e = qs_model_load_file(dir, file, name, &m);
  if (e != QAT_OK) {
    qs_metrics_model_refusal();
    /* A bad file is not retried until it changes; running out of memory
     * says nothing about the file, so the next sync tries it again. */
    if (e != QAT_ENOMEM) refused_set(name, &sig);
    if (cur_version) qs_log("model %s: keeps serving version %llu", name, cur_version);
    return;
  }
  refused_clear(name);
  uint64_t version = m->version;
  uint32_t in = qat_model_in_dim(m->model), out = qat_model_out_dim(m->model);
  qs_model *old = install(m);
  if (old == m) {
    qs_log("model %s: refused: more than %d models", name, QS_MAX_MODELS);
    qs_metrics_model_refusal();
    qs_model_release(m);
    return;
  }
  if (old) {
    qs_metrics_model_reload();
    qs_log("model %s: reloaded %s (version %llu -> %llu, %u -> %u)", name, file,
           (unsigned long long)old->version, (unsigned long long)version, in, out);
    qs_model_release(old);
  } else {
    qs_metrics_model_load();
    qs_log("model %s: loaded %s (version %llu, %u -> %u)", name, file,
           (unsigned long long)version, in, out);
  }
}

int qs_registry_sync(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    qs_log("models: cannot read directory %s: %s (keeping %zu models)", dir, strerror(errno),
           qs_registry_count());
    return -1;
  }
  static seen_set seen; /* only the control thread syncs */
  seen.n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (len <= sizeof SUFFIX - 1 || strcmp(de->d_name + len - (sizeof SUFFIX - 1), SUFFIX) != 0)
      continue;
    if (de->d_name[0] == '.') continue; /* editors' and our own temp files */
    char name[129];
    size_t nl = len - (sizeof SUFFIX - 1);
    if (nl >= sizeof name) {
      qs_log("models: ignoring %s: name longer than 128 characters", de->d_name);
      continue;
    }
    memcpy(name, de->d_name, nl);
    name[nl] = '\0';
    if (!qs_name_valid(name)) {
      qs_log("models: ignoring %s: model names use only A-Z a-z 0-9 . _ -", de->d_name);
      continue;
    }
    char path[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path ||
        stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (seen.n < QS_MAX_MODELS) snprintf(seen.names[seen.n++], 129, "%s", name);
    sync_one(dir, de->d_name, name, &st);
  }
  closedir(d);
  /* Unload names whose file is gone. */
  qs_model *all[QS_MAX_MODELS];
  size_t n = qs_registry_list(all, QS_MAX_MODELS);
  for (size_t i = 0; i < n; i++) {
    bool present = false;
    for (size_t j = 0; j < seen.n && !present; j++) present = strcmp(seen.names[j], all[i]->name) == 0;
    if (!present) {
      qs_model *old = uninstall(all[i]->name);
      if (old) {
        qs_log("model %s: unloaded (file removed)", old->name);
        qs_metrics_model_unload();
        qs_model_release(old);
      }
      refused_clear(all[i]->name);
    }
    qs_model_release(all[i]);
  }
  for (size_t i = 0; i < n_refused;) {
    bool present = false;
    for (size_t j = 0; j < seen.n && !present; j++) present = strcmp(seen.names[j], refused_tab[i].name) == 0;
    if (!present)
      refused_tab[i] = refused_tab[--n_refused];
    else
      i++;
  }
  return (int)qs_registry_count();
}
