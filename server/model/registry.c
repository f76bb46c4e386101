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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/config.h"
#include "base/jansson_alloc.h"
#include "base/log.h"
#include "base/metrics.h"

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static qs_model *table[QS_MAX_MODELS]; /* sorted by name, n entries */
static size_t n_models;

/* Files that failed (or found the model cap reached), remembered by name and
 * signature so an unchanged file is neither retried nor re-logged on every
 * directory event. Grows on demand up to QS_MAX_DIR_FILES entries. */
typedef struct refused {
  char name[129];
  qs_filesig sig;
  bool cap; /* refused only because QS_MAX_MODELS were loaded */
} refused;
static refused *refused_tab;
static size_t n_refused, cap_refused;


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

static void model_free(qs_model *m) {
  for (int i = 0; i < m->npool; i++) qat_ctx_destroy(m->pool[i]);
  pthread_mutex_destroy(&m->pool_lock);
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
  free(refused_tab);
  refused_tab = NULL;
  cap_refused = 0;
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
  /* The loader opens without blocking, checks the open descriptor (regular
   * file, size cap), and reads the data only after the header holds up. */
  qat_model *qm = NULL;
  qat_file_info fi;
  qs_json_alloc_failed();
  qat_err e = qat_model_load_file(path, &qm, &fi);
  if (e != QAT_OK && qs_json_alloc_failed()) e = QAT_ENOMEM; /* not the file's fault */
  if (e != QAT_OK) {
    qs_log("model %s: refused: %s (%s)", name, qat_errmsg(), qat_err_name(e));
    return e;
  }
  if (!qat_model_checksummed(qm))
    qs_log("model %s: warning: %s has no tensor checksums (format 1); corruption in its "
           "data cannot be detected (re-save it with qat or torch2qat)", name, file);
  struct stat st;
  memset(&st, 0, sizeof st);
  st.st_dev = (dev_t)fi.dev;
  st.st_ino = (ino_t)fi.ino;
  st.st_size = (off_t)fi.size;
  st.st_mtim.tv_sec = (time_t)fi.mtime_sec;
  st.st_mtim.tv_nsec = (long)fi.mtime_nsec;
  size_t size = (size_t)fi.size;
  uint32_t crc = fi.crc32;
  qs_model *m = calloc(1, sizeof *m);
  if (!m) {
    qat_model_destroy(qm);
    return QAT_ENOMEM;
  }
  atomic_init(&m->refs, 1);
  snprintf(m->name, sizeof m->name, "%s", name);
  snprintf(m->file, sizeof m->file, "%s", file);
  m->model = qm;
  m->version = 1; /* sync_one numbers it per name */
  m->sig = sig_of(&st);
  m->file_size = (uint64_t)size;
  m->crc32 = crc;
  m->loaded_at = time(NULL);
  m->load_ms = (double)(qs_now_ns() - t0) * 1e-6;
  m->metrics_slot = qs_metrics_slot(name);
  pthread_mutex_init(&m->pool_lock, NULL);
  *out = m;
  return QAT_OK;
}

static const char SUFFIX[] = ".safetensors";


/* The previous pass's ignored file names (bad names), so each is logged
 * once, not on every event. */
static char (*ignored_prev)[256], (*ignored_cur)[256];
static size_t n_ignored_prev, n_ignored_cur;

atomic_bool qs_registry_stop;

static refused *refused_find(const char *name) {
  for (size_t i = 0; i < n_refused; i++)
    if (strcmp(refused_tab[i].name, name) == 0) return &refused_tab[i];
  return NULL;
}

static void refused_set(const char *name, const qs_filesig *sig, bool cap) {
  refused *r = refused_find(name);
  if (!r) {
    if (n_refused == cap_refused) {
      size_t nc = cap_refused ? cap_refused * 2 : 64;
      refused *t = nc <= QS_MAX_DIR_FILES ? realloc(refused_tab, nc * sizeof *t) : NULL;
      if (!t) return; /* then it is retried next time; nothing is lost */
      refused_tab = t;
      cap_refused = nc;
    }
    r = &refused_tab[n_refused++];
    snprintf(r->name, sizeof r->name, "%s", name);
  }
  r->sig = *sig;
  r->cap = cap;
}

static void refused_clear(const char *name) {
  refused *r = refused_find(name);
  if (r) *r = refused_tab[--n_refused];
}

static void sync_one(const char *dir, const char *file, const char *name,
                     const struct stat *st) {
  qs_filesig sig = sig_of(st);
  qs_model *cur = qs_registry_get(name);
  bool unchanged = cur && sig_equal(&cur->sig, &sig);
  unsigned long long cur_version = cur ? (unsigned long long)cur->version : 0;
  qs_model_release(cur);
  if (unchanged) return;
  refused *r = refused_find(name);
  bool full = qs_registry_count() >= QS_MAX_MODELS;
  /* An unchanged bad file stays refused; a file refused for the cap waits
   * while the registry is full. */
  if (r && sig_equal(&r->sig, &sig) && (!r->cap || full)) return;
  if (!cur_version && full) {
    /* Decided before loading: the cap costs no file read, and files load in
     * name order, so which ones serve does not depend on event timing. */
    qs_log("model %s: not loaded: %d models are loaded (the cap; files load in name "
           "order)", name, QS_MAX_MODELS);
    qs_metrics_model_refusal();
    refused_set(name, &sig, true);
    return;
  }
  qs_model *m = NULL;
  qat_err e = qs_model_load_file(dir, file, name, &m);
  if (e != QAT_OK) {
    qs_metrics_model_refusal();
    /* A bad file is not retried until it changes; running out of memory
     * says nothing about the file, so the next sync tries it again. */
    if (e != QAT_ENOMEM) refused_set(name, &sig, false);
    if (cur_version) qs_log("model %s: keeps serving version %llu", name, cur_version);
    return;
  }
  refused_clear(name);
  /* Versions count per name (docs/api.md): 1 on first load, one more on
   * each reload; refused files use no number. Only the control thread
   * syncs, and m is not yet visible to requests. */
  m->version = (uint64_t)cur_version + 1;
  uint64_t version = m->version;
  uint32_t in = qat_model_in_dim(m->model), out = qat_model_out_dim(m->model);
  qs_model *old = install(m);
  if (old == m) { /* only the control thread installs: cannot happen */
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

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ignore(const char *file, const char *why) {
  bool known = false;
  for (size_t i = 0; i < n_ignored_prev && !known; i++)
    known = strncmp(ignored_prev[i], file, 255) == 0;
  if (!known) qs_log("models: ignoring %s: %s", file, why);
  if (!ignored_cur) ignored_cur = calloc(QS_MAX_DIR_FILES, sizeof *ignored_cur);
  if (ignored_cur && n_ignored_cur < QS_MAX_DIR_FILES)
    snprintf(ignored_cur[n_ignored_cur++], 256, "%s", file);
}

/* Model name of a directory entry, or false (logged once) when the entry is
 * not a model file or its name is not a valid model name. */
static bool model_name(const char *file, char name[129]) {
  size_t len = strlen(file);
  if (len <= sizeof SUFFIX - 1 || strcmp(file + len - (sizeof SUFFIX - 1), SUFFIX) != 0)
    return false;
  if (file[0] == '.') return false; /* editors' and our own temp files */
  size_t nl = len - (sizeof SUFFIX - 1);
  if (nl >= 129) {
    ignore(file, "name longer than 128 characters");
    return false;
  }
  memcpy(name, file, nl);
  name[nl] = '\0';
  if (!qs_name_valid(name)) {
    ignore(file, "model names use only A-Z a-z 0-9 . _ -");
    return false;
  }
  return true;
}

/* Every model file of dir (names only), unsorted. Returns 0, or -1 when the
 * directory cannot be read (logged); *oom when memory ran out (the list is
 * then partial), *too_many when the QS_MAX_DIR_FILES cap cut it. */
static int list_files(const char *dir, char ***out, size_t *out_n, bool *too_many, bool *oom) {
  DIR *d = opendir(dir);
  if (!d) {
    qs_log("models: cannot read directory %s: %s (keeping %zu models)", dir, strerror(errno),
           qs_registry_count());
    return -1;
  }
  char **files = NULL;
  size_t nf = 0, capf = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    char name[129];
    if (!model_name(de->d_name, name)) continue;
    if (nf == QS_MAX_DIR_FILES) {
      *too_many = true;
      break;
    }
    if (nf == capf) {
      size_t nc = capf ? capf * 2 : 64;
      char **t = realloc(files, nc * sizeof *t);
      if (!t) {
        *oom = true;
        break;
      }
      files = t;
      capf = nc;
    }
    size_t fl = strlen(de->d_name) + 1;
    if (!(files[nf] = malloc(fl))) { /* malloc, not strdup: the tests count malloc */
      *oom = true;
      break;
    }
    memcpy(files[nf], de->d_name, fl);
    nf++;
  }
  closedir(d);
  *out = files;
  *out_n = nf;
  return 0;
}

static void free_files(char **files, size_t nf) {
  for (size_t i = 0; i < nf; i++) free(files[i]);
  free(files);
}

/* Whether NAME's file is in the sorted listing. */
static bool file_listed(const char *name, char **files, size_t nf) {
  char key[sizeof SUFFIX + 129];
  snprintf(key, sizeof key, "%s%s", name, SUFFIX);
  const char *k = key;
  return nf && bsearch(&k, files, nf, sizeof *files, cmp_str);
}

/* Unloads names whose file is gone (so their slots are free for the files
 * that load next) and forgets refusals of files that are gone. all has room
 * for QS_MAX_MODELS. */
static void drop_gone(qs_model **all, char **files, size_t nf) {
  size_t n = qs_registry_list(all, QS_MAX_MODELS);
  for (size_t i = 0; i < n; i++) {
    if (!file_listed(all[i]->name, files, nf)) {
      qs_model *old = uninstall(all[i]->name);
      if (old) {
        qs_log("model %s: unloaded (file removed)", old->name);
        qs_metrics_model_unload();
        qs_model_release(old);
      }
    }
    qs_model_release(all[i]);
  }
  for (size_t i = 0; i < n_refused;) {
    if (!file_listed(refused_tab[i].name, files, nf))
      refused_tab[i] = refused_tab[--n_refused];
    else
      i++;
  }
}

/* Loads (or keeps) each listed file in name order; stops between files
 * when shutdown is asked (each load is bounded). */
static void load_listed(const char *dir, char **files, size_t nf) {
  for (size_t i = 0; i < nf; i++) {
    if (atomic_load(&qs_registry_stop)) break;
    char name[129], path[PATH_MAX];
    size_t nl = strlen(files[i]) - (sizeof SUFFIX - 1);
    memcpy(name, files[i], nl);
    name[nl] = '\0';
    struct stat st;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= sizeof path ||
        stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    sync_one(dir, files[i], name, &st);
  }
}

/* Phases: list the model files, sort them (loads and the cap follow name
 * order, whatever order readdir gives), drop the names whose file is gone,
 * load the rest. */
int qs_registry_sync(const char *dir) {
  char **files = NULL;
  size_t nf = 0;
  bool too_many = false, oom = false;
  n_ignored_cur = 0;
  if (list_files(dir, &files, &nf, &too_many, &oom) < 0) return -1;
  qs_model **all = oom ? NULL : malloc(QS_MAX_MODELS * sizeof *all);
  if (!all) {
    /* A partial listing would unload models whose files are there. */
    qs_log("models: out of memory listing %s (keeping %zu models; retried on the next "
           "change)", dir, qs_registry_count());
    free_files(files, nf);
    return (int)qs_registry_count();
  }
  if (too_many)
    qs_log("models: more than %d model files in %s; the rest are ignored", QS_MAX_DIR_FILES,
           dir);
  if (nf) qsort(files, nf, sizeof *files, cmp_str); /* files is NULL when the directory is empty */
  /* The ignored-names memory moves on one pass. */
  char (*t)[256] = ignored_prev;
  ignored_prev = ignored_cur;
  n_ignored_prev = n_ignored_cur;
  ignored_cur = t;
  n_ignored_cur = 0;
  drop_gone(all, files, nf);
  free(all);
  load_listed(dir, files, nf);
  free_files(files, nf);
  return (int)qs_registry_count();
}
