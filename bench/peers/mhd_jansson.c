/* mhd_jansson.c - the bare peer qatserve is measured against: libmicrohttpd
 * (same flags: internal thread pool, epoll) and jansson parsing the same
 * /predict body the usual way (json_loadb, then walking "inputs" and
 * converting every number to float), answering 10 numbers. No model: this
 * is the ceiling of "HTTP + JSON done plainly".
 *
 * POST /floor is the floor: libmicrohttpd reading the body (every byte is
 * touched) and answering a constant, nothing allocated by this file. Server
 * CPU per request is reported as a ratio to it (bench/bench_http.sh).
 *   mhd_jansson [--port N] [--threads N]     prints "listening on PORT" */
#include <jansson.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_BODY (4u * 1024 * 1024)

typedef struct body {
  char *data;
  size_t len;
  int too_big;
} body;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *text) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "application/json");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)cls, (void)version;
  static const char floor_reply[] = "{\"outputs\":[[0,0,0,0,0,0,0,0,0,0]]}";
  /* The floor keeps its state in the pointer itself: odd values (a malloc'd
   * body never is) carry a checksum of the bytes read. */
  uintptr_t tag = (uintptr_t)*con_cls;
  if (tag & 1) {
    if (*upload_size) {
      for (size_t i = 0; i < *upload_size; i++) tag += (unsigned char)upload[i] * 2u;
      *con_cls = (void *)tag;
      *upload_size = 0;
      return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof floor_reply - 1, (void *)floor_reply, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
  }
  body *b = *con_cls;
  if (!b && strcmp(url, "/floor") == 0 && strcmp(method, "POST") == 0) {
    *con_cls = (void *)(uintptr_t)1;
    return MHD_YES;
  }
  if (!b) {
    if (strcmp(method, "POST") != 0) return reply(c, 405, "{\"error\":\"POST only\"}");
    b = calloc(1, sizeof *b);
    if (!b) return MHD_NO;
    *con_cls = b;
    return MHD_YES;
  }
  if (*upload_size) {
    if (b->len + *upload_size > MAX_BODY) {
      b->too_big = 1;
    } else if (!b->too_big) {
      char *nd = realloc(b->data, b->len + *upload_size + 1);
      if (!nd) return MHD_NO;
      b->data = nd;
      memcpy(b->data + b->len, upload, *upload_size);
      b->len += *upload_size;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (b->too_big) return reply(c, 413, "{\"error\":\"too big\"}");
  json_error_t err;
  json_t *root = json_loadb(b->data ? b->data : "", b->len, 0, &err);
  json_t *inputs = root ? json_object_get(root, "inputs") : NULL;
  if (!json_is_array(inputs)) {
    json_decref(root);
    return reply(c, 400, "{\"error\":\"bad request\"}");
  }
  /* Convert every number, as a server would before running a model. */
  size_t rows = json_array_size(inputs), n = 0;
  float sum = 0;
  for (size_t i = 0; i < rows; i++) {
    json_t *row = json_array_get(inputs, i);
    size_t k = json_array_size(row);
    for (size_t j = 0; j < k; j++) {
      json_t *v = json_array_get(row, j);
      if (!json_is_number(v)) {
        json_decref(root);
        return reply(c, 422, "{\"error\":\"not a number\"}");
      }
      sum += (float)json_number_value(v);
      n++;
    }
  }
  json_decref(root);
  char out[256];
  int k = snprintf(out, sizeof out, "{\"outputs\":[[");
  for (int i = 0; i < 10; i++)
    k += snprintf(out + k, sizeof out - (size_t)k, i ? ",%.9g" : "%.9g", (double)(sum / (float)(n + (size_t)i + 1)));
  snprintf(out + k, sizeof out - (size_t)k, "]]}");
  return reply(c, 200, out);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls, (void)c, (void)toe;
  body *b = *con_cls;
  if (b && !((uintptr_t)b & 1)) {
    free(b->data);
    free(b);
  }
  *con_cls = NULL;
}

int main(int argc, char **argv) {
  unsigned port = 0, threads = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
  for (int i = 1; i + 1 < argc; i += 2) {
    char *end;
    unsigned long v = strtoul(argv[i + 1], &end, 10);
    if (*end || v > 65535) return 2;
    if (strcmp(argv[i], "--port") == 0) port = (unsigned)v;
    else if (strcmp(argv[i], "--threads") == 0 && v > 0) threads = (unsigned)v;
    else return 2;
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
  if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES) flags |= MHD_USE_EPOLL;
  struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL,
                                          MHD_OPTION_THREAD_POOL_SIZE, threads,
                                          MHD_OPTION_CONNECTION_LIMIT, 1024u,
                                          MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                                          MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                          MHD_OPTION_END);
  if (!d) return 1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  printf("listening on %u\n", info ? info->port : port);
  fflush(stdout);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  int sig;
  sigwait(&set, &sig);
  MHD_stop_daemon(d);
  return 0;
}
