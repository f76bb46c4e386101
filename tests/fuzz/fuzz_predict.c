/* fuzz_predict.c - POST /predict's body parser and handler, without HTTP.
 *
 * Each input is a request body handed to qs_handle_predict exactly as
 * http.c hands it over. Checks, besides ASan/UBSan:
 *   - every reply is JSON with a documented status; errors are {"error"};
 *   - a 200 means jansson (strict, duplicate keys refused) accepts the body
 *     too, and the reply has one row of out_dim finite outputs per input row,
 *     predictions that are each row's argmax and labels that name them;
 *   - differential: a body that an independent reading with jansson finds
 *     valid (object, known model, option types right, rows of the model's
 *     width of numbers that fit a float, at most --max-batch rows) must get
 *     200; a body jansson refuses must not (its status may be 404 or 413
 *     when the model or the row count is checked before the bad part). */
#include "fuzz_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fz_setup_registry();
  return 0;
}

/* 1: the oracle says this body must succeed; 0: must fail; -1: no opinion. */
static int oracle(json_t *root, const uint8_t *data, size_t size, size_t *rows_out,
                  const char **model_out) {
  if (!root) return 0;
  if (!json_is_object(root)) return 0;
  /* Cases the oracle leaves to the unit tests: escaped keys (the scanner
   * matches raw key bytes), nesting past the scanner's cap, very long
   * number tokens. */
  if (memchr(data, '\\', size) || memchr(data, '\0', size) || fz_depth(root) > QS_JSON_MAX_DEPTH ||
      fz_longest_number_run(data, size) > 511)
    return -1;
  json_t *jm = json_object_get(root, "model");
  const char *model = json_string_value(jm);
  if (!model) return 0; /* missing (two models loaded) or not a string */
  size_t in;
  if (strcmp(model, "m") == 0)
    in = 8;
  else if (strcmp(model, "w") == 0)
    in = 3;
  else
    return 0;
  json_t *b = json_object_get(root, "baseline");
  if (b && !json_is_boolean(b)) return 0;
  json_t *mode = json_object_get(root, "mode");
  if (mode) {
    const char *v = json_string_value(mode);
    if (!v || (strcmp(v, "static") != 0 && strcmp(v, "dynamic") != 0)) return 0;
  }
  json_t *x = json_object_get(root, "inputs");
  if (!json_is_array(x) || json_array_size(x) == 0) return 0;
  size_t nrows;
  bool flat = !json_is_array(json_array_get(x, 0));
  if (flat) {
    if (json_array_size(x) != in) return 0;
    for (size_t j = 0; j < in; j++) {
      int c = fz_float_class(json_array_get(x, j));
      if (c != 1) return c == 2 ? -1 : 0;
    }
    nrows = 1;
  } else {
    nrows = json_array_size(x);
    if (nrows > FZ_MAX_BATCH) return 0;
    for (size_t i = 0; i < nrows; i++) {
      json_t *row = json_array_get(x, i);
      if (!json_is_array(row) || json_array_size(row) != in) return 0;
      for (size_t j = 0; j < in; j++) {
        int c = fz_float_class(json_array_get(row, j));
        if (c != 1) return c == 2 ? -1 : 0;
      }
    }
  }
  *rows_out = nrows;
  *model_out = model;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qs_req r;
  fz_req_init(&r, data, size, NULL);
  qs_handle_predict(&r);
  json_t *reply = fz_check_reply(&r);

  json_error_t je;
  /* Integers beyond int64 are valid JSON numbers but refused by jansson's
   * default mode: read numbers as doubles, and have no opinion when only
   * the default mode refuses (the server's envelope parse uses it). */
  json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
  json_t *root_int = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  size_t want_rows = 0;
  const char *model = NULL;
  int verdict = oracle(root, data, size, &want_rows, &model);
  if (root && !root_int && verdict == 1) verdict = -1;
  json_decref(root_int);
  if (!root && r.status == 200) {
    fprintf(stderr, "jansson refuses the body (%s) but the server answered %d\n", je.text, r.status);
    abort();
  }
  if (verdict == 1 && r.status != 200) {
    fprintf(stderr, "valid body refused with %d: %s\n", r.status, r.out.data);
    abort();
  }
  if (r.status == 200) {
    if (verdict == 0) {
      fprintf(stderr, "invalid body accepted: %.*s\n", (int)size, (const char *)data);
      abort();
    }
    /* jansson 2.14 skips a NUL byte between tokens; JSON has none. */
    assert(!memchr(data, '\0', size));
    assert(root);
    json_t *outputs = json_object_get(reply, "outputs");
    json_t *preds = json_object_get(reply, "predictions");
    const char *name = json_string_value(json_object_get(reply, "model"));
    assert(name && json_is_array(outputs) && json_is_array(preds));
    size_t rows = json_array_size(outputs);
    assert(rows >= 1 && rows <= FZ_MAX_BATCH);
    if (verdict == 1) {
      assert(rows == want_rows);
      assert(strcmp(name, model) == 0);
    }
    size_t width = strcmp(name, "m") == 0 ? 3 : 2;
    json_t *labels = json_object_get(reply, "labels");
    assert(json_array_size(preds) == rows);
    assert(strcmp(name, "m") == 0 ? json_array_size(labels) == rows : labels == NULL);
    static const char *const lab[] = {"l0", "l1", "l2"}; /* fz_make_model's labels */
    for (size_t i = 0; i < rows; i++) {
      json_t *row = json_array_get(outputs, i);
      assert(fz_check_finite_row(row) == width);
      size_t best = 0;
      for (size_t j = 1; j < width; j++)
        if (json_number_value(json_array_get(row, j)) > json_number_value(json_array_get(row, best)))
          best = j;
      assert(json_is_integer(json_array_get(preds, i)));
      assert((size_t)json_integer_value(json_array_get(preds, i)) == best);
      if (labels) assert(strcmp(json_string_value(json_array_get(labels, i)), lab[best]) == 0);
    }
    json_t *lat = json_object_get(reply, "latency_us");
    assert(json_is_object(lat) && json_is_number(json_object_get(lat, "int8")));
  }
  json_decref(root);
  json_decref(reply);
  fz_req_free(&r);
  return 0;
}
